"""CaloChallenge-style comparison: features, separation power, classifier test, the compare command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from physnn.cli import app
from physnn.evaluation.classifier_test import classifier_test
from physnn.physics.showers import high_level_features, separation_power

runner = CliRunner()


@pytest.fixture(scope="module")
def sim_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two independent simulator samples of the same showers (different seeds)."""
    import physnn

    folder = tmp_path_factory.mktemp("pair")
    a, b = folder / "a.root", folder / "b.root"
    physnn.simulate("showers", a, events=1500, seed=11)
    physnn.simulate("showers", b, events=1500, seed=12)
    return a, b


@pytest.fixture(scope="module")
def third(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A third independent simulator sample: the floor of the FPD and KPD."""
    import physnn

    c = tmp_path_factory.mktemp("third") / "c.root"
    physnn.simulate("showers", c, events=1500, seed=13)
    return c


def test_separation_power_limits(rng):
    same = separation_power(rng.normal(size=50_000), rng.normal(size=50_000))
    assert same < 0.002
    shifted = separation_power(rng.normal(size=50_000), rng.normal(1.0, 1.0, size=50_000))
    assert 0.1 < shifted < 0.5
    disjoint = separation_power(np.zeros(100), np.ones(100), np.array([-0.5, 0.5, 1.5]))
    assert disjoint == pytest.approx(1.0)


def test_bins_of_a_discrete_feature_hold_whole_steps(rng):
    """A fraction of 576 cells takes values k/576: bins must not alternate between one value and none (a comb
    that looks like a disagreement), and the same sample must not separate from itself."""
    from physnn.physics.showers import feature_bins, normalized_histogram

    a, b = rng.binomial(576, 0.03, 20_000) / 576, rng.binomial(576, 0.03, 20_000) / 576
    edges = feature_bins(a, b, 50)
    counts = normalized_histogram(a, edges)
    inside = counts[(edges[:-1] > np.quantile(a, 0.05)) & (edges[1:] < np.quantile(a, 0.95))]
    assert inside.size >= 5
    assert np.all(inside > 0), "empty bins between filled ones"
    widths = np.diff(edges)
    assert np.allclose(widths / (1 / 576), np.round(widths / (1 / 576)))  # whole steps per bin
    assert separation_power(a, b, 50) < 0.005
    continuous = feature_bins(rng.normal(size=1000), rng.normal(size=1000), 50)
    assert len(continuous) == 51  # a continuous feature keeps its 50 equal bins


def test_separation_power_formula():
    edges = np.array([0.0, 1.0, 2.0])
    a = np.array([0.5, 0.5, 0.5, 1.5])  # h1 = (0.75, 0.25)
    b = np.array([0.5, 1.5])            # h2 = (0.5, 0.5)
    expected = 0.5 * ((0.25**2) / 1.25 + (0.25**2) / 0.75)
    assert separation_power(a, b, edges) == pytest.approx(expected)


def test_high_level_features_of_known_showers():
    images = np.zeros((2, 2, 5, 4), np.float32)
    images[0, 0, 2, 1] = 3.0          # layer 0: one cell at (y=2, x=1)
    images[0, 1, 1, 0] = 1.0          # layer 1: two cells, x = 0 and 2, same y
    images[0, 1, 1, 2] = 1.0
    images[1, 0, 4, 3] = 10.0         # event 1: layer 1 empty
    f = high_level_features(images, incident=np.array([10.0, 20.0]))
    np.testing.assert_allclose(f["e_ratio"], [0.5, 0.5])
    np.testing.assert_allclose(f["e_layer0"], [3.0, 10.0])
    np.testing.assert_allclose(f["e_layer1"], [2.0, 0.0])
    assert f["centroid_x0"][0] == pytest.approx(1.0)
    assert f["centroid_y0"][0] == pytest.approx(2.0)
    assert f["centroid_x1"][0] == pytest.approx(1.0)
    assert f["width_x1"][0] == pytest.approx(1.0)
    assert f["width_y1"][0] == pytest.approx(0.0)
    assert np.isnan(f["centroid_x1"][1])  # an empty layer has no centroid
    np.testing.assert_allclose(f["sparsity1"], [2 / 20, 0.0])
    np.testing.assert_allclose(f["e_max"], [3.0, 10.0])
    single = high_level_features(images[:, 0])  # (N, H, W): one layer, no incident energy
    np.testing.assert_allclose(single["e_total"], [3.0, 10.0])


def test_classifier_test_tells_different_samples_apart(rng):
    a = rng.normal(size=(1500, 5))
    b = rng.normal(size=(1500, 5))
    b[:, 0] += 1.5
    result = classifier_test(a, b, seed=0)
    assert result["auc"] > 0.8
    same = classifier_test(a, rng.normal(size=(1500, 5)), seed=0)
    assert abs(same["auc"] - 0.5) < 0.07
    assert same["events"] == {"train": 900, "val": 300, "test": 300}


def test_compare_two_simulator_samples_is_indistinguishable(sim_pair, third, tmp_path):
    import physnn

    a, b = sim_pair
    result = physnn.compare(a, b, out=tmp_path / "report", seed=0, floor=third)
    figures = result.figures()
    assert result.events == {"reference": 1500, "candidate": 1500}
    expected = {"e_ratio", "e_max", *(f"{k}{layer}" for layer in range(3) for k in
                ("e_layer", "centroid_x", "centroid_y", "width_x", "width_y", "sparsity"))}
    assert set(result.separation) == expected
    # statistical floor with 1500 showers and 50 bins: about bins / (2 N) ~ 0.017
    assert figures["separation_power_mean"] < 0.03
    assert max(result.separation.values()) < 0.06
    for kind in ("low", "high"):
        assert abs(result.classifier[kind]["auc"] - 0.5) < 0.08, result.classifier[kind]
    assert result.timing["reference_showers_per_s"] > 0  # the simulator records its speed in physnn_meta
    assert result.timing["reference_by"] == "physnn simulate showers"
    written = {p.name for p in result.files}
    assert {"metrics.json", "separation.csv", "features_energy.png", "features_centroid.png", "features_width.png",
            "features_sparsity.png"} <= written
    stored = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert stored["separation_power"]["e_ratio"] == pytest.approx(result.separation["e_ratio"])
    # same simulator settings: e-, gamma, pi+ in equal shares, 1-100 GeV, same impact spread
    assert stored["conditions"]["matched"] is True, stored["conditions"]["differences"]
    assert stored["conditions"]["checked"] == ["particles", "energy", "x0", "y0", "readout"]
    # FPD and KPD (JetNet's) on the high-level features, beside the floor of two simulator samples (a vs third)
    dist = stored["distances"]
    assert dist == result.distances
    assert dist["floor"] == str(third)
    assert 0 < dist["fpd_err"] < dist["fpd"] < 2 * dist["fpd_floor"], dist  # finite samples: FPD > 0, as the floor
    assert abs(dist["kpd"]) < 3 * dist["kpd_err"], dist
    assert abs(dist["kpd_floor"]) < 3 * dist["kpd_floor_err"], dist
    assert set(dist["by_type"]) == {"e-", "gamma", "pi+"}
    for figures in dist["by_type"].values():
        assert {"fpd", "fpd_err", "kpd", "kpd_err", "fpd_floor", "fpd_floor_err", "kpd_floor", "kpd_floor_err"} \
            == set(figures)


def test_compare_sees_a_wrong_energy_scale(sim_pair, third, tmp_path):
    """A candidate whose cells are 10 % too high is found by the features, the classifiers, FPD and KPD."""
    import uproot

    import physnn

    a, b = sim_pair
    arrays = uproot.open(b)["showers"].arrays(library="np")
    arrays["image"] = arrays["image"] * np.float32(1.1)
    bad = tmp_path / "scaled.root"
    with uproot.recreate(bad) as f:
        f["showers"] = arrays
    result = physnn.compare(a, bad, seed=0, classifier=["high"], floor=third)
    assert result.separation["e_ratio"] > 0.15
    assert result.classifier["high"]["auc"] > 0.75
    dist = result.distances
    assert dist["fpd"] > 3 * dist["fpd_floor"], dist
    assert dist["kpd"] > 5 * dist["kpd_err"], dist
    assert dist["kpd"] > dist["kpd_floor"] + 5 * dist["kpd_floor_err"], dist
    for name, f in dist["by_type"].items():  # each type is off too (500 showers each: floors well above 0)
        assert f["fpd"] > f["fpd_floor"], (name, f)
        assert f["kpd"] > f["kpd_floor"] + 3 * np.hypot(f["kpd_err"], f["kpd_floor_err"]), (name, f)
    assert result.out is None
    assert result.files == []


def test_compare_cli(sim_pair, tmp_path):
    a, b = sim_pair
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "r"), "--classifier", "high",
                              "--max-events", "800"])
    assert res.exit_code == 0, res.output
    assert "separation power" in res.output
    assert "classifier AUC on high-level features" in res.output
    assert "reference:" in res.output
    assert "showers/s" in res.output
    assert "FPD on high-level features (JetNet" in res.output
    assert "KPD on high-level features (JetNet" in res.output
    assert "floor" not in res.output


def test_compare_cli_floor(sim_pair, third, tmp_path, write_root):
    a, b = sim_pair
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "r"), "--classifier", "none",
                              "--floor", str(third)])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if line.startswith(("FPD", "KPD"))]
    assert len(lines) == 2, res.output
    assert all("floor (reference vs --floor)" in line for line in lines)
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["distances"]["kpd_floor_err"] > 0
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "r2"), "--floor",
                              str(tmp_path / "missing.root")])
    assert res.exit_code == 2
    assert "missing.root" in res.output
    other = write_root({"image": np.ones((20, 2, 4, 4), np.float32), "energy": np.ones(20, np.float32)},
                       name="grid.root", tree="showers")
    res = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "r3"), "--floor", str(other)])
    assert res.exit_code == 2
    assert "grid.root" in res.output
    assert "same grid" in res.output
    assert not (tmp_path / "r2").exists()
    assert not (tmp_path / "r3").exists()


def test_compare_errors(sim_pair, tmp_path, write_root):
    a, _ = sim_pair
    other = write_root({"image": np.ones((20, 2, 4, 4), np.float32), "energy": np.ones(20, np.float32)},
                       name="grid.root", tree="showers")
    res = runner.invoke(app, ["compare", str(a), str(other), "--out", str(tmp_path / "r1")])
    assert res.exit_code == 2
    assert "same grid" in res.output
    res = runner.invoke(app, ["compare", str(a), str(a), "--image", "cells", "--out", str(tmp_path / "r2")])
    assert res.exit_code == 2
    assert "no image branch 'cells'" in res.output
    flat = write_root({"energy": np.ones(20, np.float32)}, name="flat.root")
    res = runner.invoke(app, ["compare", str(flat), str(a), "--out", str(tmp_path / "r3")])
    assert res.exit_code == 2
    assert "no image branch found" in res.output
    res = runner.invoke(app, ["compare", str(a), str(a), "--classifier", "mid", "--out", str(tmp_path / "r4")])
    assert res.exit_code == 2
    assert "--classifier mid" in res.output
    bad = write_root({"image": np.full((20, 3, 24, 24), np.nan, np.float32), "energy": np.ones(20, np.float32)},
                     name="nan.root", tree="showers")
    res = runner.invoke(app, ["compare", str(a), str(bad), "--out", str(tmp_path / "r5")])
    assert res.exit_code == 2
    assert "nan.root" in res.output
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("r")]  # no report folder left behind
