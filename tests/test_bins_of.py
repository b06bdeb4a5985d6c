"""``physnn evaluate --bins-of BRANCH``: a binary classifier's AUC and background rejection per quantile bin of an
observer, each with its bootstrap interval, checked against scikit-learn and ``rejection_at`` on the bin's events."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_classifier_predictions
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.errors import ConfigError
from physnn.evaluation.metrics import rejection_at

runner = CliRunner()


def write_classifier(path, truth, prob, *, energy=None, signal=0, extra=None, kind="binary"):
    """A photon/π0 classifier's predictions file as physnn.predict writes it (classes 22, 111; photon the signal
    when ``signal`` is 0), with an ``energy`` observer."""
    names = ["photon", "pi0", "pi+"][: prob.shape[1]]
    branches = {**({} if energy is None else {"energy": energy}), **(extra or {})}
    return write_classifier_predictions(path, truth, prob, meta_extra={"class_names": names, "signal": signal},
                                        branches=branches, kind=kind)


def noisy_classifier(n: int = 3000, seed: int = 1):
    """Photons (class 0) and π0s (class 1) with energies 1-100 GeV; P(π0) separates them better at high energy."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    energy = rng.uniform(1, 100, n)
    logit = (2 * truth - 1) * energy / 40 + rng.normal(0, 1, n)
    p_pi0 = 1 / (1 + np.exp(-logit))
    return truth, np.stack([1 - p_pi0, p_pi0], 1), energy


def test_each_bin_is_roc_auc_score_and_rejection_at_on_its_own_events(tmp_path):
    from sklearn.metrics import roc_auc_score

    truth, prob, energy = noisy_classifier()
    preds = write_classifier(tmp_path / "p.root", truth, prob, energy=energy, signal=0)
    c = physnn.evaluate(preds, bins_of="energy", bins=4, n_boot=30).figures["classification"]
    b = c["bins_of"]
    assert b["branch"] == "energy"
    assert len(b["bins"]) == 4
    assert b["edges"] == pytest.approx(np.quantile(energy, np.linspace(0, 1, 5)).tolist())
    for i, row in enumerate(b["bins"]):
        last = i == len(b["bins"]) - 1
        inside = (energy >= row["low"]) & ((energy <= row["high"]) if last else (energy < row["high"]))
        photon = truth[inside] == 0
        assert (row["n_signal"], row["n_background"]) == (photon.sum(), (~photon).sum())
        assert row["auc"] == pytest.approx(roc_auc_score(photon, prob[inside, 0]), abs=1e-12)
        assert row["rejection"] == pytest.approx(rejection_at(truth[inside], prob[inside, 0], 0.8, signal=0)
                                                 ["rejection"], rel=1e-12)
        assert row["auc_low"] <= row["auc"] <= row["auc_high"]
        assert row["rejection_low"] <= row["rejection"] <= row["rejection_high"]
        assert row["low"] <= row["center"] <= row["high"]
    assert sum(r["n_signal"] + r["n_background"] for r in b["bins"]) == len(truth)  # the top event included
    aucs = [r["auc"] for r in b["bins"]]
    assert aucs == sorted(aucs)  # the toy separates better at high energy
    assert aucs[0] < c["auc"] < aucs[-1]


def test_per_bin_figures_are_weighted_like_the_overall_ones(tmp_path):
    from sklearn.metrics import roc_auc_score

    truth, prob, energy = noisy_classifier(2000, seed=4)
    w = np.random.default_rng(2).uniform(0.2, 3.0, len(truth))
    preds = write_classifier(tmp_path / "p.root", truth, prob, energy=energy, extra={"w": w})
    import uproot  # the predictions' weight branch, as a run with data.weight writes it

    with uproot.update(preds) as f:
        meta = json.loads(str(f["physnn_meta"]))
        del f["physnn_meta"]
        f["physnn_meta"] = json.dumps({**meta, "weight": "w"})
    b = physnn.evaluate(preds, bins_of="energy", bins=2, n_boot=0).figures["classification"]["bins_of"]
    low = b["bins"][0]
    inside = energy < low["high"]
    assert low["auc"] == pytest.approx(roc_auc_score(truth[inside] == 0, prob[inside, 0], sample_weight=w[inside]))
    assert low["auc"] != pytest.approx(roc_auc_score(truth[inside] == 0, prob[inside, 0]), abs=1e-6)
    assert "auc_low" not in low  # no resamples, no interval


