"""Training beyond memory: the streamed split, the shuffle buffer and the memory budget."""

from __future__ import annotations

import pytest
import torch
from conftest import run_config

import physnn
import physnn.data.streaming as streaming
from physnn.config import DataConfig
from physnn.errors import ConfigError
from physnn.training.checkpoint import load_checkpoint
from physnn.training.config import RunConfig


@pytest.fixture
def always_stream(monkeypatch):
    """Stream whatever the size of the data, with the buffer set by each test."""
    monkeypatch.setattr(streaming, "IN_MEMORY_FACTOR", 1e12)
    monkeypatch.setattr(streaming, "rss_bytes", lambda: 0)
    return "400 MB"


def _per_event_fraction(events: int, budget: str = "400 MB") -> float:
    return events * 7000 / streaming.data_share(streaming.parse_budget(budget), 0)


def _bundle(epi_file, monkeypatch, budget):
    monkeypatch.setattr(streaming, "BUFFER_SHARE", _per_event_fraction(400))
    cfg = DataConfig.model_validate(run_config(epi_file)["data"])
    return cfg, streaming.prepare(cfg, budget)


def test_a_streamed_epoch_sees_every_training_event_once(epi_file, monkeypatch, always_stream):
    cfg, bundle = _bundle(epi_file, monkeypatch, always_stream)
    assert isinstance(bundle, streaming.StreamingBundle)
    split = bundle.train
    assert 300 <= split.capacity <= 500
    assert len(split.chunks) > 20
    memory = physnn.load(cfg, transform=bundle.transform).train
    assert len(split) == len(memory)

    def epoch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        batches = list(split.batches(32, shuffle=True, generator=torch.Generator().manual_seed(seed)))
        assert all(len(b["label"]) == 32 for b in batches[:-1])
        # an event is identified by its image's sum (continuous values: no ties)
        return torch.cat([b["image"].sum((1, 2, 3)) for b in batches]), torch.cat([b["label"] for b in batches])

    keys, labels = epoch(1)
    ref = memory.inputs["image"].sum((1, 2, 3))
    assert torch.allclose(keys.sort().values, ref.sort().values)  # every event once, with its own label
    assert torch.equal(labels[keys.argsort()], memory.label[ref.argsort()])
    again, _ = epoch(1)
    other, _ = epoch(2)
    assert torch.equal(keys, again)  # the same generator state: the same order (exact --resume)
    assert not torch.equal(keys, other)
    plain = torch.cat([b["image"].sum((1, 2, 3)) for b in split.batches(64)])
    assert torch.allclose(plain, ref)  # without shuffling: the file order, like in memory
    # shuffled for real: the first batch mixes events from all over the file
    first = keys[:32]
    position = torch.searchsorted(ref.sort().values, first.clamp(max=ref.max()))
    assert position.float().std() > len(ref) / 8


def test_streaming_training_matches_in_memory_quality_and_resumes_exactly(epi_file, tmp_path, monkeypatch,
                                                                          always_stream):
    monkeypatch.setattr(streaming, "BUFFER_SHARE", _per_event_fraction(400))
    cfg = run_config(epi_file, epochs=3, optimizer={"lr": 3e-3}, memory_budget=always_stream)
    streamed = physnn.train(cfg, out=tmp_path / "stream", progress=False)
    info = torch.load(tmp_path / "stream" / "last.pt", weights_only=True)["data_info"]
    assert info["streaming"]
    assert info["buffer_events"] < info["split"]["train"] / 3
    assert streamed.best["val_auc"] > 0.95
    # killed after two epochs, then --resume: the same final weights as three epochs at once
    def kill_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        physnn.train(cfg, out=tmp_path / "cut", progress=False, on_epoch_end=kill_after_two)
    physnn.train(out=tmp_path / "cut", resume=True, progress=False)
    full = load_checkpoint(tmp_path / "stream", "last.pt")["model"]
    cut = load_checkpoint(tmp_path / "cut", "last.pt")["model"]
    for key, value in full.items():
        assert torch.equal(cut[key], value), key


def test_small_data_stay_in_memory_under_a_budget(epi_file, tmp_path):
    result = physnn.train(run_config(epi_file, epochs=1, memory_budget="64 GB"), out=tmp_path / "r", progress=False)
    info = torch.load(tmp_path / "r" / "last.pt", weights_only=True)["data_info"]
    assert info["streaming"] is False
    assert result.history


def test_memory_budget_errors(epi_file):
    with pytest.raises(ConfigError, match="process already uses"):
        streaming.prepare(DataConfig.model_validate(run_config(epi_file)["data"]), "10 MB")
    with pytest.raises(ValueError, match="memory_budget 'lots': expected a size such as '4 GB'"):
        RunConfig.model_validate(run_config(epi_file, memory_budget="lots"))
    with pytest.raises(ValueError, match="memory_budget '1000'"):  # a number of entries is not a size
        RunConfig.model_validate(run_config(epi_file, memory_budget="1000"))


def test_rss_is_measured():
    assert 10 * 2**20 < streaming.rss_bytes() < 64 * 2**30
