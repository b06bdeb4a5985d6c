"""Deep ensembles (train --ensemble N) and split-conformal intervals (predict --conformal LEVEL)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY_GAN, run_config
from typer.testing import CliRunner

import physnn
from physnn.cli.app import app
from physnn.models.conformal import conformal_quantiles

runner = CliRunner()


@pytest.fixture(scope="module")
def energy_ensemble(showers_file, tmp_path_factory):
    """Three energy regressors (one epoch each) in one ensemble folder."""
    out = tmp_path_factory.mktemp("ensemble") / "energy"
    return physnn.train(run_config(showers_file, task="regression", epochs=1, ensemble=3), out=out, progress=False)


def _member_predictions(run_dir, files, key, **kwargs):
    return np.stack([physnn.predict(run_dir / "members" / f"member-{i}", files, **kwargs).arrays[key]
                     for i in range(3)])


def test_an_ensemble_predicts_its_members_mean_with_their_spread_as_the_epistemic_error(energy_ensemble,
                                                                                       showers_file):
    run = energy_ensemble.run_dir
    assert len(energy_ensemble.members) == 3
    assert [m.run_dir.name for m in energy_ensemble.members] == ["member-0", "member-1", "member-2"]
    got = physnn.predict(run, showers_file)
    members = _member_predictions(run, showers_file, "energy_pred")
    assert np.std(members, axis=0).mean() > 0.1  # different seeds: the members disagree
    np.testing.assert_allclose(got.arrays["energy_pred"], members.mean(0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got.arrays["energy_epistemic"], members.std(0, ddof=1), rtol=1e-4, atol=1e-4)
    assert got.meta["members"] == 3
    # with MC dropout as well: T passes of every member, the spread of all 3 T means
    mc = physnn.predict(run, showers_file, mc_samples=4, keep_samples=True).arrays
    assert mc["energy_samples"].shape[1] == 12
    # the central value stays the members' deterministic mean: the passes give the spread only
    np.testing.assert_allclose(mc["energy_pred"], got.arrays["energy_pred"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(mc["energy_epistemic"], mc["energy_samples"].std(1, ddof=1), rtol=1e-4, atol=1e-4)


def test_the_ensemble_fits_its_own_error_bar_scale_on_the_validation_split(energy_ensemble, showers_file):
    """The ensemble's σ scale makes its own ±1σ (members' spread included) cover 68.27% of the validation
    events exactly; the first member's scale would not."""
    ensemble = torch.load(energy_ensemble.run_dir / "best.pt", weights_only=True)
    assert ensemble["ensemble"]["seeds"] == [1, 2, 3]
    assert len(ensemble["ensemble"]["models"]) == 3
    assert set(ensemble["task"]["conformal"]) == {"deterministic", "mc"}
    a = physnn.predict(energy_ensemble.run_dir, showers_file).arrays
    val = a["split"] == 1
    pull = np.abs(a["energy_pred"] - a["energy"])[val] / a["energy_std"][val]
    assert np.quantile(pull.astype(np.float64), 0.682689492) == pytest.approx(1.0, abs=2e-3)
    first = torch.load(energy_ensemble.run_dir / "members" / "member-0" / "best.pt", weights_only=True)
    assert abs(first["task"]["sigma_scale"]["deterministic"][0] / ensemble["task"]["sigma_scale"]["deterministic"][0]
               - 1) > 0.01


def test_an_ensemble_classifier_averages_the_members_scores(epi_file, tmp_path):
    out = tmp_path / "epi"
    physnn.train(run_config(epi_file, epochs=1, ensemble=3), out=out, progress=False)
    got = physnn.predict(out, epi_file).arrays
    members = _member_predictions(out, epi_file, "score")
    np.testing.assert_allclose(got["score"], members.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["score_std"], members.std(0, ddof=1), rtol=1e-4, atol=1e-6)