def test_perfect_above_60_gev_and_random_below_40_shows_in_the_right_bins(tmp_path):
    rng = np.random.default_rng(3)
    n = 4000
    truth = rng.integers(0, 2, n)
    high = np.arange(n) % 2 == 1
    energy = np.where(high, rng.uniform(60, 100, n), rng.uniform(1, 40, n))
    p_pi0 = np.where(high, 0.2 + 0.6 * truth + rng.normal(0, 0.05, n), rng.uniform(0, 1, n))
    preds = write_classifier(tmp_path / "p.root", truth, np.stack([1 - p_pi0, p_pi0], 1), energy=energy)
    b = physnn.evaluate(preds, bins_of="energy", bins=4, n_boot=50).figures["classification"]["bins_of"]
    rows = b["bins"]
    assert 40 < rows[1]["high"] == rows[2]["low"] < 60  # the middle edge in the gap: each bin holds one half
    for r in rows[:2]:  # random: 0.5 within a few of its 68% intervals (1000 events: ±0.02)
        assert r["auc"] == pytest.approx(0.5, abs=0.05)
        assert r["auc_low"] - 0.05 < 0.5 < r["auc_high"] + 0.05
        assert r["rejection"] == pytest.approx(1 / 0.8, rel=0.15)  # a random cut keeps 80% of the π0s
    for r in rows[2:]:
        assert r["auc"] > 0.999
        assert r["rejection"] > 100


