"""Issue 29, item 3: named classes and the signal, per-group verdicts against baselines, the cell-sum baseline
outside the demo, and the side-by-side report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_classifier_predictions
from pydantic import ValidationError

import physnn
from physnn.config import DataConfig
from physnn.evaluation import metrics


def photons_and_pi0s(n: int = 4000, seed: int = 2):
    """Class 0 photons, class 1 pi0s; P(pi0) from two unequal Gaussians (the ROC is not symmetric)."""
    rng = np.random.default_rng(seed)
    truth = (np.arange(n) % 2).astype(np.int64)
    logit = np.where(truth == 1, rng.normal(1.5, 2.0, n), rng.normal(-1.0, 0.6, n))
    p1 = 1 / (1 + np.exp(-logit))
    return truth, np.stack([1 - p1, p1], axis=1)


def test_a_data_config_names_its_classes_and_its_signal():
    cfg = DataConfig(files="x.root", scalars=["a"], label="pdgid", classes={22: "photon", 111: "pi0"},
                     signal="photon")
    assert cfg.class_values() == [22, 111]
    assert cfg.class_labels() == ["photon", "pi0"]
    assert cfg.signal_index() == 0
    assert DataConfig(files="x.root", scalars=["a"], label="pdgid", classes=[22, 111], signal=111).signal_index() == 1
    assert DataConfig(files="x.root", scalars=["a"], label="pdgid", classes={11: 1, 211: 0}).class_values() == [211, 11]
    with pytest.raises(ValidationError, match=r"signal: 'gamma' is not one of the classes \(photon, pi0\)"):
        DataConfig(files="x.root", scalars=["a"], label="pdgid", classes={22: "photon", 111: "pi0"}, signal="gamma")
    with pytest.raises(ValidationError, match="signal: 'photon' needs the classes"):
        DataConfig(files="x.root", scalars=["a"], signal="photon")
    with pytest.raises(ValidationError, match="not both"):
        DataConfig(files="x.root", scalars=["a"], label="pdgid", classes={22: "photon", 111: 1})


def test_one_helper_names_classes_and_groups():
    """The names of classes and groups come from one piece of code each: fmt.particle_label (PDG ids, as int or
    text), summary.class_names (classes and groups), report.names_and_signal (a predictions file's names and
    signal), DataConfig.class_values (value -> index mappings, checked where the config is read)."""
    from physnn.evaluation import plots_common, report, summary
    from physnn.fmt import particle, particle_label

    assert plots_common.particle_label is particle_label
    assert particle_label("-211") == particle_label(-211) == particle(-211, symbol=True)
    assert particle_label("muon") == "muon"
    assert summary.class_names(["11", "-211"], "pdgid") == [particle(11, symbol=True), particle(-211, symbol=True)]
    assert summary.group_names("pdgid", ["11", "x"]) == {"11": f"pdgid 11 ({particle(11, symbol=True)})",
                                                        "x": "pdgid x"}
    assert not hasattr(report, "class_labels")  # DataConfig.class_labels means the configured names alone
    assert report.names_and_signal({"task": {"classes": [22, 111]}, "label": "pdgid", "signal": 0}, 2) == (
        [particle(22, symbol=True), particle(111, symbol=True)], 0)
    with pytest.raises(ValidationError, match=r"classes: the indices must be 0\.\.1, got \[1, 2\]"):
        DataConfig(files="x.root", scalars=["a"], label="pdgid", classes={11: 1, 211: 2})


def test_the_named_signal_is_the_roc_signal_and_its_rejection_is_the_benchmarks():
    """Photon (class 0) as signal: the AUC is that of P(photon) for photons, and the π0 rejection at 80% photon
    efficiency is the photon/π0 benchmark's (evaluation.photon_id.discrimination_by_bin, score P(π0), photons
    class 0): the same function gives the same number."""
    from sklearn.metrics import roc_auc_score

    from physnn.evaluation.photon_id import discrimination_by_bin

    truth, prob = photons_and_pi0s()
    fig = metrics.classification(truth, prob, n_boot=0, signal=0, names=["photon", "pi0"])
    assert fig["signal"] == "photon"
    assert fig["background"] == "pi0"
    assert fig["roc"]["n_signal"] == int(np.sum(truth == 0))
    assert fig["auc"] == pytest.approx(roc_auc_score(truth == 0, prob[:, 0]))
    assert fig["auc"] > 0.8  # P(pi0) as the photons' score would give 1 - AUC
    bench = discrimination_by_bin(truth, {"cnn": prob[:, 1]}, np.zeros(len(truth)), [-1, 1], n_boot=0)
    assert fig["rejection"]["rejection"] == bench[0]["rejection"]  # one function: the same number
    weight = np.where(truth == 1, 2.0, 1.0)
    weighted = metrics.classification(truth, prob, n_boot=0, signal=0, names=["photon", "pi0"], weight=weight)
    assert weighted["rejection"] == metrics.rejection_at(truth, prob[:, 0], 0.8, weight, signal=0)
    assert fig["rejection"]["signal_efficiency"] == pytest.approx(0.8, abs=0.002)
    pi0 = metrics.classification(truth, prob, n_boot=0, names=["photon", "pi0"])  # the default: class 1
    assert pi0["signal"] == "pi0"
    assert pi0["rejection"]["rejection"] != pytest.approx(fig["rejection"]["rejection"], rel=0.1)
    # calibration judges P(photon): its observed fraction is of photons
    assert fig["calibration"] == metrics.calibration(truth == 0, prob[:, 0])


def test_the_mc_categories_name_the_classes():
    """Photon (class 0) the signal: the MC categories are "certain photon", "certain pi0" and "uncertain" in the
    figures (labels beside the stable keys), the rule and the summary rows; none says negative or positive."""
    from physnn.evaluation.summary import summary_rows
    from physnn.fmt import percent

    truth = np.array([0, 0, 1, 1, 1])
    p_photon = np.array([0.9, 0.6, 0.1, 0.55, 0.01])
    std = np.array([0.01, 0.3, 0.02, 0.01, 0.001])
    prob = np.stack([p_photon, 1 - p_photon], 1)
    c = metrics.classification(truth, prob, prob_std=np.stack([std, std], 1), n_boot=0, signal=0,
                               names=["photon", "pi0"])
    mc = c["mc"]
    assert mc["labels"] == {"certain_positive": "certain photon", "certain_negative": "certain pi0",
                            "uncertain": "uncertain"}
    assert mc["fraction"]["certain_positive"] == pytest.approx(0.4)  # 0.9 and 0.55 ± 0.02: sure photons
    assert mc["fraction"]["certain_negative"] == pytest.approx(0.4)
    assert "certain photon above" in mc["rule"]
    assert "certain pi0 below" in mc["rule"]
    rows = dict(summary_rows({"events": 5, "split": "all", "classification": c}))
    assert rows["MC certain photon"].startswith(f"{percent(0.4)} of events")
    assert "MC certain pi0" in rows
    assert "MC uncertain" in rows
    text = json.dumps(rows)
    assert "negative" not in text
    assert "positive" not in text


def test_evaluate_names_the_classes_and_judges_the_configured_signal(tmp_path):
    from physnn.evaluation import plots
    from physnn.evaluation.report import names_and_signal
    from physnn.evaluation.summary import summary_rows

    truth, prob = photons_and_pi0s()
    meta = {"class_names": ["photon", "pi0"], "signal": 0}
    preds = write_classifier_predictions(tmp_path / "p.root", truth, prob, meta_extra=meta)
    ev = physnn.evaluate(preds, out=tmp_path / "rep", n_boot=10)
    c = ev.figures["classification"]
    assert c["signal"] == "photon"
    assert c["roc"]["n_signal"] == int(np.sum(truth == 0))
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["classification"]["signal"] == "photon"
    table = " ".join(f"{k} {v}" for k, v in summary_rows(ev.figures))
    assert "pi0 rejection at 80% photon efficiency" in table
    assert "signal photon (background: pi0" in table
    names, s = names_and_signal({"task": {"classes": [22, 111]}, "label": "pdgid", **meta}, 2)
    fig = plots.roc_figure(c["roc"], classes=[names[1 - s], names[s]])
    text = " ".join([fig._suptitle.get_text()] + [a.get_xlabel() + " " + a.get_ylabel() for a in fig.axes])
    assert "signal: photon" in text
    assert "pi0 rejection 1/ε$_B$" in text
    assert "photon efficiency ε$_S$" in text
    assert "label 0" not in text
    assert "class 1" not in text
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "pi0 rejection at 80% photon efficiency" in page


def test_an_event_classifier_says_background_and_signal(tmp_path):
    from physnn.evaluation.summary import summary_rows

    truth, prob = photons_and_pi0s()
    meta = {"task": {"kind": "binary", "classes": [0, 1]}, "label": "label", "class_names": ["background", "signal"],
            "signal": 1}
    preds = write_classifier_predictions(tmp_path / "p.root", truth, prob, meta_extra=meta)
    ev = physnn.evaluate(preds, n_boot=0)
    table = " ".join(f"{k} {v}" for k, v in summary_rows(ev.figures))
    assert "signal signal (background: background" in table
    assert "label 0" not in table
    assert "label 1" not in table


def test_a_trained_run_carries_its_class_names_to_the_report(epi_file, tmp_path):
    """From the data config to the predictions file to evaluate: classes {11: electron, 211: pion}, signal the
    electron (class 0)."""
    from conftest import run_config

    cfg = run_config(epi_file, epochs=1)
    cfg["data"].update(classes={11: "electron", 211: "pion"}, signal="electron")
    run = physnn.train(cfg, out=tmp_path / "run", progress=False)
    preds = physnn.predict(run.run_dir, epi_file, out=tmp_path / "p.root")
    meta = physnn.read_metadata(tmp_path / "p.root")
    assert meta["class_names"] == ["electron", "pion"]
    assert meta["signal"] == 0
    ev = physnn.evaluate(preds.path, n_boot=0, split="all")
    c = ev.figures["classification"]
    assert c["signal"] == "electron"
    import uproot

    truth = uproot.open(preds.path)["predictions"]["true_class"].array(library="np")
    assert c["roc"]["n_signal"] == np.sum(truth == 0) != np.sum(truth == 1)  # the electrons


def test_the_score_is_the_declared_signals_probability_end_to_end(epi_file, tmp_path):
    """signal: electron (class 0): predict's score, its MC spread and samples, and the exported graph's score are
    P(electron); physnn_meta says so (score_of); evaluate judges that score without flipping it twice."""
    import uproot
    from conftest import run_config
    from sklearn.metrics import roc_auc_score

    ort = pytest.importorskip("onnxruntime")
    cfg = run_config(epi_file, epochs=1)
    cfg["data"].update(classes={11: "electron", 211: "pion"}, signal="electron")
    run = physnn.train(cfg, out=tmp_path / "run", progress=False)
    det = physnn.predict(run.run_dir, epi_file, out=tmp_path / "det.root", collect=True)
    a = det.arrays
    np.testing.assert_array_equal(a["score"], a["prob"][:, 0])
    assert physnn.read_metadata(det.path)["score_of"] == "electron"
    mc = physnn.predict(run.run_dir, epi_file, out=tmp_path / "mc.root", mc_samples=4, keep_samples=True, seed=1,
                        collect=True)
    np.testing.assert_array_equal(mc.arrays["score"], mc.arrays["prob"][:, 0])
    np.testing.assert_array_equal(mc.arrays["score_std"], mc.arrays["prob_std"][:, 0])
    np.testing.assert_allclose(mc.arrays["score_samples"].mean(1), mc.arrays["score"], atol=1e-5)
    ev = physnn.evaluate(det.path, n_boot=0, split="all")
    truth = uproot.open(det.path)["predictions"]["true_class"].array(library="np")
    assert ev.figures["classification"]["auc"] == pytest.approx(roc_auc_score(truth == 0, a["prob"][:, 0]))
    exported = physnn.export(run.run_dir, tmp_path / "run.onnx")
    with uproot.open(epi_file) as f:
        images = f["showers"]["image"].array(library="np", entry_stop=40).astype(np.float32)
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"image": images}), strict=True))
    np.testing.assert_allclose(outputs["score"], a["score"][:40], rtol=1e-4, atol=1e-5)


def write_regression_predictions(path, true, pred, *, std=None, extra=None, split=None):
    """An energy regressor's predictions file (unit GeV, kind energy, given in physnn_meta's run config)."""
    import uproot

    meta = {"command": "physnn predict", "task": {"kind": "regression", "targets": ["energy"]}, "targets": ["energy"],
            "mc_samples": 0}
    n = len(true)
    branches = {"entry": np.arange(n), "split": np.full(n, -1, np.int8) if split is None else split,
                "energy": true, "energy_pred": pred, **({"energy_std": std} if std is not None else {}),
                **(extra or {})}
    with uproot.recreate(path) as f:
        f["predictions"] = branches
        f["physnn_meta"] = json.dumps(meta)
    return path


def mixture_where_the_sum_wins_for_electrons(n: int = 6000, seed: int = 7):
    """Electrons, photons and pions at 1-100 GeV. The model: σ/E 5% for all. The baseline: 2% for electrons
    (better than the model), the model's own residuals for photons (the same σ: not resolved), 20% and 30%
    low for pions (the model is better there and overall)."""
    rng = np.random.default_rng(seed)
    e = rng.uniform(1, 100, n)
    pdgid = np.array([11, 22, 211])[np.arange(n) % 3].astype(np.int32)
    noise = rng.normal(0, 1, n)
    pred = e * (1 + 0.05 * noise)
    base = np.where(pdgid == 11, e * (1 + 0.02 * rng.normal(0, 1, n)),
                    np.where(pdgid == 22, pred, e * (0.7 + 0.2 * rng.normal(0, 1, n))))
    return e, pred, base, pdgid


def test_no_overall_claim_that_a_group_contradicts(tmp_path):
    """The model beats the baseline overall but loses for electrons: the headline does not say better, and each
    group's verdict is right (better only when the intervals are clear of each other)."""
    from physnn.evaluation.summary import summary_rows

    e, pred, base, pdgid = mixture_where_the_sum_wins_for_electrons()
    preds = write_regression_predictions(tmp_path / "p.root", e, pred, extra={"pdgid": pdgid})
    ev = physnn.evaluate(preds, out=tmp_path / "rep", baselines={"cell sum": {"energy": base}}, by="pdgid",
                         targets={"energy": {"unit": "GeV", "kind": "energy"}})
    r = ev.figures["regression"]["energy"]
    assert r["sigma"] < r["baselines"]["cell sum"]["sigma"]  # overall, the model's σ is smaller
    headline = dict(summary_rows(ev.figures))["energy vs cell sum"]
    assert "better" not in headline.split("per group")[0], headline
    assert "worse for pdgid 11" in headline
    groups = {v: g["baselines"]["cell sum"]["verdict"] for v, g in r["by"]["groups"].items()}
    assert groups == {"11": "worse", "22": "not resolved", "211": "better"}
    assert r["baselines"]["cell sum"]["groups"] == groups
    assert "per group: better for pdgid 211" in headline
    assert "not resolved for pdgid 22" in headline
    saved = json.loads((tmp_path / "rep" / "metrics.json").read_text())["regression"]["energy"]
    assert saved["by"]["groups"]["11"]["baselines"]["cell sum"]["verdict"] == "worse"
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "the model is worse for pdgid 11" in page
    electrons = dict(summary_rows(ev.figures))["energy, pdgid 11"]
    assert "the model is worse" in electrons
    assert " ± " in electrons


