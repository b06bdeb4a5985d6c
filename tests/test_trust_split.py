"""Issue 15 item 2: an event's split is a property of the event, not of the order the files are listed in."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import run_config

import physnn
from physnn.data.split import TEST, UNKNOWN


@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two")
    a, b = folder / "a.root", folder / "b.root"
    physnn.simulate("showers", a, events=300, seed=21)
    physnn.simulate("showers", b, events=200, seed=22)
    return a, b


@pytest.fixture(scope="module")
def run_ab(two_files, tmp_path_factory):
    a, b = two_files
    cfg = run_config(a, task="regression", epochs=1)
    cfg["data"]["files"] = [str(a), str(b)]
    out = tmp_path_factory.mktemp("runs") / "ab"
    physnn.train(cfg, out=out, progress=False)
    return out


def _split_by_file(run, files, sizes):
    """{file name: split per local entry} from predictions on ``files`` in the given order."""
    res = physnn.predict(run, [str(f) for f in files])
    out, lo = {}, 0
    for f in files:
        out[f.name] = res.arrays["split"][lo:lo + sizes[f.name]]
        lo += sizes[f.name]
    return out, res


def test_split_is_the_same_in_any_file_order_or_subset(two_files, run_ab, tmp_path):
    a, b = two_files
    sizes = {"a.root": 300, "b.root": 200}
    ref, res = _split_by_file(run_ab, [a, b], sizes)
    assert set(np.unique(np.concatenate(list(ref.values())))) == {0, 1, 2}
    assert res.counts["unknown"] == 0
    swapped, _ = _split_by_file(run_ab, [b, a], sizes)
    alone, _ = _split_by_file(run_ab, [b], sizes)
    for name in sizes:
        np.testing.assert_array_equal(swapped[name], ref[name])
    np.testing.assert_array_equal(alone["b.root"], ref["b.root"])
    # a copy under another name is the same file (its UUID), so the same events in the same splits
    copy = tmp_path / "renamed.root"
    shutil.copy(a, copy)
    renamed, _ = _split_by_file(run_ab, [copy], {"renamed.root": 300})
    np.testing.assert_array_equal(renamed["renamed.root"], ref["a.root"])


def test_events_of_other_files_get_split_minus_one(run_ab, tmp_path):
    new = tmp_path / "new.root"
    physnn.simulate("showers", new, events=50, seed=21)  # same content as a.root, but not a training file
    res = physnn.predict(run_ab, str(new), out=tmp_path / "p.root")
    assert set(res.arrays["split"] if res.arrays else []) <= {UNKNOWN}
    splits = {k: v for k, v in res.counts.items() if not k.startswith("out_of")}  # the domain checks count apart
    assert splits == {"train": 0, "val": 0, "test": 0, "unknown": 50}
    meta = physnn.read_metadata(tmp_path / "p.root")
    assert meta["counts"]["unknown"] == 50


def test_evaluate_never_judges_training_events(two_files, run_ab, tmp_path):
    a, _ = two_files
    path = tmp_path / "pa.root"
    res = physnn.predict(run_ab, str(a), out=path, collect=True)  # one of the two training files alone
    n_test = int(np.count_nonzero(res.arrays["split"] == TEST))
    assert 0 < n_test < 300
    report = physnn.evaluate(path)
    assert report.figures["events"] == n_test
    assert report.figures["split"] == "test split"


def test_split_does_not_depend_on_chunking(two_files):
    from physnn.config import DataConfig
    from physnn.data.dataset import iter_raw

    a, b = two_files
    cfg = DataConfig.model_validate({"files": [str(a), str(b)], "images": {"branches": ["image"]}})
    whole = np.concatenate([r.split for r in iter_raw(cfg)])
    chunked = np.concatenate([r.split for r in iter_raw(cfg, step_size=37)])
    np.testing.assert_array_equal(whole, chunked)


def test_held_out_events_are_the_test_split_and_other_files():
    from physnn.data.split import describe_held_out, held_out

    codes = np.array([0, 1, 2, 2, -1, 0])
    np.testing.assert_array_equal(held_out(codes), [False, False, True, True, True, False])
    assert describe_held_out(codes) == "test split (2) + files not used in training (1)"
    assert describe_held_out(codes[:4]) == "test split"
    assert describe_held_out(codes[4:5]) == "files not used in training"


def test_the_same_simulation_job_gives_the_same_splits(tmp_path):
    """physnn's own files take their identity from the job (config, seed, events): re-simulating the demo
    gives the same file identity, so the same events in the same splits; another seed is another file."""
    from physnn.config import DataConfig
    from physnn.data.dataset import iter_raw

    def splits(name, seed):
        path = tmp_path / name
        physnn.simulate("showers", path, events=200, seed=seed)
        cfg = DataConfig.model_validate({"files": str(path), "images": {"branches": ["image"]}})
        return next(iter_raw(cfg)).split

    first, again, other = splits("a.root", 5), splits("b.root", 5), splits("c.root", 6)
    np.testing.assert_array_equal(first, again)
    assert np.mean(first != other) > 0.2