def test_the_command_prints_the_table_and_writes_metrics_and_the_figure(tmp_path):
    truth, prob, energy = noisy_classifier(2000)
    preds = write_classifier(tmp_path / "p.root", truth, prob, energy=energy)
    out = tmp_path / "rep"
    result = runner.invoke(app, ["evaluate", str(preds), "--out", str(out), "--bins-of", "energy", "--bins", "3",
                                 "--bootstrap", "20"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "AUC and pi0 rejection at 80% photon efficiency per bin of energy" in result.output
    saved = json.loads((out / "metrics.json").read_text())["classification"]["bins_of"]
    assert saved["branch"] == "energy"
    assert len(saved["bins"]) == 3
    for row in saved["bins"]:
        assert f"{row['n_signal']:,} / {row['n_background']:,}" in result.output
    assert (out / "discrimination_by_energy.png").is_file()
    page = (out / "report.html").read_text()
    assert "discrimination_by_energy.png" in page
    assert "per bin of energy" in page
    from physnn.evaluation.plots_classification import bins_of_figure

    fig = bins_of_figure(saved, classes=["pi0", "photon"])
    auc_axis, rejection_axis = fig.axes
    assert rejection_axis.get_yscale() == "log"
    assert "pi0 rejection" in rejection_axis.get_ylabel()
    drawn = auc_axis.containers[0].lines[0].get_ydata()
    assert drawn == pytest.approx([r["auc"] for r in saved["bins"]])


def _bad(args, out):
    result = runner.invoke(app, ["evaluate", *args, "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()  # nothing half-written
    return result.output


def test_bad_bins_of_is_one_line_naming_the_branch_and_what_was_expected(tmp_path):
    truth, prob, energy = noisy_classifier(300)
    preds = write_classifier(tmp_path / "p.root", truth, prob, energy=energy)
    missing = _bad([str(preds), "--bins-of", "nosuch"], tmp_path / "r1")
    assert "--bins-of nosuch" in missing
    assert "no branch 'nosuch'" in missing
    assert "energy" in missing  # what it has
    shaped = _bad([str(preds), "--bins-of", "prob"], tmp_path / "r2")
    assert "--bins-of prob" in shaped
    assert "expected one number per event" in shaped
    alone = _bad([str(preds), "--bins", "3"], tmp_path / "r3")
    assert "--bins 3" in alone
    assert "--bins-of" in alone
    three = np.random.default_rng(0).dirichlet([1, 1, 1], 300)
    multi = write_classifier(tmp_path / "m.root", np.arange(300) % 3, three, energy=energy, kind="multiclass")
    out = _bad([str(multi), "--bins-of", "energy"], tmp_path / "r4")
    assert "binary classifier" in out
    assert "3-class" in out
    with pytest.raises(ConfigError, match=r"bins_of=nosuch: .* no branch 'nosuch'"):  # Python's words
        physnn.evaluate(preds, bins_of="nosuch")


def test_bins_of_refuses_a_regression_and_an_autoencoder_run(tmp_path, ae_run):
    import uproot

    e = np.random.default_rng(0).uniform(1, 100, 200)
    preds = tmp_path / "r.root"
    with uproot.recreate(preds) as f:
        f["predictions"] = {"entry": np.arange(200), "split": np.full(200, -1, np.int8), "energy": e,
                            "energy_pred": e * 1.01}
        f["physnn_meta"] = json.dumps({"command": "physnn predict", "task": {"kind": "regression",
                                                                             "targets": ["energy"]}})
    regression = _bad([str(preds), "--bins-of", "energy"], tmp_path / "r1")
    assert "--bins-of energy" in regression
    assert "binary classifier" in regression
    assert "regression" in regression
    autoencoder = _bad([str(ae_run.run_dir), "--bins-of", "energy"], tmp_path / "r2")
    assert "--bins-of energy" in autoencoder
    assert "reconstruction run folder" in autoencoder


def test_a_bin_of_one_class_and_events_without_a_value_are_said_not_hidden():
    from physnn.evaluation.discrimination import bins_of_table, classification_by_bin
    from physnn.evaluation.plots_classification import bins_of_figure

    rng = np.random.default_rng(8)
    values = np.r_[rng.uniform(0, 1, 100), rng.uniform(2, 3, 100), [np.nan] * 7]
    truth = np.r_[np.zeros(100, int), rng.integers(0, 2, 100), np.ones(7, int)]  # the low half: photons only
    got = classification_by_bin(truth, rng.uniform(0, 1, len(truth)), values, signal=0, bins=2, n_boot=10)
    assert got["left_out"] == 7
    low, high = got["bins"]
    assert (low["n_signal"], low["n_background"]) == (100, 0)
    assert low["auc"] is None
    assert low["rejection"] is None
    assert high["auc"] is not None
    assert sum(r["n_signal"] + r["n_background"] for r in got["bins"]) == 200
    _, _, rows, note = bins_of_table({"branch": "x", **got}, "photon", "pi0")
    assert rows[0][3:] == ["-", "-"]
    assert "7 events without a finite x left out" in note
    assert len(bins_of_figure({"branch": "x", **got}).axes[0].containers) == 1  # the bin with both classes
    one = classification_by_bin(truth[:200], rng.uniform(0, 1, 200), np.full(200, 5.0), signal=0, bins=3, n_boot=0)
    assert [(r["low"], r["high"]) for r in one["bins"]] == [(5.0, 5.0)]  # one value everywhere: one bin


def test_no_bin_with_both_classes_is_refused_before_anything_is_written(tmp_path):
    _, prob, _ = noisy_classifier(300)
    truth = np.arange(300) % 2  # 150 of each: the median of truth + noise splits the classes
    split = truth + np.random.default_rng(2).uniform(0, 0.5, 300)
    preds = write_classifier(tmp_path / "p.root", truth, prob, energy=np.full(300, np.nan),
                             extra={"label_copy": split})
    no_value = _bad([str(preds), "--bins-of", "energy"], tmp_path / "r1")
    assert "--bins-of energy" in no_value
    assert "no finite value" in no_value
    one_class = _bad([str(preds), "--bins-of", "label_copy", "--bins", "2"], tmp_path / "r2")  # each bin one class
    assert "--bins-of label_copy" in one_class
    assert "both classes" in one_class


def test_rejection_points_of_no_bin_is_a_bool_mask():
    from physnn.evaluation.plots_classification import _rejection_points

    assert _rejection_points([])[3].dtype == bool


def test_one_bin_has_the_overall_auc_exactly_on_tiny_probabilities(tmp_path):
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 2000)
    p_pi0 = np.where(truth == 1, 10 ** rng.uniform(-12, -6, 2000), 10 ** rng.uniform(-13, -7, 2000))
    prob = np.stack([1 - p_pi0, p_pi0], 1).astype(np.float32)
    preds = write_classifier(tmp_path / "p.root", truth, prob, energy=rng.uniform(1, 100, 2000), signal=1)
    c = physnn.evaluate(preds, bins_of="energy", bins=1, n_boot=0).figures["classification"]
    assert c["bins_of"]["bins"][0]["auc"] == c["auc"]


def test_several_predictions_files_refuse_the_options_of_one(tmp_path):
    truth, prob, energy = noisy_classifier(300)
    preds = write_classifier(tmp_path / "p.root", truth, prob, energy=energy)
    for option in (["--bins-of", "energy"], ["--bins", "3"], ["--by", "pdgid"], ["--baseline", "cell-sum"]):
        said = _bad([str(preds), str(preds), *option], tmp_path / "r")
        assert option[0] in said
        assert "one predictions file" in said


def test_a_file_without_class_probabilities_is_named_not_a_0_class_classifier(tmp_path):
    import uproot

    truth, prob, energy = noisy_classifier(300)
    preds = write_classifier(tmp_path / "p.root", truth, prob, energy=energy)
    arrays = uproot.open(preds)["predictions"].arrays(library="np")
    del arrays["prob"]
    with uproot.recreate(tmp_path / "q.root") as f:
        f["predictions"] = arrays
        f["physnn_meta"] = str(uproot.open(preds)["physnn_meta"])
    said = _bad([str(tmp_path / "q.root"), "--bins-of", "energy"], tmp_path / "r")
    assert "0-class" not in said
    assert "no 'prob' branch" in said
