"""A run trained on simulation applied to data (issue 29, item 1): a file that holds the model's inputs only,
under other branch and tree names, without the label, weight, observers or the branches of the training cut."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
from conftest import NOISE, TINY_AE, TINY_CNN
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.errors import BranchError, DataError, TreeError

runner = CliRunner()
N = 300
MAP = {"image": "cells"}
#: the run's data config: a truth selection, a label with named classes and a signal (as the demo's photon/pi0
#: run), a weight, an observer and a define that reads the truth
DATA = {"images": {"branches": ["image"]}, "selection": "pdgid != 22", "label": "pdgid",
        "classes": {11: "electron", 211: "pion"}, "signal": "pion", "weight": "w", "define": {"log_e": "log(energy)"},
        "observers": ["energy", "log_e"]}
TRAIN = {"epochs": 1, "batch_size": 64, "seed": 1, "early_stopping": {"patience": None}}


@pytest.fixture(scope="module")
def columns(tmp_path_factory) -> dict[str, np.ndarray]:
    """300 simulated e-, pi+ and photon showers with a weight."""
    path = tmp_path_factory.mktemp("sim") / "sim.root"
    physnn.simulate("showers", path, events=N, seed=5, config={"particles": ["e-", "pi+", "gamma"]})
    with uproot.open(path) as f:
        out = f["showers"].arrays(["image", "energy", "pdgid"], library="np")
    out["w"] = np.random.default_rng(1).uniform(0.5, 1.5, N).astype(np.float32)
    return out


def _write(path: Path, tree: str, branches: dict[str, np.ndarray]) -> Path:
    with uproot.recreate(path) as f:
        f[tree] = branches
    return path


@pytest.fixture(scope="module")
def files(columns, tmp_path_factory) -> dict[str, Path]:
    """``full``: the simulation (tree ``showers``); ``data``: the image only, as ``cells`` in tree ``events``;
    ``data_evt``: also an event number; ``data_e``: the image and the energy (an observer present)."""
    folder = tmp_path_factory.mktemp("files")
    return {"full": _write(folder / "full.root", "showers", columns),
            "data": _write(folder / "data.root", "events", {"cells": columns["image"]}),
            "data_evt": _write(folder / "data_evt.root", "events",
                               {"cells": columns["image"], "event": np.arange(N, dtype=np.int32)}),
            "data_e": _write(folder / "data_e.root", "events", {"cells": columns["image"],
                                                                "energy": columns["energy"]})}


@pytest.fixture(scope="module")
def run(files, tmp_path_factory) -> Path:
    """A tiny CNN trained for one epoch with the truth selection, a weight, observers and a define."""
    cfg = {"data": {"files": str(files["full"]), **DATA}, "model": TINY_CNN, "task": {"kind": "classification"},
           "train": TRAIN}
    return physnn.train(cfg, out=tmp_path_factory.mktemp("runs") / "epi", progress=False).run_dir


@pytest.fixture(scope="module")
def ae(files, tmp_path_factory) -> Path:
    """A tiny denoising autoencoder trained with the same truth selection, weight, observers and define."""
    data = {k: v for k, v in DATA.items() if k not in ("label", "classes", "signal")}
    cfg = {"data": {"files": str(files["full"]), **data}, "model": TINY_AE,
           "task": {"kind": "reconstruction", "noise": NOISE}, "train": TRAIN}
    return physnn.train(cfg, out=tmp_path_factory.mktemp("runs") / "ae", progress=False).run_dir


def test_predict_on_data_is_aligned_and_scores_equal_those_of_the_full_file(run, files):
    ref = physnn.predict(run, files["full"])
    res = physnn.predict(run, files["data"], mapping=MAP)
    np.testing.assert_array_equal(res.arrays["entry"], np.arange(N))  # one row per event, in order
    np.testing.assert_allclose(res.arrays["score"], ref.arrays["score"], rtol=1e-6, atol=1e-7)
    assert not {"pdgid", "true_class", "w", "energy", "log_e", "in_selection"} & set(res.arrays)
    assert res.meta["tree"] == "events"  # the only tree of the file, not the run's "showers"


def test_selection_and_aligned_on_data_in_the_files_names(run, files):
    ref = physnn.predict(run, files["full"])
    res = physnn.predict(run, files["data_evt"], mapping=MAP, selection="event % 3 == 0", aligned=True)
    assert len(res.arrays["entry"]) == N
    keep = np.arange(N) % 3 == 0
    np.testing.assert_array_equal(res.arrays["selected"], keep)
    np.testing.assert_allclose(res.arrays["score"][keep], ref.arrays["score"][keep], rtol=1e-6, atol=1e-7)
    assert np.isnan(res.arrays["score"][~keep]).all()


def test_the_skipped_training_cut_is_one_line_and_in_physnn_meta(run, files, tmp_path):
    out = tmp_path / "p.root"
    result = runner.invoke(app, ["predict", str(run), str(files["data"]), "--map", "image=cells", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "pdgid != 22" in line]
    assert len(lines) == 1, result.output
    assert "not applied" in lines[0]
    assert "'pdgid'" in lines[0]
    with uproot.open(out) as f:
        meta = json.loads(str(f["physnn_meta"]))
    assert meta["not_applied"] == {"selection": {"expression": "pdgid != 22", "absent": ["pdgid"]},
                                   "define": {"log_e": {"expression": "log(energy)", "absent": ["energy"]}}}


def test_absent_truth_and_observers_are_left_out_said_once_and_recorded(run, files, tmp_path):
    res = physnn.predict(run, files["data"], mapping=MAP)
    assert res.left_out == {"label": "pdgid", "weight": "w", "observers": ["energy", "log_e"]}
    assert res.meta["left_out"] == res.left_out
    assert sum("left out" in note for note in res.meta["notes"]) == 1
    out = tmp_path / "p.root"
    result = runner.invoke(app, ["predict", str(run), str(files["data"]), "--map", "image=cells", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sum("left out" in line for line in result.output.splitlines()) == 1, result.output
    # what the file has is written: the energy observer, and the define that reads it
    some = physnn.predict(run, files["data_e"], mapping=MAP)
    np.testing.assert_allclose(some.arrays["log_e"], np.log(some.arrays["energy"]), rtol=1e-6)
    assert some.left_out == {"label": "pdgid", "weight": "w"}
    assert some.meta["not_applied"] == {"selection": {"expression": "pdgid != 22", "absent": ["pdgid"]}}


def test_evaluate_on_predictions_without_truth_says_so_in_one_line(run, files, tmp_path):
    out = tmp_path / "p.root"
    physnn.predict(run, files["data"], mapping=MAP, out=out)
    with pytest.raises(DataError, match=r"p\.root: holds no truth"):
        physnn.evaluate(out)
    result = runner.invoke(app, ["evaluate", str(out), "--out", str(tmp_path / "ev")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "p.root" in result.output
    assert "no truth" in result.output
    cfg = {"data": {"files": str(files["full"]), "images": {"branches": ["image"]}, "targets": ["energy"]},
           "model": TINY_CNN, "task": {"kind": "regression"}, "train": TRAIN}
    reg = physnn.train(cfg, out=tmp_path / "reg", progress=False).run_dir
    physnn.predict(reg, files["data"], mapping=MAP, out=tmp_path / "r.root")
    with pytest.raises(DataError, match=r"r\.root: holds no truth \(.*data\.root has no target 'energy'\)"):
        physnn.evaluate(tmp_path / "r.root")


def test_denoise_and_encode_on_data(ae, files, tmp_path):
    with pytest.raises(BranchError, match=r"data\.root:events: no branch 'image', an input of the model; "
                                          r"the tree has cells$"):
        physnn.denoise(ae, files["data"])
    ref = physnn.denoise(ae, files["full"])
    res = physnn.denoise(ae, files["data"], mapping=MAP)
    np.testing.assert_allclose(res.arrays["cells"], ref.arrays["image"], rtol=1e-5, atol=1e-6)
    ref = physnn.encode(ae, files["full"])
    res = physnn.encode(ae, files["data"], mapping=MAP)
    np.testing.assert_array_equal(res.arrays["entry"], np.arange(N))
    np.testing.assert_allclose(res.arrays["code_0"], ref.arrays["code_0"], rtol=1e-5, atol=1e-6)
    assert not {"energy", "log_e", "w"} & set(res.arrays)
    assert res.meta["left_out"] == {"weight": "w", "observers": ["energy", "log_e"]}
    assert res.meta["tree"] == "events"
    result = runner.invoke(app, ["encode", str(ae), str(files["data"]), "--map", "image=cells",
                                 "--out", str(tmp_path / "c.root")])
    assert result.exit_code == 0, result.output
    assert sum("left out" in line for line in result.output.splitlines()) == 1, result.output


def test_a_missing_input_says_why_it_is_needed(run, files, tmp_path, columns):
    with pytest.raises(BranchError, match=r"data\.root:events: no branch 'image', an input of the model"):
        physnn.predict(run, files["data"])
    result = runner.invoke(app, ["predict", str(run), str(files["data"]), "--out", str(tmp_path / "p.root")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "an input of the model" in result.output
    assert not (tmp_path / "p.root").exists()
    # an input built by a define: the branch it reads is needed
    cfg = {"data": {"files": str(files["full"]), **DATA, "scalars": ["log_e"], "observers": []},
           "model": TINY_CNN, "task": {"kind": "classification"}, "train": TRAIN}
    with_scalar = physnn.train(cfg, out=tmp_path / "scalar", progress=False).run_dir
    with pytest.raises(BranchError, match=r"data\.root:events: no branch 'energy', which define 'log_e' = "
                                          r"'log\(energy\)' reads to build an input of the model"):
        physnn.predict(with_scalar, files["data"], mapping=MAP)
    res = physnn.predict(with_scalar, files["data_e"], mapping=MAP)
    assert len(res.arrays["score"]) == N


def test_the_tree_of_a_new_file_is_its_only_one_and_several_are_refused(run, files, columns, tmp_path):
    two = tmp_path / "two.root"
    with uproot.recreate(two) as f:
        f["events"] = {"cells": columns["image"]}
        f["runs"] = {"run": np.arange(3, dtype=np.int32)}
    with pytest.raises(TreeError, match=r"two\.root: several trees \('events', 'runs'\)"):
        physnn.predict(run, two, mapping=MAP)
    res = physnn.predict(run, two, mapping=MAP, tree="events")
    assert len(res.arrays["score"]) == N


def test_denoise_on_data_says_what_it_leaves_out_like_encode(ae, files, tmp_path):
    """denoise reports the absent weight and observers and the define it cannot compute: in the result, in
    physnn_meta and one line each on the command line."""
    res = physnn.denoise(ae, files["data"], mapping=MAP)
    assert res.left_out == {"weight": "w", "observers": ["energy", "log_e"]}
    assert res.not_applied == {"define": {"log_e": {"expression": "log(energy)", "absent": ["energy"]}}}
    assert sum("left out" in note for note in res.notes) == 1
    assert sum("not applied" in note and "'log_e'" in note for note in res.notes) == 1
    out = tmp_path / "d.root"
    result = runner.invoke(app, ["denoise", str(ae), str(files["data"]), "--map", "image=cells", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sum("left out" in line for line in result.output.splitlines()) == 1, result.output
    assert sum("not applied" in line for line in result.output.splitlines()) == 1, result.output
    with uproot.open(out) as f:
        meta = json.loads(str(f["physnn_meta"]))
    assert meta["left_out"] == res.left_out
    assert meta["not_applied"] == res.not_applied
    assert meta["notes"] == res.notes


def test_the_plan_names_a_missing_input_from_the_open_tree_without_reading_it(tmp_path, monkeypatch):
    """The reader builds the line with the reason (no event is read to get its error) and the plan keeps the
    first file's tree as it was found."""
    from physnn.config import DataConfig
    from physnn.inference import plan as plan_module
    from physnn.io import read as read_module

    path = _write(tmp_path / "few.root", "events", {"e": np.arange(5.0), "n": np.arange(5, dtype=np.int32)})

    def no_read(*args, **kwargs):
        raise AssertionError("an event was read to plan the run")

    monkeypatch.setattr(read_module, "read_chunk", no_read)
    monkeypatch.setattr(plan_module, "read_chunk", no_read, raising=False)
    cfg = DataConfig.model_validate({"files": str(path), "scalars": ["q", "e"]})
    with pytest.raises(BranchError, match=r"few\.root:events: no branch 'q', an input of the model; the tree has "
                                          r"e, n$"):
        plan_module.plan_prediction(cfg, path, None, None)
    plan = plan_module.plan_prediction(cfg.model_copy(update={"scalars": ["e"]}), path, None, None)
    assert (plan.tree, plan.where) == ("events", f"{path}:events")



