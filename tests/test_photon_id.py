"""Photon identification: the shower-shape variables, the boosted-tree baseline and the per-bin comparison."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from physnn.errors import ConfigError
from physnn.evaluation.metrics import rejection_at
from physnn.evaluation.photon_id import ShowerShapeBDT, discrimination_by_bin, shower_shape_scores
from physnn.physics.photon_id import local_maxima, photon_id_variables
from physnn.simulation import ShowerConfig, simulate_showers

ROOT = Path(__file__).resolve().parents[1]


def test_local_maxima_find_two_separated_peaks_and_ignore_a_plateau_edge():
    layer = np.zeros((2, 9, 9))
    layer[0, 2, 2], layer[0, 6, 6], layer[0, 6, 7] = 5.0, 2.0, 1.0  # two peaks, the second with a lower neighbour
    layer[1, 4, 4] = 3.0
    count, top = local_maxima(layer)
    np.testing.assert_array_equal(count, [2, 1])
    np.testing.assert_allclose(top, [[5.0, 2.0], [3.0, 0.0]])
    shapes = photon_id_variables(layer)
    np.testing.assert_allclose(shapes["eratio0"], [3 / 7, 1.0])  # (E1 - E2) / (E1 + E2); 1 without a second
    np.testing.assert_allclose(shapes["e2nd0"], [2 / 8, 0.0])
    np.testing.assert_allclose(shapes["core0"], [5 / 5, 1.0])  # the 7x7 around (2, 2) does not reach (6, 6)
    assert all(np.isfinite(v).all() for v in shapes.values())


def test_ratios_stay_bounded_on_a_layer_whose_noise_of_both_signs_sums_to_almost_nothing():
    """With a symmetric readout a layer of noise alone sums to ~0 (16% of photons' first layers): the
    second maximum and the core fraction are then ratios of the positive cells, in [0, 1], not of the
    signed sum, which sent them to 15 and beyond."""
    layer = np.zeros((1, 1, 9, 9))
    layer[0, 0, 4, 4], layer[0, 0, 4, 6] = 0.20, 0.15  # two maxima of noise
    layer[0, 0, 2, 2], layer[0, 0, 6, 6] = -0.19, -0.15  # and two negative cells: the layer sums to 0.01
    v = photon_id_variables(layer)
    assert 0.0 <= v["e2nd0"][0] <= 1.0
    assert 0.0 <= v["core0"][0] <= 1.0
    assert v["e2nd0"][0] == pytest.approx(0.15 / 0.35)
    assert v["core0"][0] == pytest.approx(0.20 / 0.35)


def test_rejection_at_a_photon_efficiency(rng):
    photons = rng.uniform(0.0, 1.0, 200_000)
    pi0 = rng.uniform(0.5, 1.5, 200_000)  # the cut at 0.8 keeps 80% of the photons and 30% of the π0s
    y = np.r_[np.zeros(photons.size), np.ones(pi0.size)]
    assert rejection_at(y, -np.r_[photons, pi0], 0.8, signal=0)["rejection"] == pytest.approx(1 / 0.3, rel=0.02)
    assert rejection_at(y, -np.r_[photons, pi0 + 2], 0.8, signal=0)["rejection"] == np.inf


def test_without_resamples_there_is_no_interval(rng):
    y = np.r_[np.zeros(100), np.ones(100)]
    rows = discrimination_by_bin(y, {"s": y + rng.normal(0, 1, 200)}, np.full(200, 10.0), [1, 100], n_boot=0)
    assert "auc_low" not in rows[0]
    assert 0.6 < rows[0]["auc"] < 0.9


def test_discrimination_by_bin_gives_every_score_the_same_resamples(rng):
    n = 4000
    energy = rng.uniform(1, 100, n)
    y = rng.integers(0, 2, n)
    noisy = y + rng.normal(0, 1.0, n)
    rows = discrimination_by_bin(y, {"good": noisy, "same": noisy.copy(), "perfect": y + 0.1 * rng.random(n)},
                                 energy, [1, 50, 100], n_boot=50)
    assert [(r["low"], r["score"]) for r in rows] == [(1, "good"), (1, "same"), (1, "perfect"),
                                                     (50, "good"), (50, "same"), (50, "perfect")]
    for good, same, perfect in (rows[:3], rows[3:]):
        assert {k: good[k] for k in good if k != "score"} == {k: same[k] for k in same if k != "score"}
        assert good["auc_low"] < good["auc"] < good["auc_high"]
        assert good["auc"] == pytest.approx(0.76, abs=0.03)  # two unit Gaussians one sigma apart
        assert perfect["auc"] == 1.0
        assert perfect["rejection"] == np.inf
        assert good["n_signal"] + good["n_background"] == np.sum((energy >= good["low"]) & (energy < good["high"]))


def test_the_shower_shape_baseline_separates_resolved_pi0s():
    out = simulate_showers(2000, ShowerConfig(particles=["gamma", "pi0"], energy_min=5, energy_max=20), seed=8)
    y = (out["pdgid"] == 111).astype(int)
    train = np.arange(len(y)) < 1400
    score = shower_shape_scores(out["image"], y, train, seed=0)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[~train], score[~train]) > 0.85  # two maxima several cells apart
    # fitted on one sample and scoring another (an independent test sample): the same classifier, the same scores
    bdt = ShowerShapeBDT.fit(out["image"][train], y[train], seed=0)
    np.testing.assert_allclose(bdt.scores(out["image"][~train]), score[~train], rtol=1e-12)
    with pytest.raises(ConfigError, match="both classes"):
        ShowerShapeBDT.fit(out["image"][:50], np.zeros(50, dtype=int))


@pytest.mark.slow
@pytest.mark.parametrize("test_events", [0, 900])
def test_the_gamma_pi0_example_runs_scaled_down(tmp_path, test_events):
    spec = importlib.util.spec_from_file_location("gamma_pi0", ROOT / "examples" / "gamma_pi0.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--out", str(tmp_path), "--events", "600", "--test-events", str(test_events),
                  "--set", "train.epochs=1"])
    rows = json.loads((tmp_path / "photon_id.json").read_text())
    assert {r["score"] for r in rows} == {example.CNN, example.BASELINE}
    assert len(rows) == 2 * (len(example.EDGES) - 1)
    assert all(r["auc_low"] <= r["auc"] <= r["auc_high"] for r in rows)
    baseline = [r for r in rows if r["score"] == example.BASELINE]
    weights = [r["n_signal"] + r["n_background"] for r in baseline]
    assert np.average([r["auc"] for r in baseline], weights=weights) > 0.6  # ~15 test showers a bin: loose
    assert (tmp_path / ("predictions_test.root" if test_events else "predictions.root")).is_file()
    tested = sum(r["n_signal"] + r["n_background"] for r in baseline)
    assert tested == test_events if test_events else 60 < tested < 120  # every independent shower, or ~15%
    with pytest.raises(SystemExit, match="other settings"):  # its showers and CNN are not for another test sample
        example.main(["--out", str(tmp_path), "--events", "600", "--test-events", str(test_events + 300)])