@pytest.fixture(scope="module")
def energy_predictions(showers_file, tmp_path_factory):
    """An energy regressor's predictions on its training file, as physnn.predict writes them (entry, split,
    truth, pdgid; physnn_meta naming the file, tree and run), with a run folder whose config.yaml reads the
    image: the model's σ/E is 5%, 70% of the showers are its training split."""
    import uproot
    import yaml

    from physnn.io.metadata import config_hash

    out = tmp_path_factory.mktemp("cellsum")
    config = {"data": {"files": str(showers_file), "images": {"branches": ["image"]},
                       "targets": {"energy": {"unit": "GeV", "kind": "energy"}}, "observers": ["pdgid"]}}
    (out / "run").mkdir()
    (out / "run" / "config.yaml").write_text(yaml.safe_dump(config))
    truth = physnn.read(str(showers_file), ["energy", "pdgid"])
    e, pdgid = np.asarray(truth["energy"], np.float64), np.asarray(truth["pdgid"], np.int32)
    n = len(e)
    rng = np.random.default_rng(4)
    meta = {"command": "physnn predict", "task": {"kind": "regression", "targets": ["energy"]},
            "targets": ["energy"], "mc_samples": 0, "checkpoint": str(out / "run" / "best.pt"),
            "config_hash": config_hash(config), "files": [str(showers_file)], "tree": "showers", "mapping": {}}
    branches = {"entry": np.arange(n), "split": np.where(np.arange(n) % 10 < 7, 0, 2).astype(np.int8),
                "energy": e, "energy_pred": e * (1 + 0.05 * rng.normal(0, 1, n)), "pdgid": pdgid}
    with uproot.recreate(out / "preds.root") as f:
        f["predictions"] = branches
        f["physnn_meta"] = json.dumps(meta)
    return out / "preds.root"


