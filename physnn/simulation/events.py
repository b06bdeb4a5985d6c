"""Collision-like events as variable-length particle lists.

Units: GeV for energies and momenta, radians for angles.

Signal events contain a resonance X of mass ``M`` (fixed or uniform in a
range, with a Breit-Wigner width ``width * M``) produced with a transverse
momentum drawn from a Gamma distribution (mean ``20`` GeV) and a Gaussian
rapidity, decaying isotropically in its rest frame to a muon pair. Background
events contain a Drell-Yan-like muon pair from a falling continuum
(``dN/dm ~ exp(-m / 40 GeV)`` above 20 GeV) with a softer transverse momentum.
Both carry an underlying event of soft hadrons and photons
(``pt = 0.2 + Gamma(1.5, 1.0)`` GeV, uniform in ``|eta| < 2.5``), with a
negative-binomial multiplicity (mean ``mean_soft``, k = 3), so events hold from a few to
about 60 particles. Muon momenta are smeared by ``pt_resolution``.

The per-event branch ``mass`` is the true (generated) mass of the muon pair
system: the resonance mass for signal, the continuum pair mass for
background; the regression target. Particles are stored in random order, so
ordering (e.g. by pt) is a choice left to the reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from physnn.config import Strict
from physnn.errors import ConfigError

CHUNK = 20000
MUON_MASS = 0.10566

_SOFT_PID = np.array([211, -211, 321, -321, 2212, -2212, 22, 130])
_SOFT_PROB = np.array([0.3, 0.3, 0.05, 0.05, 0.03, 0.03, 0.2, 0.04])
_SOFT_MASS = np.array([0.1396, 0.1396, 0.4937, 0.4937, 0.9383, 0.9383, 0.0, 0.4976])
_SOFT_CHARGE = np.array([1, -1, 1, -1, 1, -1, 0, 0])


class EventConfig(Strict):
    """Settings of the event generator (see the module docstring)."""

    mass_min: float = Field(default=50.0, gt=0)
    mass_max: float = Field(default=150.0, gt=0)
    width: float = Field(default=0.02, ge=0, description="Breit-Wigner width / mass")
    signal_fraction: float = Field(default=0.5, ge=0, le=1)
    mean_soft: float = Field(default=18.0, ge=0)
    min_particles: int = Field(default=5, ge=2)
    max_particles: int = Field(default=60, ge=2)
    pt_resolution: float = Field(default=0.02, ge=0, description="relative muon pt smearing")

    @model_validator(mode="after")
    def _ranges(self) -> EventConfig:
        if self.mass_max < self.mass_min:
            msg = f"mass_max ({self.mass_max}) is below mass_min ({self.mass_min})"
            raise ValueError(msg)
        if self.max_particles < self.min_particles:
            msg = f"max_particles ({self.max_particles}) is below min_particles ({self.min_particles})"
            raise ValueError(msg)
        return self


def _two_body(rng: np.random.Generator, mass: np.ndarray, pt: np.ndarray, rapidity: np.ndarray,
              phi: np.ndarray) -> tuple[np.ndarray, ...]:
    """Isotropic decay X -> mu mu, boosted to the lab. Returns (px, py, pz, E) of shape (n, 2)."""
    n = mass.size
    p_star = np.sqrt(np.clip(mass**2 / 4.0 - MUON_MASS**2, 0.0, None))
    cos_t = rng.uniform(-1.0, 1.0, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    phi_star = rng.uniform(0.0, 2 * np.pi, n)
    d = np.stack([sin_t * np.cos(phi_star), sin_t * np.sin(phi_star), cos_t], axis=-1)
    p_rest = np.stack([p_star[:, None] * d, -p_star[:, None] * d], axis=1)  # (n, 2, 3)
    e_rest = np.sqrt(p_star**2 + MUON_MASS**2)[:, None].repeat(2, axis=1)  # (n, 2)
    mt = np.sqrt(mass**2 + pt**2)
    beta = np.stack([pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(rapidity)], axis=-1)
    energy = mt * np.cosh(rapidity)
    beta = beta / energy[:, None]
    b2 = np.sum(beta**2, axis=-1, keepdims=True)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(beta[:, None, :] * p_rest, axis=-1)  # (n, 2)
    g2 = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0)
    p_lab = p_rest + (g2[:, :, None] * bp[:, :, None] + gamma[:, :, None] * e_rest[:, :, None]) * beta[:, None, :]
    e_lab = gamma * (e_rest + bp)
    return p_lab[..., 0], p_lab[..., 1], p_lab[..., 2], e_lab


def _simulate_chunk(cfg: EventConfig, n: int, rng: np.random.Generator) -> dict[str, object]:
    import awkward as ak

    label = (rng.uniform(size=n) < cfg.signal_fraction).astype(np.int32)
    sig = label == 1
    m_sig = rng.uniform(cfg.mass_min, cfg.mass_max, n)
    if cfg.width > 0:
        m_sig = m_sig + 0.5 * cfg.width * m_sig * np.tan(np.pi * rng.uniform(-0.45, 0.45, n))
    m_bkg = 20.0 + rng.exponential(40.0, n)
    mass = np.where(sig, m_sig, m_bkg)
    pt_x = np.where(sig, rng.gamma(2.0, 10.0, n), rng.gamma(1.5, 6.0, n))
    y_x = rng.normal(0.0, 1.2, n)
    phi_x = rng.uniform(-np.pi, np.pi, n)
    px, py, pz, _ = _two_body(rng, mass, pt_x, y_x, phi_x)
    mu_pt = np.hypot(px, py) * (1.0 + cfg.pt_resolution * rng.standard_normal((n, 2)))
    mu_pt = np.abs(mu_pt)
    mu_eta = np.arcsinh(pz / np.maximum(np.hypot(px, py), 1e-9))
    mu_phi = np.arctan2(py, px)
    mu_e = np.sqrt((mu_pt * np.cosh(mu_eta)) ** 2 + MUON_MASS**2)
    mu_charge = np.broadcast_to(np.array([1, -1]), (n, 2))
    mu_pid = -13 * mu_charge  # mu- has pid 13 and charge -1

    lo = cfg.min_particles - 2
    hi = cfg.max_particles - 2
    k_nbd = 3.0  # negative binomial multiplicity, as measured for soft QCD
    n_soft = np.clip(rng.negative_binomial(k_nbd, k_nbd / (k_nbd + cfg.mean_soft), n), lo, hi)
    total = int(n_soft.sum())
    kind = rng.choice(len(_SOFT_PID), size=total, p=_SOFT_PROB)
    s_pt = 0.2 + rng.gamma(1.5, 1.0, total)
    s_eta = rng.uniform(-2.5, 2.5, total)
    s_phi = rng.uniform(-np.pi, np.pi, total)
    s_e = np.sqrt((s_pt * np.cosh(s_eta)) ** 2 + _SOFT_MASS[kind] ** 2)

    counts = n_soft + 2
    event = np.concatenate([np.repeat(np.arange(n), 2), np.repeat(np.arange(n), n_soft)])

    def cat(hard: np.ndarray, soft: np.ndarray) -> np.ndarray:
        return np.concatenate([hard.reshape(-1), soft])

    pt = cat(mu_pt, s_pt)
    eta = cat(mu_eta, s_eta)
    phi = cat(mu_phi, s_phi)
    energy = cat(mu_e, s_e)
    charge = cat(mu_charge, _SOFT_CHARGE[kind])
    pid = cat(mu_pid, _SOFT_PID[kind])
    order = np.lexsort((rng.uniform(size=event.size), event))  # group by event, random within

    def jag(values: np.ndarray, dtype: type) -> ak.Array:
        return ak.unflatten(values[order].astype(dtype), counts)

    part = ak.zip({
        "pt": jag(pt, np.float32), "eta": jag(eta, np.float32), "phi": jag(phi, np.float32),
        "e": jag(energy, np.float32), "charge": jag(charge, np.int32), "pid": jag(pid, np.int32),
    })
    return {"part": part, "label": label, "mass": mass.astype(np.float32)}


def iter_events(n: int, cfg: EventConfig | None = None, *, seed: int = 0) -> Iterator[dict[str, object]]:
    """Yield simulated events in chunks of at most :data:`CHUNK` events.

    Each chunk is ``{"part": record array (pt, eta, phi, e, charge, pid),
    "label": int32, "mass": float32}``; written to ROOT, ``part`` becomes the
    jagged branches ``part_pt`` ... with the counter ``n_part``.
    """
    cfg = cfg or EventConfig()
    if n < 0:
        msg = f"--events must be non-negative, got {n}"
        raise ConfigError(msg)
    seeds = np.random.SeedSequence(seed).spawn(-(-n // CHUNK))
    for i, chunk_seed in enumerate(seeds):
        yield _simulate_chunk(cfg, min(CHUNK, n - i * CHUNK), np.random.default_rng(chunk_seed))


def simulate_events(n: int, cfg: EventConfig | None = None, *, seed: int = 0) -> dict[str, object]:
    """Simulate ``n`` events in memory.

    Returns
    -------
    dict
        ``part_pt``, ``part_eta``, ``part_phi``, ``part_e``, ``part_charge``,
        ``part_pid`` (jagged awkward arrays), ``n_part``, ``label`` (1 signal,
        0 background) and ``mass`` (GeV): the branches of the written file.

    Examples
    --------
    >>> ev = simulate_events(100, seed=1)
    >>> int(ev["n_part"].min()) >= 5
    True
    """
    import awkward as ak

    chunks = list(iter_events(n, cfg, seed=seed))
    if not chunks:
        chunks = [_simulate_chunk(cfg or EventConfig(), 0, np.random.default_rng(seed))]
    part = ak.concatenate([c["part"] for c in chunks])
    out: dict[str, object] = {f"part_{f}": part[f] for f in part.fields}
    out["n_part"] = ak.to_numpy(ak.num(part)).astype(np.int32)
    out["label"] = np.concatenate([c["label"] for c in chunks])
    out["mass"] = np.concatenate([c["mass"] for c in chunks])
    return out


def log_likelihood_ratio(events: Any, cfg: EventConfig | None = None) -> np.ndarray:
    """The generator's own signal/background log-likelihood ratio of each event.

    It uses the true mass and the pt of the muon pair (``|pid| == 13``), the
    two variables whose densities differ between signal and background. No
    classifier can beat this ratio (Neyman-Pearson) up to the neglected
    Breit-Wigner width and muon smearing, so its AUC is the ceiling to quote
    next to a trained model's.

    Parameters
    ----------
    events
        Arrays with ``part_pt``, ``part_phi``, ``part_pid`` (jagged) and ``mass``.
    cfg
        The generator settings the events were made with.
    """
    import awkward as ak
    from scipy import stats

    cfg = cfg or EventConfig()
    muon = abs(events["part_pid"]) == 13
    pt, phi = events["part_pt"][muon], events["part_phi"][muon]
    pair_pt = np.hypot(ak.to_numpy(ak.sum(pt * np.cos(phi), axis=1)), ak.to_numpy(ak.sum(pt * np.sin(phi), axis=1)))
    mass = np.asarray(events["mass"], dtype=np.float64)
    sig = stats.uniform(cfg.mass_min, cfg.mass_max - cfg.mass_min).pdf(mass) * stats.gamma(2, scale=10).pdf(pair_pt)
    bkg = stats.expon(20, 40).pdf(mass) * stats.gamma(1.5, scale=6).pdf(pair_pt)
    return np.log(sig + 1e-300) - np.log(bkg + 1e-300)
