"""Predictions: MC dropout (prefix caching = naive loop, batch norm off), ROOT output aligned with the input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import uproot

import physnn
from physnn.errors import ConfigError, DataError, InputFileError, OutputError
from physnn.models.mc_dropout import mc_forward, naive_mc_forward
from physnn.models.registry import ModelConfig, ModelIO, build_model


def _bn_dropout_model():
    params = {"features": [{"type": "conv", "filters": 4, "batch_norm": True}, {"type": "pool"}, {"type": "flatten"}],
              "head": [{"type": "dense", "units": 32, "batch_norm": True}, {"type": "dropout", "rate": 0.5},
                       {"type": "dense", "units": 16}]}
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="cnn", params=params), ModelIO(image=(2, 8, 8), outputs=1))
    model.train()
    with torch.no_grad():  # give batch norm non-trivial running statistics
        for _ in range(5):
            model({"image": torch.randn(64, 2, 8, 8) * 3 + 1})
    return model


def test_prefix_caching_gives_the_same_distribution_as_t_full_passes():
    model = _bn_dropout_model()
    batch = {"image": torch.randn(20, 2, 8, 8)}
    torch.manual_seed(1)
    fast = mc_forward(model, batch, 400)
    torch.manual_seed(2)
    slow = naive_mc_forward(model, batch, 400)
    assert fast.shape == slow.shape == (400, 20, 1)
    torch.testing.assert_close(fast.mean(0), slow.mean(0), atol=0.15 * float(slow.std(0).mean()), rtol=0)
    ratio = fast.std(0) / slow.std(0)
    assert 0.85 < float(ratio.mean()) < 1.15
    assert float(fast.std(0).min()) > 0


def test_mc_dropout_keeps_batch_norm_in_eval_mode():
    model = _bn_dropout_model()
    batch = {"image": torch.randn(8, 2, 8, 8)}
    model.eval()
    with torch.no_grad():
        deterministic = model(batch)
    for m in model.modules():  # no dropout: the MC mean must equal the eval-mode output exactly
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    out = mc_forward(model, batch, 3)
    torch.testing.assert_close(out[0], deterministic)
    torch.testing.assert_close(out[2], deterministic)
    assert not any(m.training for m in model.modules())  # left in eval mode


def test_prediction_tree_is_aligned_with_the_input(cls_run, showers_file, tmp_path):
    out = tmp_path / "p.root"
    res = physnn.predict(cls_run.run_dir, showers_file, out=out, mc_samples=20, keep_samples=True, step_size=150)
    with uproot.open(showers_file) as f:
        truth = f["showers"].arrays(["pdgid", "energy"], library="np")
    with uproot.open(out) as f:
        tree = f["predictions"]
        assert tree.num_entries == len(truth["pdgid"]) == res.events  # no selection: every entry predicted
        a = tree.arrays(library="np")
        meta = json.loads(str(f["physnn_meta"]))
    np.testing.assert_array_equal(a["entry"], np.arange(len(truth["pdgid"])))
    np.testing.assert_array_equal(a["pdgid"], truth["pdgid"])
    np.testing.assert_array_equal(a["energy"], truth["energy"])
    assert tree["prob"].typename == "float[2]"
    assert tree["score_samples"].typename == "float[20]"
    expected = np.where(truth["pdgid"] == 11, 0, np.where(truth["pdgid"] == 211, 1, -1))
    np.testing.assert_array_equal(a["true_class"], expected)  # photons are outside the classes: -1
    np.testing.assert_allclose(a["score"], a["score_samples"].mean(1), atol=1e-5)
    np.testing.assert_allclose(a["score_std"], a["score_samples"].std(1, ddof=1), atol=1e-5)
    np.testing.assert_allclose(a["prob"].sum(1), 1, atol=1e-5)
    assert meta["mc_samples"] == 20
    assert set(np.unique(a["split"])) == {-1}  # not a training file: its events have no training split
    assert meta["counts"]["unknown"] == len(truth["pdgid"])
    np.testing.assert_array_equal(a["in_selection"], truth["pdgid"] != 22)  # the run was trained on pdgid != 22
    assert meta["counts"]["outside_selection"] == int(np.sum(truth["pdgid"] == 22)) > 0


def test_mc_spread_is_nonzero_and_shrinks_where_the_model_is_sure(cls_run, epi_file):
    res = physnn.predict(cls_run.run_dir, epi_file, mc_samples=30)
    assert res.counts["unknown"] == 0  # the training file: every event has its training split
    score, std = res.arrays["score"], res.arrays["score_std"]
    assert (std > 0).mean() > 0.95  # a few saturate at exactly 0 or 1 in float32
    distance = np.abs(score - 0.5)
    sure = distance >= np.quantile(distance, 0.75)  # the quarter of events furthest from 0.5
    unsure = distance <= np.quantile(distance, 0.25)
    assert std[sure].mean() < 0.5 * std[unsure].mean()


def test_deterministic_prediction_and_the_selection(cls_run, showers_file):
    res = physnn.predict(cls_run.run_dir, showers_file, selection="pdgid == 11")
    assert "score_std" not in res.arrays
    assert (res.arrays["pdgid"] == 11).all()
    again = physnn.predict(cls_run.run_dir, showers_file, selection="pdgid == 11")
    np.testing.assert_array_equal(res.arrays["score"], again.arrays["score"])


def test_regression_branches_and_files_without_truth(reg_run, showers_file, write_root, tmp_path):
    res = physnn.predict(reg_run.run_dir, showers_file, mc_samples=10)
    a = res.arrays
    for key in ("energy_pred", "energy_aleatoric", "energy_epistemic", "energy_std", "energy"):
        assert key in a
    scale = res.meta["sigma_scale"]["energy"]  # the calibrated total; the two parts stay raw
    rho = res.meta["epistemic_weight"]["energy"]  # the epistemic part's weight in it
    np.testing.assert_allclose(a["energy_std"] ** 2,
                               scale**2 * (a["energy_aleatoric"] ** 2 + (rho * a["energy_epistemic"]) ** 2), rtol=1e-4)
    assert reg_run.task.sigma_scale["mc"][0] == pytest.approx(scale, rel=1e-6)
    assert scale > 0
    with uproot.open(showers_file) as f:
        images = f["showers"]["image"].array(library="np")[:40]
    path = write_root({"image": images}, name="data_only.root", tree="showers")
    bare = physnn.predict(reg_run.run_dir, path, out=tmp_path / "bare.root")
    with uproot.open(bare.path) as f:
        keys = set(f["predictions"].keys())
    assert {"energy_pred", "energy_aleatoric", "entry"} <= keys
    assert "energy" not in keys


def test_predict_errors(cls_run, showers_file, tmp_path):
    with pytest.raises(ConfigError, match="--keep-samples needs --mc-samples"):
        physnn.predict(cls_run.run_dir, showers_file, keep_samples=True)
    with pytest.raises(ConfigError, match="--mc-samples -1: MC dropout needs T >= 2"):
        physnn.predict(cls_run.run_dir, showers_file, mc_samples=-1)
    with pytest.raises(InputFileError, match="no such checkpoint or run folder"):
        physnn.predict(tmp_path / "nope", showers_file)
    out = tmp_path / "p.root"
    with pytest.raises(DataError, match="no event to predict after the selection"):
        physnn.predict(cls_run.run_dir, showers_file, selection="energy < 0", out=out)
    assert not out.exists()
    assert not list(tmp_path.glob(".p.root*"))  # no temporary file left either
    out.write_text("old")
    with pytest.raises(OutputError, match="pass overwrite=True"):
        physnn.predict(cls_run.run_dir, showers_file, out=out)
    assert out.read_text() == "old"
