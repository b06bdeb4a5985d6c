"""Physics sanity of the calorimeter simulator."""

from __future__ import annotations

import numpy as np
import pytest

from physnn.errors import ConfigError
from physnn.simulation import ShowerConfig, simulate_showers


@pytest.fixture(scope="module")
def electrons():
    cfg = ShowerConfig(particles=["e-"], noise=0.0, threshold=0.0)
    return simulate_showers(3000, cfg, seed=1)


@pytest.fixture(scope="module")
def mixed():
    return simulate_showers(3000, ShowerConfig(energy_min=20, energy_max=60), seed=2)


def test_shapes_and_types():
    out = simulate_showers(50, seed=0)
    assert out["image"].shape == (50, 3, 24, 24)
    assert out["image"].dtype == np.float32
    assert set(out) == {"image", "energy", "pdgid", "label", "x0", "y0"}
    assert set(np.unique(out["pdgid"])) <= {11, 22, 211}
    assert np.all((out["energy"] >= 1) & (out["energy"] <= 100))
    lookup = {0: 11, 1: 22, 2: 211}
    assert all(lookup[int(lab)] == int(p) for lab, p in zip(out["label"], out["pdgid"], strict=True))


def test_configurable_geometry():
    cfg = ShowerConfig(layers_x0=[5, 5, 5, 5, 10], height=12, width=16, particles=["pi+", "e-"])
    out = simulate_showers(20, cfg, seed=0)
    assert out["image"].shape == (20, 5, 12, 16)
    assert set(np.unique(out["label"])) <= {0, 1}
    assert np.all(out["pdgid"][out["label"] == 0] == 211)


def test_seed_reproducible():
    a = simulate_showers(2500, seed=7)
    b = simulate_showers(2500, seed=7)
    c = simulate_showers(2500, seed=8)
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(b["image"], c["image"])
    assert not np.array_equal(a["image"][:2000], a["image"][500:])  # chunks differ


def test_deposit_linear_in_energy(electrons):
    total = electrons["image"].sum(axis=(1, 2, 3))
    slope, intercept = np.polyfit(electrons["energy"], total, 1)
    assert slope == pytest.approx(1.0, abs=0.05)  # EM scale, small leakage
    assert abs(intercept) < 0.5
    assert np.corrcoef(electrons["energy"], total)[0, 1] > 0.999


def test_resolution_scales_like_inverse_sqrt_energy(electrons):
    energy = electrons["energy"]
    ratio = electrons["image"].sum(axis=(1, 2, 3)) / energy
    res = []
    for lo, hi in ((4, 8), (36, 44), (85, 100)):
        sel = (energy > lo) & (energy < hi)
        res.append((np.sqrt(energy[sel]).mean(), ratio[sel].std() / ratio[sel].mean()))
    stochastic = [r * s for s, r in res]  # sigma/E * sqrt(E) should be ~ a = 0.10
    assert res[0][1] > 2.5 * res[2][1]
    for a in stochastic:
        assert a == pytest.approx(0.10, rel=0.3)


