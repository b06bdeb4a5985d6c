"""Standardisation, splits, streaming, NaN/inf handling and the transform state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import physnn
from physnn.data.convert import pad_sequences
from physnn.data.split import assign_split
from physnn.data.transform import Transform
from physnn.errors import DataError


def _seq_cfg(path, **extra):
    cfg = {"files": str(path), "label": "label", "targets": ["mass"],
           "sequence": {"features": ["part_pt", "part_eta", "part_charge"], "sort_by": "part_pt"},
           "standardize": {"method": "standard", "exclude": ["part_charge"]}, "step_size": 300}
    cfg.update(extra)
    return cfg


def test_split_is_deterministic_and_close_to_fractions():
    entries = np.arange(100000)
    a = assign_split(entries, val=0.2, test=0.1, seed=5)
    b = assign_split(entries, val=0.2, test=0.1, seed=5)
    c = assign_split(entries, val=0.2, test=0.1, seed=6)
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.3
    assert np.mean(a == 1) == pytest.approx(0.2, abs=0.01)
    assert np.mean(a == 2) == pytest.approx(0.1, abs=0.01)
    np.testing.assert_array_equal(assign_split(entries[500:900], val=0.2, test=0.1, seed=5), a[500:900])


def test_standardisation_fitted_on_training_split_only(events_file):
    cfg = _seq_cfg(events_file)
    cfg["sequence"]["max_length"] = 60  # nothing clipped: the statistics cover every particle
    data = physnn.load(cfg)
    t = data.transform
    train = data.train.inputs["sequence"][data.train.inputs["mask"]]
    np.testing.assert_allclose(train[:, :2].mean(0).numpy(), [0, 0], atol=1e-4)
    np.testing.assert_allclose(train[:, :2].std(0).numpy(), [1, 1], atol=1e-3)
    assert t.center["sequence"][2] == 0.0
    assert t.scale["sequence"][2] == 1.0  # excluded: charges stay -1/0/1
    assert set(np.unique(train[:, 2].numpy())) <= {-1.0, 0.0, 1.0}
    val = data.val.inputs["sequence"][data.val.inputs["mask"]]
    assert float(val[:, 0].mean()) != pytest.approx(0.0, abs=1e-4)  # not refitted on val


def test_transform_state_round_trip_reproduces_tensors(events_file):
    data = physnn.load(_seq_cfg(events_file))
    state = json.loads(json.dumps(data.transform.state()))  # plain types only
    again = physnn.load(_seq_cfg(events_file), transform=Transform.from_state(state))
    for split in ("train", "val", "test"):
        a, b = getattr(data, split), getattr(again, split)
        for key, value in a.tensors().items():
            assert torch.equal(value, b.tensors()[key]), key
    torch.save({"transform": data.transform.state()}, "/dev/null")  # must be weights_only-safe
    import io

    buf = io.BytesIO()
    torch.save({"transform": data.transform.state()}, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["transform"]["max_length"] == data.transform.max_length


def test_streaming_matches_in_memory(events_file):
    cfg = _seq_cfg(events_file)
    memory = physnn.load(cfg)
    fitted = physnn.fit(cfg)
    assert fitted.max_length == memory.transform.max_length
    np.testing.assert_allclose(fitted.center["sequence"], memory.transform.center["sequence"], rtol=1e-6)
    np.testing.assert_allclose(fitted.scale["sequence"], memory.transform.scale["sequence"], rtol=1e-6)
    chunks = list(physnn.stream(cfg, fitted, split="train", step_size=250))
    assert len(chunks) > 3
    entries = np.concatenate([c.entry for c in chunks])
    np.testing.assert_array_equal(entries, memory.train.entry)
    seq = torch.cat([c.inputs["sequence"] for c in chunks])
    torch.testing.assert_close(seq, memory.train.inputs["sequence"])
    labels = torch.cat([c.label for c in chunks])
    assert torch.equal(labels, memory.train.label)


def test_pad_sequences_clips_and_masks():
    content = np.arange(12, dtype=np.float32).reshape(6, 2)
    counts = np.array([3, 0, 2, 1])
    x, mask, lengths = pad_sequences(content, counts, 2)
    assert x.shape == (4, 2, 2)
    np.testing.assert_array_equal(lengths, [2, 0, 2, 1])
    np.testing.assert_array_equal(mask, [[1, 1], [0, 0], [1, 1], [1, 0]])
    np.testing.assert_array_equal(x[0], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(x[2], [[6, 7], [8, 9]])
    np.testing.assert_array_equal(x[3], [[10, 11], [0, 0]])


def test_nonfinite_error_and_drop(write_root):
    x = np.arange(20, dtype=np.float32)
    x[[3, 7]] = [np.nan, np.inf]
    path = write_root({"x": x, "y": np.ones(20, np.float32)})
    with pytest.raises(DataError, match=r"branch 'x' has 2 NaN/inf values in 2 events.*nonfinite: drop"):
        physnn.load({"files": str(path), "scalars": ["x"], "targets": "y"})
    data = physnn.load({"files": str(path), "scalars": ["x"], "targets": "y", "nonfinite": "drop"})
    assert data.info["dropped_nonfinite"] == 2
    kept = np.concatenate([data.train.entry, data.val.entry, data.test.entry])
    assert 3 not in kept
    assert 7 not in kept
    assert kept.size == 18


def test_weights_and_batches(write_root):
    path = write_root({"x": np.arange(50, dtype=np.float32), "w": np.full(50, 2.0, np.float32),
                       "c": np.arange(50) % 2})
    data = physnn.load({"files": str(path), "scalars": ["x"], "weight": "w", "label": "c",
                        "split": {"val": 0, "test": 0}})
    assert torch.all(data.train.weight == 2.0)
    batches = list(data.train.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert [len(b["label"]) for b in batches] == [16, 16, 16, 2]
    seen = torch.cat([b["scalars"][:, 0] for b in batches]).sort().values
    torch.testing.assert_close(seen, data.train.inputs["scalars"][:, 0].sort().values)
    loader = torch.utils.data.DataLoader(data.train, batch_size=10)
    assert next(iter(loader))["scalars"].shape == (10, 1)
