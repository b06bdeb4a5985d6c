"""Issue 16 section 1: runs and configs that travel, outputs in new folders, files readable by the group."""

from __future__ import annotations

import os
import shutil
import stat

import numpy as np
import pytest
import yaml
from conftest import run_config

import physnn


def test_a_copied_run_predicts_from_any_folder_without_its_training_files(tmp_path, monkeypatch):
    work = tmp_path / "analysis"
    work.mkdir()
    monkeypatch.chdir(work)
    physnn.simulate("showers", "showers.root", events=300, seed=41)
    physnn.train(run_config("showers.root", task="regression", epochs=1), out="runs/energy", progress=False)
    elsewhere = tmp_path / "laptop"
    shutil.copytree(work / "runs" / "energy", elsewhere / "run")
    shutil.move(work / "showers.root", elsewhere / "new.root")  # the training file is gone
    monkeypatch.chdir(elsewhere)
    res = physnn.predict("run", "new.root", out="out/preds.root")
    assert res.events == 300
    assert set(np.unique(physnn.read("out/preds.root", ["split"])["split"])) <= {-1, 0, 1, 2}
    assert physnn.evaluate("out/preds.root", out="out/report").figures["events"] > 0
    assert physnn.export("run", "out/energy.pt", format="torchscript").path.is_file()


def test_paths_in_a_config_file_are_relative_to_it(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    (folder / "data").mkdir(parents=True)
    (folder / "train").mkdir()
    physnn.simulate("showers", folder / "data" / "showers.root", events=120, seed=42)
    (folder / "data" / "showers.yaml").write_text(yaml.safe_dump(
        {"files": "showers.root", "images": {"branches": ["image"]}, "targets": ["energy"]}))
    run = run_config("unused", task="regression", epochs=1)
    run["data"] = "../data/showers.yaml"
    (folder / "train" / "energy.yaml").write_text(yaml.safe_dump(run))
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert physnn.load(folder / "data" / "showers.yaml").info["entries_read"] == 120
    trained = physnn.train(folder / "train" / "energy.yaml", out="r", progress=False)
    assert trained.history
    # --set paths are relative to the current folder
    shutil.copy(folder / "data" / "showers.root", elsewhere / "here.root")
    data = physnn.load(folder / "data" / "showers.yaml", overrides=["files=here.root"])
    assert data.config.files == ["here.root"]
    from typer.testing import CliRunner

    from physnn.cli import app

    result = CliRunner().invoke(app, ["load", str(folder / "data" / "showers.yaml")])
    assert result.exit_code == 0, result.output


def test_shipped_configs_find_the_demo_files_from_any_folder(tmp_path, monkeypatch):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    cfg = physnn.config.load_config(repo / "configs" / "data" / "showers.yaml", physnn.config.DataConfig)
    assert os.path.normpath(cfg.files[0]) == os.path.normpath(repo / "physnn-demo" / "showers.root")
    from physnn.training.config import load_run_config

    run = load_run_config(repo / "configs" / "train" / "epi.yaml")
    assert os.path.normpath(run.data.files[0]) == os.path.normpath(repo / "physnn-demo" / "showers.root")


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_follow_the_umask(tmp_path, monkeypatch, umask):
    old = os.umask(umask)
    try:
        monkeypatch.chdir(tmp_path)
        physnn.simulate("showers", "deep/s.root", events=60, seed=43)
        physnn.train(run_config("deep/s.root", task="regression", epochs=1), out="runs/r", progress=False)
        physnn.predict("runs/r", "deep/s.root", out="deep/p.root")
        for path in ("deep/s.root", "runs/r/best.pt", "runs/r/last.pt", "deep/p.root"):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask, path
    finally:
        os.umask(old)


def test_flattened_images_are_reshaped_and_other_shapes_refused(cls_run, ae_run, showers_file, tmp_path):
    """Issue 16: RDataFrame's Snapshot writes img[3][24][24] as img[1728]: same cells, reshaped (said once);
    another number of cells: one line with both shapes, not a torch RuntimeError."""
    import uproot

    with uproot.open(showers_file) as f:
        arrays = f["showers"].arrays(["image", "pdgid", "energy"], library="np")
    flat = tmp_path / "flat.root"
    with uproot.recreate(flat) as f:
        f["showers"] = {"image": arrays["image"].reshape(len(arrays["image"]), -1), "pdgid": arrays["pdgid"],
                        "energy": arrays["energy"]}
    ref = physnn.predict(cls_run.run_dir, showers_file).arrays
    res = physnn.predict(cls_run.run_dir, flat)
    np.testing.assert_allclose(res.arrays["score"], ref["score"], rtol=1e-5, atol=1e-6)
    assert res.meta["notes"] == ["images of shape [1, 1728] reshaped to the run's [3, 24, 24] (the same 1728 cells)"]
    den = physnn.denoise(ae_run.run_dir, flat, out=tmp_path / "d.root")
    with uproot.open(den.path) as f:
        assert f["showers"]["image"].array(library="np").shape == (len(arrays["image"]), 1728)  # input's layout
    small = tmp_path / "small.root"
    with uproot.recreate(small) as f:
        f["showers"] = {"image": arrays["image"][:, :, :16, :16].copy(), "pdgid": arrays["pdgid"]}
    from physnn.errors import DataError

    with pytest.raises(DataError, match=r"images of shape \[3, 16, 16\] per event \(768 cells\), but the run was "
                                        r"trained on \[3, 24, 24\]"):
        physnn.predict(cls_run.run_dir, small)