def test_the_cell_sum_baseline_is_calibrated_on_the_training_split(energy_predictions, showers_file, tmp_path):
    """evaluate(baseline="cell-sum"): one factor Σ E·S / Σ S² on the split-0 rows, or one per group with by."""
    import uproot

    from physnn.demo import calibrated_sum
    from physnn.evaluation.summary import summary_rows

    rows = uproot.open(energy_predictions)["predictions"].arrays(["entry", "split", "energy", "pdgid"], library="np")
    cells = physnn.read(str(showers_file), ["image"])["image"]
    total = np.asarray(cells).reshape(len(cells), -1).sum(1)[rows["entry"]]
    train = rows["split"] == 0

    def factor(sel):
        return np.sum(rows["energy"][sel] * total[sel]) / np.sum(total[sel] ** 2)

    one = physnn.evaluate(energy_predictions, baseline="cell-sum", split="test")
    made = one.figures["baselines"]["calibrated cell sum"]["energy"]
    assert made["factors"] == {"all": pytest.approx(factor(train))}
    assert made["training_events"] == int(train.sum())
    assert "one factor for all events" in dict(summary_rows(one.figures))["calibrated cell sum"]
    r = one.figures["regression"]["energy"]
    assert "calibrated cell sum" in r["baselines"]
    assert r["by"]["name"] == "pdgid"  # verdicts per particle type without being asked
    demo = calibrated_sum(showers_file, rows)  # the demo's: the same numbers
    test = rows["split"] == 2
    residual = (demo[test] - rows["energy"][test])
    assert r["baselines"]["calibrated cell sum"]["bias"] == pytest.approx(residual.mean(), rel=1e-4)
    grouped = physnn.evaluate(energy_predictions, baseline="cell-sum", by="pdgid", split="test")
    factors = grouped.figures["baselines"]["calibrated cell sum"]["energy"]["factors"]
    assert set(factors) == {str(v) for v in np.unique(rows["pdgid"])}
    for value, f in factors.items():
        assert f == pytest.approx(factor(train & (rows["pdgid"] == int(value))))
    assert "one factor per pdgid group" in dict(summary_rows(grouped.figures))["calibrated cell sum"]


