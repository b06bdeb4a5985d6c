"""Evaluation figures on toy cases whose answers are known, and on real predictions."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import physnn
from physnn.errors import ConfigError, InputFileError
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
    out = metrics.regression(e, pred, std=sigma, kind="energy", unit="GeV")
    assert out["coverage_1sigma"] == pytest.approx(0.683, abs=0.01)
    assert out["coverage_2sigma"] == pytest.approx(0.954, abs=0.01)
    assert out["pull_std"] == pytest.approx(1.0, abs=0.02)
    assert out["fit"]["stochastic"] == pytest.approx(0.15, rel=0.1)
    assert out["fit"]["constant"] == pytest.approx(0.01, abs=0.004)
    assert out["fit"]["accepted"]  # the points follow the form: chi2/ndf near 1
    assert out["fit"]["chi2_ndf"] < 3
    assert out["fit"]["ndf"] == len(out["bins"]) - 2
    wide = metrics.regression(e, pred, std=2 * sigma)
    assert wide["coverage_1sigma"] == pytest.approx(0.954, abs=0.01)


def test_evaluate_classification_writes_json_and_plots(cls_run, epi_file, tmp_path):
    preds = tmp_path / "p.root"
    physnn.predict(cls_run.run_dir, epi_file, out=preds, mc_samples=10, keep_samples=True)
    res = physnn.evaluate(preds, out=tmp_path / "report", n_boot=20)
    fig = res.figures
    assert fig["split"] == "test split"  # predictions on the training files: only the test split is judged
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
    assert {"bias", "sigma", "coverage_1sigma", "bins", "outliers"} <= set(r)
    assert r["baselines"]["truth plus 1 GeV"]["bias"] == pytest.approx(1.0, abs=1e-4)
    assert {"energy_residuals.png", "energy_resolution.png", "energy_pulls.png"} <= {p.name for p in ev.files}


def test_evaluate_refuses_a_file_that_is_not_predictions(showers_file):
    with pytest.raises(InputFileError, match="not a physnn predictions file"):
        physnn.evaluate(showers_file)


def write_predictions(path, true, pred, *, std=None, name="energy", run_dir=None, data=None, hash_ok=True,
                      extra=None):
    """A predictions file as physnn.predict writes it, with a run folder whose config.yaml declares the target."""
    import uproot
    import yaml

    from physnn.io.metadata import config_hash

    meta = {"command": "physnn predict", "task": {"kind": "regression", "targets": [name]}, "targets": [name],
            "mc_samples": 0}
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        config = {"data": {"files": "x.root", "scalars": ["a"], **(data or {})}}
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
        meta.update(checkpoint=str(run_dir / "best.pt"), config_hash=config_hash(config) if hash_ok else "sha256:0")
    branches = {"entry": np.arange(len(true)), "split": np.full(len(true), -1, np.int8), name: true,  # other files
                f"{name}_pred": pred}
    if std is not None:
        branches[f"{name}_std"] = std
    branches.update(extra or {})
    with uproot.recreate(path) as f:
        f["predictions"] = branches
        f["physnn_meta"] = json.dumps(meta)
    return path


def calorimeter_with_a_bad_bin(n: int = 8000, seed: int = 3):
    """Energies 1-100 GeV: the model has σ/E 0.05 above 13 GeV and 0.8 below; the baseline 0.27 everywhere."""
    rng = np.random.default_rng(seed)
    e = rng.uniform(1, 100, n)
    pred = e * (1 + rng.normal(0, 1, n) * np.where(e < 13, 0.8, 0.05))
    return e, pred, e * (1 + rng.normal(0, 0.27, n))


def test_the_bin_where_the_model_is_worse_than_the_baseline_is_named():
    e, pred, base = calorimeter_with_a_bad_bin()
    r = metrics.regression(e, pred, kind="energy", unit="GeV", baselines={"cell sum": base})
    assert len(r["bins"]) == 8
    low = r["bins"][0]
    assert low["range"][0] == pytest.approx(1, abs=0.1)
    assert low["range"][1] == pytest.approx(13.4, abs=1.2)
    assert low["sigma_rel"] == pytest.approx(0.8, rel=0.1)
    assert low["baselines"]["cell sum"]["sigma_rel"] == pytest.approx(0.27, rel=0.1)
    assert {"events", "bias", "sigma", "sigma_err", "sigma_rel_err", "outliers"} <= set(low)
    comparison = r["baselines"]["cell sum"]["comparison"]
    assert (comparison["better"], comparison["worse"]) == (7, 1)
    assert comparison["worse_bins"] == [0]
    assert r["worst_bin"]["index"] == 0
    assert r["worst_bin"]["ratio"] == pytest.approx(0.8 / 0.27, rel=0.15)
    assert re.search(r"better in 7 of 8 bins, worse in 1 \(1\N{EN DASH}1[34] GeV: σ/E 0\.[78]\d vs 0\.2\d\)",
                     comparison["summary"]), comparison["summary"]
    assert not r["fit"]["accepted"]  # 0.8 then a flat 0.05 is not a/√E ⊕ b


def test_resolution_fit_is_rejected_when_the_points_do_not_follow_the_form():
    energy = [np.array([e]) for e in (5.0, 10, 20, 40, 60, 80)]
    flat = np.array([0.8, 0.05, 0.05, 0.05, 0.05, 0.05])  # a step, not a/√E ⊕ b
    fit = metrics.resolution_fit(energy, flat, 0.01 * flat)
    assert not fit["accepted"]
    assert fit["chi2_ndf"] > 100
    assert fit["ndf"] == 4
    good = np.sqrt(0.5**2 / np.array([5.0, 10, 20, 40, 60, 80]) + 0.03**2)
    fit = metrics.resolution_fit(energy, good, 0.01 * good)
    assert fit["accepted"]
    assert fit["stochastic"] == pytest.approx(0.5, rel=1e-3)
    assert fit["chi2_ndf"] < 1e-6


def test_catastrophic_outliers_are_counted_exactly():
    rng = np.random.default_rng(4)
    true = rng.uniform(10, 100, 1000)
    pred = true + np.clip(rng.normal(0, 1, 1000), -3, 3)
    pred[:7] = true[:7] + 12.0
    pred[7:10] = true[7:10] - 15.0
    pred[10] = true[10] + 5.0  # exactly 5σ: not beyond 5
    with_std = metrics.regression(true, pred, std=np.ones(1000))
    assert with_std["outliers"]["count"] == 10
    assert with_std["outliers"]["fraction"] == pytest.approx(0.01)
    assert "pull" in with_std["outliers"]["criterion"]
    pred[10] = true[10] + 4.0  # the robust σ of each bin is about 1
    without = metrics.regression(true, pred)
    assert without["outliers"]["count"] == 10
    assert "robust σ" in without["outliers"]["criterion"]
    assert sum(b["outliers"] for b in without["bins"]) == 10


def test_a_generic_target_gets_resolution_in_its_unit_and_no_sqrt_e_fit():
    rng = np.random.default_rng(5)
    e = rng.uniform(5, 100, 8000)
    pred = e + rng.normal(0, e * np.sqrt(0.15**2 / e + 0.01**2))  # would fit a/√E ⊕ b perfectly
    r = metrics.regression(e, pred, kind="mass", unit="GeV")
    assert "fit" not in r
    assert r["unit"] == "GeV"
    assert r["kind"] == "mass"
    assert all("sigma_rel" not in b for b in r["bins"])
    assert r["worst_bin"]["index"] == len(r["bins"]) - 1  # largest σ in GeV: the highest masses
    assert "fit" in metrics.regression(e, pred, kind="energy")


def test_evaluate_reads_the_target_spec_from_the_run_config_and_prints_every_bin(tmp_path, capsys, monkeypatch):
    from rich.console import Console

    from physnn.cli import _print_evaluation, show
    from physnn.cli.app import LOG_WIDTH
    from physnn.evaluation import plots

    # as the command prints into a log (not a terminal); the shared console's width is whatever an earlier
    # command-line test in this process left
    monkeypatch.setattr(show, "console", Console(width=LOG_WIDTH))

    e, pred, base = calorimeter_with_a_bad_bin()
    std = np.abs(pred - e) + 0.01 * e
    std[:5] = 1e-3 * e[:5]  # five events far beyond their error bars
    preds = write_predictions(tmp_path / "p.root", e, pred, std=std, run_dir=tmp_path / "run",
                              data={"targets": {"energy": {"unit": "GeV", "kind": "energy"}}})
    ev = physnn.evaluate(preds, out=tmp_path / "rep", baselines={"calibrated cell sum": {"energy": base}})
    r = ev.figures["regression"]["energy"]
    assert r["target"] == {"unit": "GeV", "kind": "energy", "transform": "none", "source": "run config"}
    saved = json.loads((tmp_path / "rep" / "metrics.json").read_text())["regression"]["energy"]
    assert saved["bins"][0]["baselines"]["calibrated cell sum"]["sigma_rel"] > saved["bins"][0]["sigma_rel"] / 4
    assert saved["worst_bin"]["index"] == 0
    assert saved["outliers"]["count"] >= 5
    _print_evaluation(ev.figures)
    text = capsys.readouterr().out
    assert "better in 7 of 8 bins, worse in 1 (1\N{EN DASH}13 GeV: σ/E 0." in text
    assert "fit rejected: χ²/ndf =" in text
    assert "true energy [GeV]" in text
    assert "calibrated cell sum σ/E" in text
    assert "worst" in text
    assert "|pull| > 5" in text
    fig = plots.resolution_figure("energy", r)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert not any(label.startswith("model fit") for label in labels)  # the model's rejected fit is not drawn
    assert any(label.startswith("calibrated cell sum fit") for label in labels)  # the baseline's accepted one is
    assert fig.axes[-1].get_xlabel() == "true energy [GeV]"  # under the model / baseline ratio panel
    assert fig.axes[-1].get_ylabel() == "model / baseline"
    assert "σ/E" in ax.get_ylabel()
    legend = ax.get_legend()
    assert "fit a/√E $\\oplus$ b rejected: χ²/ndf =" in legend.get_title().get_text()
    assert any(t.get_text().startswith("worst bin 1\N{EN DASH}13 GeV: ") for t in legend.get_texts())
    # a different config in the run folder (hash mismatch): the spec is not trusted, the target is generic
    other = write_predictions(tmp_path / "q.root", e, pred, run_dir=tmp_path / "run2",
                              data={"targets": {"energy": {"unit": "GeV", "kind": "energy"}}}, hash_ok=False)
    r = physnn.evaluate(other).figures["regression"]["energy"]
    assert r["target"]["kind"] == "generic"
    assert "fit" not in r
    given = physnn.evaluate(other, targets={"energy": {"unit": "GeV", "kind": "energy"}}).figures["regression"]
    assert given["energy"]["target"] == {"unit": "GeV", "kind": "energy", "transform": "none", "source": "given"}
    with pytest.raises(ConfigError, match="unknown key 'unti'"):
        physnn.evaluate(other, targets={"energy": {"unti": "GeV"}})


def test_evaluate_by_particle_type_separates_two_resolutions(tmp_path):
    """Electrons at σ/E 5% and pions at 20% mixed: overall one σ, --by pdgid gives each its own."""
    from physnn.cli import app

    rng = np.random.default_rng(5)
    e = rng.uniform(1, 100, 6000)
    pdgid = np.where(np.arange(6000) % 2 == 0, 11, 211).astype(np.int32)
    pred = e * (1 + rng.normal(0, 1, 6000) * np.where(pdgid == 11, 0.05, 0.20))
    std = e * np.where(pdgid == 11, 0.05, 0.20)
    base = e * (1 + rng.normal(0, 0.1, 6000))
    preds = write_predictions(tmp_path / "p.root", e, pred, std=std, run_dir=tmp_path / "run",
                              data={"targets": {"energy": {"unit": "GeV", "kind": "energy"}}}, extra={"pdgid": pdgid})
    ev = physnn.evaluate(preds, baselines={"sum": {"energy": base}}, by="pdgid")
    by = ev.figures["regression"]["energy"]["by"]
    assert by["name"] == "pdgid"
    assert set(by["groups"]) == {"11", "211"}
    electrons, pions = by["groups"]["11"], by["groups"]["211"]
    assert electrons["events"] == pions["events"] == 3000
    assert electrons["sigma_rel"] == pytest.approx(0.05, rel=0.1)
    assert pions["sigma_rel"] == pytest.approx(0.20, rel=0.1)
    assert electrons["baselines"]["sum"]["sigma_rel"] == pytest.approx(0.10, rel=0.1)
    assert electrons["coverage_1sigma"] == pytest.approx(0.683, abs=0.03)
    assert electrons["fit"]["constant"] == pytest.approx(0.05, rel=0.2)  # σ/E flat at 5%: the constant term
    result = CliRunner().invoke(app, ["evaluate", str(preds), "--out", str(tmp_path / "rep"), "--by", "pdgid"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "energy, pdgid 211" in result.output
    assert "3,000 events" in result.output
    bad = CliRunner().invoke(app, ["evaluate", str(preds), "--out", str(tmp_path / "rep2"), "--by", "nosuch"])
    assert bad.exit_code == 2
    assert "--by nosuch" in bad.output
    assert "pdgid" in bad.output
    assert "Traceback" not in bad.output
    assert not (tmp_path / "rep2").exists()  # nothing half-written


def test_a_mass_target_is_not_plotted_as_sigma_over_e(tmp_path):
    from physnn.evaluation import plots

    rng = np.random.default_rng(6)
    m = rng.uniform(60, 120, 3000)
    preds = write_predictions(tmp_path / "m.root", m, m + rng.normal(0, 2, 3000), name="mass",
                              run_dir=tmp_path / "run", data={"targets": {"mass": {"unit": "GeV", "kind": "mass"}}})
    ev = physnn.evaluate(preds, out=tmp_path / "rep")
    r = ev.figures["regression"]["mass"]
    assert "fit" not in r
    assert r["target"]["unit"] == "GeV"
    ax = plots.resolution_figure("mass", r).axes[0]
    assert ax.get_ylabel() == "resolution σ [GeV]"
    assert ax.get_xlabel() == "true mass [GeV]"
    assert "mass_resolution.png" in {p.name for p in ev.files}


def test_a_small_test_split_gets_fewer_bins_and_no_crash(tmp_path):
    """A handful of held-out events: as many bins as hold 10 events each; fewer than 10: no bin, no plot."""
    from physnn.evaluation import metrics

    rng = np.random.default_rng(5)
    true = rng.uniform(1, 100, 45)
    r = metrics.regression(true, true * (1 + 0.05 * rng.normal(size=45)), kind="energy")
    assert len(r["bins"]) == 4
    assert all(b["events"] >= 10 for b in r["bins"])
    tiny = metrics.regression(true[:6], true[:6] * 1.01, kind="energy")
    assert tiny["bins"] == []


def test_evaluate_takes_a_run_folder_and_picks_its_evaluator(ae_run, cls_run, tmp_path):
    """Scripts judge a run folder as the command line does: the evaluator comes from the run's task."""
    from physnn.errors import ConfigError

    judged = physnn.evaluate(ae_run.run_dir, out=tmp_path / "ae", plots=False)
    assert judged.judged == "denoising"
    assert {"gain", "rmse_input", "rmse_output"} <= set(judged.figures)
    with pytest.raises(ConfigError, match=r"a binary run is judged on its predictions: physnn predict .* FILE"):
        physnn.evaluate(cls_run.run_dir, out=tmp_path / "cls")


