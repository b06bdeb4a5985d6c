"""Evaluation figures on toy cases whose answers are known, and on real predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

import physnn
from physnn.errors import InputFileError
from physnn.evaluation import metrics


def test_auc_of_perfect_random_and_known_gaussian_scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    assert metrics.roc_with_band(y, y + 0.1 * rng.random(4000), n_boot=0)["auc"] == 1.0
    random = metrics.roc_with_band(y, rng.random(4000), n_boot=50)
    assert abs(random["auc"] - 0.5) < 0.03
    # two unit Gaussians 1 apart: AUC = Phi(1 / sqrt(2)) = 0.760
    roc = metrics.roc_with_band(y, rng.normal(y.astype(float), 1.0), n_boot=100, seed=1)
    assert roc["auc"] == pytest.approx(0.760, abs=0.02)
    assert roc["auc_low"] < roc["auc"] < roc["auc_high"]
    assert roc["auc_high"] - roc["auc_low"] == pytest.approx(2 * 0.0075, rel=0.4)  # sqrt-N statistical width
    assert np.all(np.array(roc["tpr_low"]) <= np.array(roc["tpr_high"]))


def test_ece_is_small_for_calibrated_and_large_for_overconfident_probabilities():
    rng = np.random.default_rng(1)
    p = rng.random(20000)
    y = rng.random(20000) < p  # the probabilities are the truth's frequencies
    assert metrics.calibration(y, p)["ece"] < 0.02
    overconfident = np.clip((p - 0.5) * 3 + 0.5, 0, 1)
    assert metrics.calibration(y, overconfident)["ece"] > 0.1


def test_classification_summary_and_mc_categories():
    true = np.array([0, 0, 1, 1, 1])
    prob1 = np.array([0.1, 0.6, 0.9, 0.45, 0.99])
    std1 = np.array([0.01, 0.3, 0.02, 0.01, 0.001])
    prob = np.stack([1 - prob1, prob1], 1)
    out = metrics.classification(true, prob, prob_std=np.stack([std1, std1], 1), n_boot=0)
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["confusion"] == [[1, 1], [1, 2]]
    assert out["auc"] == pytest.approx(5 / 6)
    np.testing.assert_array_equal(metrics.mc_categories(prob1, std1), [0, 2, 1, 0, 1])
    assert out["mc"]["fraction"]["uncertain"] == pytest.approx(0.2)


def test_regression_coverage_pulls_and_resolution_fit_on_a_known_calorimeter():
    rng = np.random.default_rng(2)
    e = rng.uniform(5, 100, 40000)
    sigma = e * np.sqrt(0.15**2 / e + 0.01**2)  # 15%/sqrt(E) + 1%
    pred = e + rng.normal(0, sigma)
    out = metrics.regression(e, pred, std=sigma)
    assert out["coverage_1sigma"] == pytest.approx(0.683, abs=0.01)
    assert out["coverage_2sigma"] == pytest.approx(0.954, abs=0.01)
    assert out["pull_std"] == pytest.approx(1.0, abs=0.02)
    assert out["fit"]["stochastic"] == pytest.approx(0.15, rel=0.1)
    assert out["fit"]["constant"] == pytest.approx(0.01, abs=0.004)
    wide = metrics.regression(e, pred, std=2 * sigma)
    assert wide["coverage_1sigma"] == pytest.approx(0.954, abs=0.01)


def test_evaluate_classification_writes_json_and_plots(cls_run, epi_file, tmp_path):
    preds = tmp_path / "p.root"
    physnn.predict(cls_run.run_dir, epi_file, out=preds, mc_samples=10, keep_samples=True)
    res = physnn.evaluate(preds, out=tmp_path / "report", n_boot=20)
    fig = res.figures
    assert fig["split"] == "test"  # predictions on the training files: only the test split is judged
    data = physnn.load(physnn.load_run(cls_run.run_dir).config.data)
    assert fig["events"] == len(data.test)
    assert 0.5 < fig["classification"]["auc"] <= 1
    names = {p.name for p in res.files}
    assert {"metrics.json", "roc.png", "calibration.png", "confusion.png", "mc_scores.png", "loss.png"} <= names
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["classification"]["auc"] == \
        fig["classification"]["auc"]
    everything = physnn.evaluate(preds, split="all", n_boot=0)
    assert everything.figures["events"] == 2000


def test_evaluate_regression_with_a_baseline(reg_run, showers_file, tmp_path):
    preds = tmp_path / "r.root"
    res = physnn.predict(reg_run.run_dir, showers_file, out=preds, mc_samples=10, collect=True)
    baseline = {"truth plus 1 GeV": {"energy": res.arrays["energy"] + 1.0}}
    ev = physnn.evaluate(preds, out=tmp_path / "rep", baselines=baseline)
    r = ev.figures["regression"]["energy"]
    assert {"bias", "sigma", "coverage_1sigma", "binned"} <= set(r)
    assert r["baselines"]["truth plus 1 GeV"]["bias"] == pytest.approx(1.0, abs=1e-4)
    assert {"energy_residuals.png", "energy_resolution.png", "energy_pulls.png"} <= {p.name for p in ev.files}


def test_evaluate_refuses_a_file_that_is_not_predictions(showers_file):
    with pytest.raises(InputFileError, match="not a physnn predictions file"):
        physnn.evaluate(showers_file)