def test_the_cell_sum_is_not_calibrated_on_events_outside_the_training_selection(energy_predictions, showers_file,
                                                                                 tmp_path):
    """Rows predicted outside the run's training selection (in_selection 0) keep split 0 but were never trained
    on: the factor, the baseline's and the demo's, is fitted on split 0 and in_selection 1 only, and does not
    move when those rows have a wildly different cell-sum response."""
    import uproot

    from physnn.demo import calibrated_sum

    with uproot.open(energy_predictions) as f:
        rows = f["predictions"].arrays(library="np")
        meta = json.dumps(json.loads(f["physnn_meta"]))
    n = len(rows["entry"])
    inside = (np.arange(n) % 3 != 0).astype(np.int8)
    cells = physnn.read(str(showers_file), ["image"])["image"]
    total = np.asarray(cells).reshape(len(cells), -1).sum(1)[rows["entry"]]
    fit = (rows["split"] == 0) & (inside == 1)
    expected = np.sum(rows["energy"][fit] * total[fit]) / np.sum(total[fit] ** 2)
    energy = np.where(inside == 1, rows["energy"], 50 * rows["energy"])  # outside: a response 50 times off
    path = tmp_path / "preds.root"
    with uproot.recreate(path) as f:
        f["predictions"] = {**rows, "energy": energy, "in_selection": inside}
        f["physnn_meta"] = meta
    ev = physnn.evaluate(path, baseline="cell-sum", split="test")
    made = ev.figures["baselines"]["calibrated cell sum"]["energy"]
    assert made["factors"]["all"] == pytest.approx(expected)
    assert made["training_events"] == int(fit.sum())
    demo = calibrated_sum(showers_file, {**rows, "energy": energy, "in_selection": inside})
    assert demo == pytest.approx(expected * total)