def test_pull_errors_are_computed_once_from_the_events_with_a_pull(monkeypatch):
    """The terminal and the pulls figure show the same errors: those of metrics, from the events whose pull is
    finite (a zero error bar has none), and the bias error is the mean's error σ/√n everywhere."""
    import matplotlib.pyplot as plt

    from physnn.evaluation import coverage, plots_regression, resolution, summary
    from physnn.fmt import with_error

    rng = np.random.default_rng(4)
    true = rng.uniform(10, 50, 400)
    std = np.full(400, 2.0)
    std[:300] = 0.0  # no pull for three events in four
    pred = true + rng.normal(0, 2.0, 400)
    out = metrics.regression(true, pred, std=std)
    assert out["pull_mean_err"] == pytest.approx(out["pull_std"] / np.sqrt(100))
    assert out["pull_std_err"] == pytest.approx(out["pull_std"] / np.sqrt(200))
    rows = dict(summary.regression_rows("x", out))
    assert rows["x pull std"] == with_error(out["pull_std"], out["pull_std_err"])
    shown = []
    monkeypatch.setattr(plots_regression, "corner_text", lambda ax, text, **kw: shown.append(text))
    plt.close(plots_regression.pulls_figure("x", true, pred, std, out))
    assert f"mean {with_error(out['pull_mean'], out['pull_mean_err'])}\n" in shown[0]
    assert f"std {with_error(out['pull_std'], out['pull_std_err'])}\n" in shown[0]
    res = pred - true
    assert resolution.mean_error(2.0, 4) == 1.0
    assert out["bias_err"] == resolution.mean_error(float(np.std(res)), 400)
    assert coverage.interval_coverage(true, pred)["bias_err"] == out["bias_err"]
