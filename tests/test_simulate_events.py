"""The particle-list event generator."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from physnn.simulation import EventConfig, simulate_events


@pytest.fixture(scope="module")
def events():
    return simulate_events(5000, seed=3)


def test_branches_and_lengths(events):
    assert {"part_pt", "part_eta", "part_phi", "part_e", "part_charge", "part_pid", "n_part", "label",
            "mass"} <= set(events)
    n = events["n_part"]
    assert n.min() >= 5
    assert n.max() <= 60
    assert n.max() - n.min() > 30  # lengths really vary
    np.testing.assert_array_equal(ak.num(events["part_pt"]), n)


def test_pair_mass_matches_truth(events):
    mu = abs(events["part_pid"]) == 13
    assert np.all(ak.sum(mu, axis=1) == 2)
    pt, eta, phi, e = (events[f"part_{f}"][mu] for f in ("pt", "eta", "phi", "e"))
    px, py, pz = ak.sum(pt * np.cos(phi), 1), ak.sum(pt * np.sin(phi), 1), ak.sum(pt * np.sinh(eta), 1)
    mass = np.sqrt(np.maximum(ak.sum(e, 1) ** 2 - px**2 - py**2 - pz**2, 0)).to_numpy()
    ratio = mass / events["mass"]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.01)
    assert 0.005 < np.std(ratio[np.abs(ratio - 1) < 0.2]) < 0.05  # smeared, not exact


def test_signal_masses_in_range_and_background_falls(events):
    sig = events["label"] == 1
    assert 0.45 < sig.mean() < 0.55
    m_sig, m_bkg = events["mass"][sig], events["mass"][~sig]
    assert np.median(m_sig) == pytest.approx(100, abs=5)
    assert np.median(m_bkg) < 60


def test_particles_not_sorted(events):
    pt = events["part_pt"]
    sorted_events = ak.all(pt[:, :-1] >= pt[:, 1:], axis=1)
    assert ak.mean(sorted_events) < 0.05


def test_charge_conservation_of_muon_pair(events):
    mu = abs(events["part_pid"]) == 13
    assert np.all(ak.sum(events["part_charge"][mu], axis=1) == 0)


def test_fixed_mass_and_seed():
    a = simulate_events(200, EventConfig(mass_min=91, mass_max=91, width=0, signal_fraction=1), seed=1)
    assert np.allclose(a["mass"], 91)
    b = simulate_events(200, EventConfig(mass_min=91, mass_max=91, width=0, signal_fraction=1), seed=1)
    assert ak.all(a["part_pt"] == b["part_pt"])