def test_an_unknown_baseline_is_one_line_listing_the_known_ones(energy_predictions, tmp_path):
    from typer.testing import CliRunner

    from physnn.cli import app

    bad = CliRunner().invoke(app, ["evaluate", str(energy_predictions), "--baseline", "nosuch", "--out",
                                   str(tmp_path / "rep")])
    assert bad.exit_code == 2
    assert "baseline 'nosuch' is unknown" in bad.output
    assert "cell-sum" in bad.output
    assert "Traceback" not in bad.output
    assert not (tmp_path / "rep").exists()
    good = CliRunner().invoke(app, ["evaluate", str(energy_predictions), "--baseline", "cell-sum", "--by", "pdgid",
                                    "--out", str(tmp_path / "ok")], env={"COLUMNS": "200"})
    assert good.exit_code == 0, good.output
    assert "one factor per pdgid group" in good.output
    assert "energy vs calibrated cell sum" in good.output


def predictions_with_a_run(path, run_dir, true, pred, std, *, low=None, high=None, mc_samples=0):
    """A regression predictions file whose run folder declares the target (energy, GeV)."""
    import uproot
    import yaml

    from physnn.io.metadata import config_hash

    config = {"data": {"files": "x.root", "scalars": ["a"], "targets": {"energy": {"unit": "GeV", "kind": "energy"}}}}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    meta = {"command": "physnn predict", "task": {"kind": "regression", "targets": ["energy"]}, "targets": ["energy"],
            "mc_samples": mc_samples, "checkpoint": str(run_dir / "best.pt"), "config_hash": config_hash(config)}
    branches = {"entry": np.arange(len(true)), "split": np.full(len(true), -1, np.int8), "energy": true,
                "energy_pred": pred, "energy_std": std}
    if low is not None:
        branches.update(energy_low=low, energy_high=high)
        meta["conformal"] = 0.9
    with uproot.recreate(path) as f:
        f["predictions"] = branches
        f["physnn_meta"] = json.dumps(meta)
    return path