def test_the_reason_a_branch_is_needed_is_said_also_for_a_record(tmp_path):
    import awkward as ak

    from physnn.io.read import first_chunk, missing_branch

    path = _write(tmp_path / "rec.root", "events", {"pos": ak.zip({"x": np.arange(3.0), "y": np.arange(3.0)})})
    chunk, obj = first_chunk(path, None)
    assert str(missing_branch(chunk, obj, "pos", "an input of the model")) == (
        f"{path}:events: branch 'pos', an input of the model, holds a record of several values per entry; name one "
        "of them: pos.x, pos.y")
    assert str(missing_branch(chunk, obj, "pos")).startswith(f"{path}:events: branch 'pos' holds a record")


def test_map_renames_the_kinematics_and_a_targets_baseline(tmp_path):
    """``--map`` reaches ``sequence.kinematics`` and ``targets: {t: {baseline: ...}}`` (whose validator rebuilds
    ``baselines``); a missing kinematic branch is an input of the model."""
    import awkward as ak

    from physnn.config import DataConfig
    from physnn.inference.plan import plan_prediction

    jag = ak.Array([[3.0, 1.0], [2.0]])
    path = _write(tmp_path / "renamed.root", "events", {
        "pt": jag, "part_pt": jag * 10, "part_eta": jag, "part_phi": jag, "part_e": jag, "esum": np.ones(2),
        "energy": np.ones(2)})
    kin = ["part_pt", "part_eta", "part_phi", "part_e"]
    cfg = DataConfig.model_validate({
        "files": "train.root", "sequence": {"features": ["part_pt", "part_eta"], "kinematics": kin},
        "targets": {"energy": {"transform": "log", "baseline": "cell_sum"}}})
    plan = plan_prediction(cfg, path, None, None, mapping={"cell_sum": "esum", "part_pt": "pt"})
    assert plan.config.baselines == {"energy": "esum"}
    assert plan.config.target_specs["energy"].baseline == "esum"
    assert plan.config.sequence.features == ["pt", "part_eta"]
    assert plan.config.sequence.kinematics == ["pt", "part_eta", "part_phi", "part_e"]
    cfg = cfg.model_copy(update={"sequence": cfg.sequence.model_copy(update={"kinematics": [*kin[:3], "e_raw"]})})
    with pytest.raises(BranchError, match=r"no branch 'e_raw', an input of the model"):
        plan_prediction(cfg, path, None, None, mapping={"cell_sum": "esum"})
