"""Sequence models through the same train / predict / evaluate as the CNN, on simulated and real files."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml
from typer.testing import CliRunner

import physnn
from physnn.cli import app

SEQUENCE = {"features": ["part_pt", "part_eta", "part_phi", "part_e", "part_charge"], "sort_by": "part_pt",
            "max_length": 16}
TINY_GRU = {"name": "gru", "params": {"embedding": [{"type": "dense", "units": 16}], "hidden_size": 16,
                                      "head": [{"type": "dense", "units": 16}, {"type": "dropout", "rate": 0.2}]}}
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def events_config(files, *, task: str, model: dict = TINY_GRU, epochs: int = 4, **data) -> dict:
    d = {"files": str(files), "tree": "events", "sequence": SEQUENCE, "standardize": {"exclude": ["part_charge"]},
         **data}
    if task == "classification":
        d.setdefault("label", "label")
        t = {"kind": "classification"}
    else:
        d.setdefault("targets", ["mass"])
        t = {"kind": "regression", "loss": "gaussian"}
    return {"data": d, "model": model, "task": t,
            "train": {"epochs": epochs, "batch_size": 32, "seed": 2, "optimizer": {"lr": 1e-2},
                      "early_stopping": {"patience": None}}}


@pytest.fixture(scope="module")
def seq_cls_run(events_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "events_cls"
    return physnn.train(events_config(events_file, task="classification", epochs=8), out=out, progress=False)


@pytest.fixture(scope="module")
def seq_reg_run(events_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "events_mass"
    return physnn.train(events_config(events_file, task="regression", epochs=8), out=out, progress=False)


def test_gru_separates_signal_from_background(seq_cls_run):
    # 1,050 training events, 8 epochs: the generator's own likelihood ratio reaches about 0.91
    assert seq_cls_run.best["val_auc"] > 0.75
    assert seq_cls_run.task.describe().startswith("binary")


@pytest.mark.parametrize("model", ["lstm", "seq_conv"])
def test_every_sequence_model_trains_through_the_same_trainer(events_file, tmp_path, model):
    params = {"filters": [16]} if model == "seq_conv" else {"hidden_size": 16, "bidirectional": True}
    result = physnn.train(events_config(events_file, task="classification", epochs=3,
                                        model={"name": model, "params": params}), out=tmp_path / model,
                          progress=False)
    assert result.best["val_auc"] > 0.6
    assert (tmp_path / model / "best.pt").is_file()


def test_mass_regression_writes_mc_dropout_error_bars_to_root(seq_reg_run, events_file, tmp_path):
    out = tmp_path / "mass.root"
    pred = physnn.predict(seq_reg_run.run_dir, events_file, out=out, mc_samples=12, collect=True)
    tree = uproot.open(out)["predictions"]
    for name in ("entry", "split", "mass_pred", "mass_std", "mass_aleatoric", "mass_epistemic", "mass"):
        assert name in tree
    arrays = tree.arrays(library="np")
    truth = uproot.open(events_file)["events"]["mass"].array(library="np")
    np.testing.assert_array_equal(arrays["entry"], np.arange(len(truth)))  # aligned with the input entries
    np.testing.assert_allclose(arrays["mass"], truth)
    assert (arrays["mass_epistemic"] >= 0).all()
    assert np.median(arrays["mass_epistemic"]) > 0
    scale = pred.meta["sigma_scale"]["mass"]  # the calibrated total of the two raw parts, epistemic weighted by rho
    rho = pred.meta["epistemic_weight"]["mass"]
    np.testing.assert_allclose(arrays["mass_std"] ** 2, scale**2 * (arrays["mass_aleatoric"] ** 2
                                                                    + (rho * arrays["mass_epistemic"]) ** 2), rtol=1e-4)
    test = arrays["split"] == 2
    resid = arrays["mass_pred"][test] - truth[test]
    constant = np.median(np.abs(truth[test] - np.median(truth[arrays["split"] == 0])))
    assert np.median(np.abs(resid)) < 0.75 * constant  # the sequence tells about the mass
    report = physnn.evaluate(out, plots=False)
    coverage = report.figures["regression"]["mass"]["coverage_1sigma"]
    assert 0.45 < coverage < 0.9
    assert pred.events == len(truth)


def test_predictions_follow_the_configured_order_not_the_file_order(seq_cls_run, events_file, tmp_path):
    """sort_by: part_pt puts the particles in pt order, so reversing them in the file changes nothing."""
    branches = uproot.open(events_file)["events"].arrays()
    flipped = {name: branches[name][:, ::-1] if name.startswith("part_") else branches[name]
               for name in branches.fields if name != "n_part"}
    reversed_file = tmp_path / "reversed.root"
    with uproot.recreate(reversed_file) as f:
        f["events"] = flipped
    a = physnn.predict(seq_cls_run.run_dir, events_file, out=tmp_path / "a.root", collect=True).arrays
    b = physnn.predict(seq_cls_run.run_dir, reversed_file, out=tmp_path / "b.root", collect=True).arrays
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)

    unsorted = events_config(events_file, task="classification", epochs=1)
    unsorted["data"]["sequence"] = {**SEQUENCE, "sort_by": None}
    run = physnn.train(unsorted, out=tmp_path / "unsorted", progress=False)
    c = physnn.predict(run.run_dir, events_file, out=tmp_path / "c.root", collect=True).arrays
    d = physnn.predict(run.run_dir, reversed_file, out=tmp_path / "d.root", collect=True).arrays
    assert np.abs(c["score"] - d["score"]).max() > 1e-3  # file order kept: the GRU sees another sequence


def test_scalars_feed_the_sequence_model(events_file, tmp_path):
    cfg = events_config(events_file, task="regression", epochs=1, scalars=["n_part"])
    result = physnn.train(cfg, out=tmp_path / "run", progress=False)
    assert result.model.stages[3][0].in_features == 16 + 1  # GRU state + one scalar into the head


def test_shipped_event_configs_train_from_the_command_line(events_file, tmp_path):
    from physnn import demo

    for name, make in (("events_cls.yaml", demo.events_cls_config), ("events_mass.yaml", demo.events_mass_config)):
        cfg = physnn.load_run_config(CONFIGS / "train" / name)
        assert cfg == physnn.load_run_config(make(cfg.data.files[0]))
    result = CliRunner().invoke(app, ["train", str(CONFIGS / "train" / "events_cls.yaml"), "--out",
                                      str(tmp_path / "run"), "--set", f"data.files={events_file}",
                                      "--set", "train.epochs=1",
                                      "--set", "model.params.embedding=[{type: dense, units: 8}]"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "run"), str(events_file), "--out",
                                      str(tmp_path / "p.root"), "-T", "5"])
    assert result.exit_code == 0, result.output
    assert "score_std" in uproot.open(tmp_path / "p.root")["predictions"]


def test_a_sequence_model_on_image_data_is_a_one_line_error(showers_file, tmp_path):
    cfg = {"files": str(showers_file), "images": {"branches": ["image"]}, "targets": ["energy"]}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"data": cfg, "model": {"name": "lstm"}, "task": {"kind": "regression"}}))
    result = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "needs a sequence input" in result.output
    assert not (tmp_path / "run" / "best.pt").exists()


# -- real files ---------------------------------------------------------------

DIMUON_MASS = "sqrt(2*Muon_pt[0]*Muon_pt[1]*(cosh(Muon_eta[0]-Muon_eta[1]) - cos(Muon_phi[0]-Muon_phi[1])))"


def test_cms_rntuple_dimuon_mass_with_error_bars(real_dir, tmp_path):
    path = real_dir / "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"
    data = {"files": str(path), "tree": "Events", "selection": "nMuon == 2",
            "define": {"dimuon_mass": DIMUON_MASS, "log_mass": "log(dimuon_mass)"},
            "sequence": {"features": ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_charge"], "sort_by": "Muon_pt"},
            "targets": ["log_mass"], "observers": ["dimuon_mass"], "standardize": {"exclude": ["Muon_charge"]}}
    cfg = {"data": data, "model": TINY_GRU, "task": {"kind": "regression", "loss": "gaussian"},
           "train": {"epochs": 3, "batch_size": 32, "seed": 0}}
    run = physnn.train(cfg, out=tmp_path / "run", progress=False)
    pred = physnn.predict(run.run_dir, path, out=tmp_path / "cms.root", mc_samples=8, selection="nMuon == 2",
                          collect=True).arrays
    n_two = int(np.sum(uproot.open(path)["Events"]["nMuon"].array(library="np") == 2))
    assert len(pred["entry"]) == n_two  # the training selection is applied to the events
    assert np.isfinite(pred["log_mass_pred"]).all()
    assert (pred["log_mass_std"] > 0).all()
    mu = uproot.open(path)["Events"].arrays(["Muon_pt", "Muon_eta", "Muon_phi"])[pred["entry"]]
    m = np.sqrt(2 * mu.Muon_pt[:, 0] * mu.Muon_pt[:, 1] * (np.cosh(mu.Muon_eta[:, 0] - mu.Muon_eta[:, 1])
                                                         - np.cos(mu.Muon_phi[:, 0] - mu.Muon_phi[:, 1])))
    np.testing.assert_allclose(pred["dimuon_mass"], ak.to_numpy(m), rtol=1e-4)


def test_hzz_ttree_leptons_as_one_sequence_with_scalars_and_weights(real_dir, tmp_path):
    path = real_dir / "uproot-HZZ.root"
    data = physnn.load({
        "files": str(path), "tree": "events",
        "define": {f"lep_{k}": f"concat(Muon_{k}, Electron_{k})" for k in ("Px", "Py", "Pz", "E", "Charge")},
        "sequence": {"features": ["lep_Px", "lep_Py", "lep_Pz", "lep_E", "lep_Charge"], "sort_by": "lep_E",
                     "max_length": 6},
        "scalars": ["MET_px", "MET_py"], "weight": "EventWeight", "targets": ["MET_px"],
        "split": {"val": 0, "test": 0}})
    tree = uproot.open(path)["events"]
    n_lep = tree["NMuon"].array(library="np") + tree["NElectron"].array(library="np")
    assert data.train.inputs["length"].numpy().tolist() == np.minimum(n_lep, 6).tolist()
    energies = data.train.inputs["sequence"][..., 3].numpy()  # standardised, still ordered
    mask = data.train.inputs["mask"].numpy()
    assert all(np.all(np.diff(e[m]) <= 1e-6) for e, m in zip(energies, mask, strict=True))  # leading lepton first
    assert data.train.inputs["scalars"].shape == (len(n_lep), 2)
    assert data.train.weight is not None