def test_side_by_side_has_units_a_plot_and_a_report_page(tmp_path):
    from typer.testing import CliRunner

    from physnn.cli import app

    rng = np.random.default_rng(3)
    e = rng.uniform(1, 100, 3000)
    sigma = 0.05 * e
    pred = e + rng.normal(0, 1, 3000) * sigma
    a = predictions_with_a_run(tmp_path / "a.root", tmp_path / "ra", e, pred, sigma, mc_samples=20)
    b = predictions_with_a_run(tmp_path / "b.root", tmp_path / "rb", e, pred, 0.5 * sigma,  # too small error bars
                               low=pred - 1.645 * sigma, high=pred + 1.645 * sigma)
    result = physnn.side_by_side([a, b], out=tmp_path / "side")
    names = {p.name for p in result.files}
    assert {"side_by_side.json", "energy_side_by_side.png", "report.html"} <= names
    from physnn.evaluation.side_by_side import side_by_side_table

    columns, rows = side_by_side_table(result.rows)
    assert "bias [GeV]" in columns
    assert "half width [GeV]" in columns
    assert len(rows) == 3
    page = (tmp_path / "side" / "report.html").read_text()
    assert "data:image/png;base64" in page
    assert "energy_side_by_side.png" in page
    assert "half width [GeV]" in page
    assert "b.root" in page
    bins = result.rows[1]["bins"]  # b's ±1σ per bin of the truth: half the true σ covers ~38%
    assert len(bins) >= 5
    assert all(0.25 < row["coverage"] < 0.5 for row in bins)
    cli = CliRunner().invoke(app, ["evaluate", str(a), str(b), "--out", str(tmp_path / "side2")],
                             env={"COLUMNS": "80"})
    assert cli.exit_code == 0, cli.output
    assert "GeV" in cli.output
    assert "report: " in cli.output
    assert (tmp_path / "side2" / "report.html").is_file()