def _depth_and_width(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    layer_e = image.sum(axis=(2, 3))
    depth = (layer_e * np.arange(image.shape[1])).sum(1) / np.maximum(layer_e.sum(1), 1e-9)
    proj = image.sum(axis=(1, 2))  # energy vs x
    x = np.arange(image.shape[3])
    mean = (proj * x).sum(1) / np.maximum(proj.sum(1), 1e-9)
    width = np.sqrt(np.maximum((proj * (x[None] - mean[:, None]) ** 2).sum(1) / np.maximum(proj.sum(1), 1e-9), 0))
    return depth, width


def test_pions_deeper_wider_and_partly_invisible(mixed):
    depth, width = _depth_and_width(mixed["image"])
    response = mixed["image"].sum(axis=(1, 2, 3)) / mixed["energy"]
    e, pi = mixed["pdgid"] == 11, mixed["pdgid"] == 211
    assert depth[pi].mean() > depth[e].mean() + 0.3
    assert width[pi].mean() > 1.5 * width[e].mean()
    assert response[pi].mean() < 0.85 * response[e].mean()  # invisible energy, e/h > 1
    assert response[pi].std() > 3 * response[e].std()  # larger fluctuations


def test_photons_start_later_than_electrons(mixed):
    first = mixed["image"][:, 0].sum(axis=(1, 2)) / mixed["energy"]
    assert first[mixed["pdgid"] == 22].mean() < 0.8 * first[mixed["pdgid"] == 11].mean()


def test_shower_max_grows_logarithmically():
    cfg = ShowerConfig(particles=["e-"], noise=0.0, threshold=0.0)
    low = simulate_showers(500, cfg.model_copy(update={"energy_min": 2, "energy_max": 3}), seed=1)
    high = simulate_showers(500, cfg.model_copy(update={"energy_min": 90, "energy_max": 100}), seed=1)
    d_low, _ = _depth_and_width(low["image"])
    d_high, _ = _depth_and_width(high["image"])
    assert d_high.mean() > d_low.mean()


def test_noise_and_zero_suppression():
    cfg = ShowerConfig(noise=0.01, threshold=0.03, suppression="positive")
    out = simulate_showers(200, cfg, seed=0)
    img = out["image"]
    assert np.all((img == 0) | (img >= 0.03))
    quiet = simulate_showers(200, ShowerConfig(noise=0.0, threshold=0.0), seed=0)["image"]
    assert (img > 0).mean() < (quiet > 0).mean() + 0.05


def test_bad_config_rejected():
    with pytest.raises(ValueError, match="unknown particle"):
        ShowerConfig(particles=["kaon"])
    with pytest.raises(ValueError, match="energy_max"):
        ShowerConfig(energy_min=10, energy_max=5)
    with pytest.raises(ConfigError):
        simulate_showers(-1)


# -- π0 -> two photons ------------------------------------------------------------------
@pytest.fixture(scope="module")
def photons_and_pi0s():
    from physnn.physics.photon_id import photon_id_variables

    out = simulate_showers(4000, ShowerConfig(particles=["gamma", "pi0"]), seed=5)
    return out, photon_id_variables(out["image"])


def test_pi0_decays_to_two_photons_with_its_mass_and_energy(rng):
    from physnn.simulation.showers import PI0_MASS, pi0_decay

    energy = rng.uniform(1, 100, size=500)
    g1, g2 = pi0_decay(energy, rng)
    np.testing.assert_allclose((g1 + g2).mass, PI0_MASS, rtol=1e-6)
    np.testing.assert_allclose(g1.E + g2.E, energy, rtol=1e-9)
    np.testing.assert_allclose(g1.mass, 0.0, atol=1e-5)  # massless, up to rounding of sqrt(E² - p²) at 100 GeV
    assert (np.asarray(g1.E) > 0).all()
    assert (np.asarray(g2.E) > 0).all()


def test_pi0_opening_angle_follows_the_decay_kinematics(photons_and_pi0s):
    from physnn.simulation.showers import PI0_MASS

    out, _ = photons_and_pi0s
    pi0 = out["pdgid"] == 111
    assert 1500 < pi0.sum() < 2500
    assert (out["opening_angle"][~pi0] == 0).all()
    angle, energy = out["opening_angle"][pi0].astype(np.float64), out["energy"][pi0].astype(np.float64)
    minimum = 2 * PI0_MASS / energy  # the analytic minimum (small-angle), reached when the photons share E
    assert (angle >= minimum * (1 - 1e-4)).all()
    # isotropic decay: theta ~ theta_min / sqrt(1 - (beta cos theta*)^2), so P(theta < 2 theta_min) = sqrt(3)/2/beta
    beta = np.sqrt(1 - (PI0_MASS / energy) ** 2)
    expected = np.mean(np.minimum(np.sqrt(3) / 2 / beta, 1.0))
    assert np.mean(angle < 2 * minimum) == pytest.approx(expected, abs=0.03)


def test_pi0_photons_are_resolved_at_low_energy_and_merge_at_high(photons_and_pi0s):
    out, shapes = photons_and_pi0s
    pi0, energy = out["pdgid"] == 111, out["energy"]
    two_maxima = shapes["eratio1"] < 0.6  # a second maximum above a quarter of the first in the middle layer
    fractions = [np.mean(two_maxima[pi0 & (energy >= lo) & (energy < hi)]) for lo, hi in ((5, 20), (20, 40), (40, 100))]
    assert fractions[0] > 0.35, fractions  # 4 cm apart at 10 GeV
    assert fractions[2] < 0.05, fractions  # less than a cell apart above 40 GeV
    assert fractions[0] > fractions[1] > fractions[2], fractions
    assert np.mean(two_maxima[~pi0 & (energy >= 5)]) < 0.05  # a photon has one maximum


def test_a_farther_calorimeter_resolves_the_photons_of_energetic_pi0s():
    from physnn.physics.photon_id import photon_id_variables

    cfg = {"particles": ["pi0"], "energy_min": 40.0, "energy_max": 60.0}
    near = photon_id_variables(simulate_showers(400, ShowerConfig(**cfg), seed=6)["image"])
    far = photon_id_variables(simulate_showers(400, ShowerConfig(**cfg, front_cm=600.0), seed=6)["image"])
    assert np.mean(near["eratio1"] < 0.6) < 0.05
    assert np.mean(far["eratio1"] < 0.6) > 0.3  # 4x the distance: the photons 4x farther apart


def test_a_pi0_is_sampled_as_finely_as_a_photon():
    # found when a CNN told merged π0s (70-100 GeV) from photons with AUC 0.94 against the shower shapes' 0.83:
    # each photon had its own spot budget, so a π0 had up to twice the spots and ~30% more cells hit
    out = simulate_showers(1000, ShowerConfig(particles=["gamma", "pi0"], energy_min=70, energy_max=100), seed=4)
    hits = (out["image"][:, 1] > 0).reshape(len(out["image"]), -1).sum(1)
    pi0 = out["pdgid"] == 111
    assert hits[pi0].mean() / hits[~pi0].mean() == pytest.approx(1.0, abs=0.1)


# -- the readout: noise and zero suppression ---------------------------------------
def _electron_sums(energy: float, n: int = 300, **readout) -> np.ndarray:
    cfg = ShowerConfig(particles=["e-"], energy_min=energy, energy_max=energy, **readout)
    return simulate_showers(n, cfg, seed=int(energy * 10))["image"].sum(axis=(1, 2, 3)).astype(np.float64)


def test_the_default_readout_keeps_the_electron_response_linear():
    assert ShowerConfig().suppression == "symmetric"
    assert ShowerConfig().cut == pytest.approx(0.03)
    response = np.array([_electron_sums(e).mean() / e for e in (2, 5, 10, 20, 50, 100)])
    assert response.max() / response.min() < 1.02, response  # within 2% from 2 to 100 GeV
    assert np.all(np.abs(response - 1) < 0.03), response
    # a positive-only cut adds noise and never removes it: 2 GeV electrons read ~1.45x at 2σ
    assert _electron_sums(2.0, suppression="positive", threshold_sigma=2.0).mean() / 2 > 1.3


def test_the_threshold_is_in_units_of_the_noise_and_noise_survives_with_both_signs():
    cfg = ShowerConfig(particles=["e-"], noise=0.02, threshold_sigma=3.0, suppression="symmetric")
    assert cfg.cut == pytest.approx(0.06)
    cells = simulate_showers(200, cfg, seed=3)["image"]
    kept = cells[cells != 0]
    assert np.abs(kept).min() >= 0.06 - 1e-6
    assert (kept < 0).sum() > 100  # noise fluctuations below -3σ are kept, as real readouts keep them
    assert ShowerConfig(noise=0.02, threshold=0.05).cut == 0.05  # or in GeV
    assert ShowerConfig(threshold=0.02, threshold_sigma=None).cut == 0.02  # as configs of before 2026-12-03 say
    with pytest.raises(ValueError, match="give the zero suppression"):
        ShowerConfig(threshold_sigma=None)


def test_the_noise_term_falls_like_one_over_e():
    quiet = {"suppression": "symmetric", "threshold_sigma": 3.0, "noise": 0.005}
    noisy = {**quiet, "noise": 0.05}

    def noise_term(energy: float) -> float:  # what the noise adds to σ/E, in quadrature
        sigma = [_electron_sums(energy, **readout).std() for readout in (quiet, noisy)]
        return float(np.sqrt(sigma[1] ** 2 - sigma[0] ** 2) / energy)

    low, high = noise_term(2.0), noise_term(100.0)
    assert low > 0.1  # 2 GeV: 0.23
    assert low / high > 10  # 100 GeV: 0.007; c/E, tempered by the cells a larger shower keeps (c ~ sqrt(cells))


def test_a_simulated_file_records_its_readout(tmp_path):
    import physnn
    from physnn.io.metadata import read_metadata

    path = tmp_path / "s.root"
    physnn.simulate("showers", path, events=20)
    readout = read_metadata(path)["readout"]
    assert readout == {"noise": 0.01, "threshold": pytest.approx(0.03), "threshold_sigma": pytest.approx(3.0),
                       "suppression": "symmetric"}


def test_a_pi0_below_its_mass_is_refused():
    with pytest.raises(ValueError, match="below the pi0 mass"):
        ShowerConfig(particles=["pi0"], energy_min=0.1)
