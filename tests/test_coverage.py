"""physnn evaluate judges every interval per bin of the truth and in and out of the training domain."""

from __future__ import annotations

import numpy as np
import pytest

import physnn
from physnn.evaluation import metrics
from physnn.evaluation.coverage import coverage_by_domain


def test_an_error_bar_right_on_average_is_caught_wrong_in_each_half():
    """Too wide below 50, too narrow above: 68% overall, 100% and ~36% per bin."""
    rng = np.random.default_rng(0)
    true = rng.uniform(0, 100, 20_000)
    sigma = np.where(true < 50, 1.0, 3.0)
    pred = true + rng.normal(size=true.size) * np.where(true < 50, 0.2, 3.0 * 2.12)
    fig = metrics.regression(true, pred, std=sigma, bins=2)
    cover = [row["coverage_1sigma"] for row in fig["bins"]]
    assert cover[0] > 0.99
    assert 0.3 < cover[1] < 0.42
    assert 0.6 < fig["coverage_1sigma"] < 0.75  # the average hides both


def test_coverage_in_and_out_of_the_domain_is_computed_on_each_part_alone():
    true = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 20.0])
    pred = np.array([1.1, 2.5, 2.9, 4.0, 15.0, 20.5])
    std = np.full(6, 0.3)
    inside = np.array([1, 1, 1, 1, 0, 0])
    got = coverage_by_domain(true, pred, inside, std=std, low=pred - 1.0, high=pred + 1.0)
    assert got["in"]["events"] == 4
    assert got["in"]["coverage_1sigma"] == pytest.approx(3 / 4)
    assert got["out"]["coverage_1sigma"] == pytest.approx(0.0)
    assert got["out"]["conformal_coverage"] == pytest.approx(1 / 2)
    assert got["out"]["bias"] == pytest.approx(2.75)


def test_evaluate_reports_conformal_and_domain_coverage_of_a_prediction(reg_run, showers_file, tmp_path):
    high = tmp_path / "high.root"
    physnn.simulate("showers", high, events=200, seed=9, config={"energy_min": 150.0, "energy_max": 250.0})
    preds = tmp_path / "p.root"
    physnn.predict(reg_run.run_dir, [str(showers_file), str(high)], out=preds, conformal=0.9)
    result = physnn.evaluate(preds, split="all", plots=False)
    energy = result.figures["regression"]["energy"]
    assert energy["conformal"]["level"] == 0.9
    assert set(energy["domain"]) == {"in", "out"}
    import uproot

    with uproot.open(preds) as f:
        a = f["predictions"].arrays(library="np")
    out = ~a["in_domain"].astype(bool)
    assert energy["domain"]["out"]["events"] == int(out.sum()) >= 190  # nearly all of 150-250 GeV is flagged
    covered = (a["energy"] >= a["energy_low"]) & (a["energy"] <= a["energy_high"])
    assert energy["domain"]["out"]["conformal_coverage"] == pytest.approx(covered[out].mean())
    assert energy["domain"]["in"]["conformal_coverage"] == pytest.approx(covered[~out].mean())