def test_an_exported_ensemble_returns_the_predictions_and_spread_of_predict(energy_ensemble, showers_file, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import uproot

    res = physnn.export(energy_ensemble.run_dir, tmp_path / "ensemble.onnx")
    assert list(res.outputs) == ["pred", "aleatoric", "epistemic", "std"]
    with uproot.open(showers_file) as f:
        images = f["showers"]["image"].array(library="np", entry_stop=40).astype(np.float32)
    session = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    pred, _, epistemic, std = session.run(None, {"image": images})
    ref = physnn.predict(energy_ensemble.run_dir, showers_file).arrays
    np.testing.assert_allclose(pred[:, 0], ref["energy_pred"][:40], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(epistemic[:, 0], ref["energy_epistemic"][:40], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(std[:, 0], ref["energy_std"][:40], rtol=1e-4, atol=1e-3)


def test_conformal_intervals_cover_the_finite_sample_rank_of_the_validation_events(energy_ensemble, showers_file):
    """On the validation events themselves the 90% interval covers exactly ceil((n + 1) 0.9) of the n: the
    rank, the raw σ and the mode are the ones fitted."""
    a = physnn.predict(energy_ensemble.run_dir, showers_file, conformal=0.9).arrays
    val = a["split"] == 1
    n = int(val.sum())
    inside = (a["energy"] >= a["energy_low"]) & (a["energy"] <= a["energy_high"])
    rank = math.ceil((n + 1) * 0.9)
    assert rank - 1 <= int(inside[val].sum()) <= rank  # the event at the quantile sits on the float32 boundary
    np.testing.assert_allclose((a["energy_high"] + a["energy_low"]) / 2, a["energy_pred"], rtol=1e-5, atol=1e-3)
    mc = physnn.predict(energy_ensemble.run_dir, showers_file, conformal=0.9, mc_samples=30).arrays
    assert abs(float(((mc["energy"] >= mc["energy_low"]) & (mc["energy"] <= mc["energy_high"]))[val].mean())
               - 0.9) < 0.06  # other dropout masks than in the fit: about, not exactly


def test_split_conformal_quantiles_are_the_finite_sample_rank_and_cover_exchangeable_events():
    scores = torch.from_numpy(np.random.default_rng(0).permutation(np.arange(1.0, 100.0)))[:, None]  # 1 ... 99
    fitted = conformal_quantiles(scores, None)
    assert fitted["quantiles"]["0.9"] == [90.0]  # rank ceil(100 x 0.9) = 90
    assert fitted["quantiles"]["0.99"] == [99.0]  # rank ceil(100 x 0.99) = 99
    assert conformal_quantiles(scores[:50], None)["quantiles"]["0.99"] == [math.inf]  # rank 51 of 50
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.5, 3.0, size=(1000, 1))
    residual = rng.standard_t(3, size=(1000, 1)) * sigma  # heavy tails: a Gaussian 1.645 sigma would not do
    q = conformal_quantiles(torch.from_numpy(residual), torch.from_numpy(sigma))["quantiles"]["0.9"][0]
    new_sigma = rng.uniform(0.5, 3.0, size=200_000)
    covered = np.abs(rng.standard_t(3, size=200_000) * new_sigma) <= q * new_sigma
    assert 0.88 < covered.mean() < 0.925  # 0.9 <= E[coverage] <= 0.901, plus the spread of q over fits


def test_bad_ensemble_and_conformal_requests_are_one_line_each(showers_file, energy_ensemble, cls_run, tmp_path):
    import yaml

    gan = run_config(showers_file, task="generation", epochs=1)
    gan["data"] |= {"scalars": ["energy"], "observers": []}
    gan["model"] = TINY_GAN
    (tmp_path / "gan.yaml").write_text(yaml.safe_dump(gan))
    cases = [
        (["train", str(tmp_path / "gan.yaml"), "--ensemble", "2", "--out", str(tmp_path / "gan")],
         "ensembles are for classifiers and regressors, not task.kind generation"),
        (["train", "--resume", "--out", str(energy_ensemble.run_dir)], "an ensemble, which --resume does not continue"),
        (["predict", str(cls_run.run_dir), str(showers_file), "--conformal", "0.9", "--out",
          str(tmp_path / "c.root")], "intervals are for regression runs"),
        (["predict", str(energy_ensemble.run_dir), str(showers_file), "--conformal", "0.85", "--out",
          str(tmp_path / "d.root")], "expected one of the fitted levels 0.6827, 0.8, 0.9, 0.95, 0.99"),
    ]
    for args, expected in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "gan").exists()
    assert not (tmp_path / "c.root").exists()
    assert not (tmp_path / "d.root").exists()


def test_evaluate_puts_the_error_bars_of_several_files_side_by_side(energy_ensemble, showers_file, cls_run,
                                                                     tmp_path):
    member = energy_ensemble.run_dir / "members" / "member-0"
    files = [tmp_path / "mc.root", tmp_path / "ens.root"]
    physnn.predict(member, showers_file, out=files[0], mc_samples=3, conformal=0.9)
    physnn.predict(energy_ensemble.run_dir, showers_file, out=files[1])
    result = runner.invoke(app, ["evaluate", *map(str, files), "--split", "all", "--out", str(tmp_path / "side")],
                           env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "error bars side by side" in result.output
    rows = json.loads((tmp_path / "side" / "side_by_side.json").read_text())
    assert [(r["label"], r["interval"]) for r in rows] == [("MC dropout, T = 3", "±1σ"),
                                                           ("MC dropout, T = 3", "conformal 0.9"),
                                                           ("ensemble of 3", "±1σ")]
    single = physnn.evaluate(files[1], split="all", plots=False).figures["regression"]["energy"]
    assert rows[2]["coverage"] == single["coverage_1sigma"]
    assert rows[2]["half_width"] == pytest.approx(single["mean_std"])
    assert rows[1]["nominal"] == 0.9
    physnn.predict(cls_run.run_dir, showers_file, out=tmp_path / "cls.root")
    refused = runner.invoke(app, ["evaluate", str(files[0]), str(tmp_path / "cls.root"), "--out",
                                  str(tmp_path / "side2")])
    assert refused.exit_code == 2
    assert "side by side compares the error bars of regressions" in refused.output


def test_transfer_from_an_ensemble_says_it_takes_member_zero(energy_ensemble, showers_file, tmp_path):
    cfg = run_config(showers_file, task="regression", epochs=1)
    result = physnn.train(cfg, out=tmp_path / "t", init_from=energy_ensemble.run_dir, progress=False)
    assert "(member 0 of its ensemble)" in result.notes[0]


def test_a_bad_config_with_overwrite_leaves_an_earlier_ensemble_whole(energy_ensemble, tmp_path):
    import shutil

    import yaml

    out = tmp_path / "ens"
    shutil.copytree(energy_ensemble.run_dir, out)
    cfg = run_config(tmp_path / "no_such_file.root", task="regression", epochs=1)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    result = runner.invoke(app, ["train", str(tmp_path / "bad.yaml"), "--ensemble", "2", "--out", str(out),
                                 "--overwrite"])
    assert result.exit_code == 2, result.output
    assert "no_such_file.root" in result.output
    assert (out / "best.pt").is_file()
    assert sorted(p.name for p in (out / "members").iterdir()) == ["member-0", "member-1", "member-2"]
    assert (out / "members" / "member-0" / "best.pt").is_file()