def test_a_baseline_that_does_not_fit_the_predictions_is_one_clear_error(tmp_path):
    from physnn.errors import ConfigError, DataError

    truth, prob = photons_and_pi0s(400)
    classifier = write_classifier_predictions(tmp_path / "c.root", truth, prob)
    with pytest.raises(ConfigError, match="baseline 'cell-sum' estimates a regression target"):
        physnn.evaluate(classifier, baseline="cell-sum", out=tmp_path / "c")
    e = np.linspace(1, 100, 400)
    generic = write_regression_predictions(tmp_path / "g.root", e, e)  # no run config: kind generic
    with pytest.raises(ConfigError, match=r"estimates a target of kind energy; .* has energy \(kind generic\)"):
        physnn.evaluate(generic, baseline="cell-sum", out=tmp_path / "g")
    with pytest.raises(DataError, match="no training event"):  # split -1 everywhere: nothing to calibrate on
        physnn.evaluate(generic, baseline="cell-sum", targets={"energy": {"kind": "energy", "unit": "GeV"}})
    assert not (tmp_path / "c").exists()
    assert not (tmp_path / "g").exists()


def test_load_names_the_classes_and_the_signal(epi_file, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from physnn.cli import app

    config = {"files": str(epi_file), "images": {"branches": ["image"]}, "label": "pdgid",
              "classes": {11: "electron", 211: "pion"}, "signal": "electron"}
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["load", str(tmp_path / "d.yaml")], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "classes: 0=11 (electron), 1=211 (pion); signal: electron" in result.output
    config["signal"] = "muon"
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(config))
    bad = CliRunner().invoke(app, ["load", str(tmp_path / "d.yaml")], env={"COLUMNS": "80"})
    assert bad.exit_code == 2
    assert "signal: 'muon' is not one of the classes (electron, pion)" in bad.output
    assert "Traceback" not in bad.output
