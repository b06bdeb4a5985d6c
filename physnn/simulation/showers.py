"""A fast, physically motivated sampling calorimeter simulator.

Units: energies in GeV, lengths in cm, depths in radiation lengths X0.

The detector is a sampling calorimeter of ``len(layers_x0)`` longitudinal
layers, each a grid of ``height x width`` square cells of ``cell_size`` cm,
with copper-like material constants by default (X0 = 1.44 cm, Moliere radius
1.57 cm, nuclear interaction length 15.3 cm, critical energy 19.7 MeV). Cell
energies are at the electromagnetic scale: an electron's cells sum to its
energy up to leakage and fluctuations; a pion's sum is lower because part of a
hadronic shower is invisible (``h_over_e`` < 1).

Electromagnetic showers (e-, gamma)
    The longitudinal profile is the Gamma-function parametrisation
    ``dE/dt = E b (b t)^(a-1) e^(-b t) / Gamma(a)`` with ``b = 0.5`` and a shower
    maximum ``t_max = (a-1)/b = ln(E/E_c) - 0.5`` (Longo; PDG review "Passage of
    particles through matter"), smeared event by event. Photons first convert
    after an exponential depth of mean 9/7 X0, so they start later than
    electrons. The lateral profile is the Grindhammer-Peters two-component
    form ``f(r) = 2 r R^2 / (r^2 + R^2)^2`` (a narrow core and a wider tail of
    Moliere-radius scale) that widens with depth.
Hadronic showers (pi+)
    The pion travels as a minimum-ionising particle to an exponential first
    interaction depth of mean one interaction length, then showers with an
    electromagnetic fraction ``f_em = 1 - (E / 1 GeV)^(k-1)``, ``k = 0.82``
    (Groom), fluctuating event by event. The hadronic component has a
    Gamma profile in units of the interaction length with its maximum at
    ``0.2 ln E + 0.7`` lambda, is several times wider laterally, and only the
    fraction ``h_over_e`` of its energy is visible.
Neutral pions (pi0)
    A pi0 decays at once to two photons, isotropically in its rest frame
    (``vector`` boosts them to the lab), so their opening angle is at least
    ``2 m / E`` and piles up just above it. The pi0 flies along the
    calorimeter's axis towards the impact point from ``front_cm`` (1.5 m, a
    barrel ECAL's radius) before the front; each photon showers as a photon
    from where it meets the front. With 1 cm cells the two showers are
    resolved at a few GeV (4 cm apart at 10 GeV) and merge above ~30 GeV (one
    cell at 40 GeV): the classic gamma/pi0 separation problem. The files
    gain ``opening_angle`` (rad; 0 for the other particles).
Detector response
    Energy is deposited by discrete "spots" whose energies are Gamma
    distributed such that each shower component has the sampling resolution
    ``sigma/E = a/sqrt(E)`` (``stochastic_em``, ``stochastic_had``). Gaussian
    electronic noise of ``noise`` GeV (σ, default 10 MeV) is added to every
    cell, then cells are zero-suppressed at ``threshold_sigma`` times the
    noise σ (default 3), or at ``threshold`` GeV when that is given.
    ``suppression: symmetric`` (the default) keeps the cells with |E| above the
    cut, as real calorimeters do: noise survives with both signs, so a file
    has a few negative cells per event, and it averages out; the electron
    cell sum is linear within 1% from 2 to 100 GeV (0.987 to 0.996).
    ``positive`` keeps only the cells above the cut, so noise only ever adds
    energy: electrons of 2 GeV read 1.45x their energy with a 2σ cut, 1.005x
    at 100 GeV (``tests/test_simulate_showers.py``). The resolution of the cell sum is
    then ``σ/E = a/√E ⊕ b ⊕ c/E``: the sampling term ``a`` (``stochastic_em``),
    a constant term ``b`` from leakage and profile fluctuations, and the noise
    term ``c = noise x sqrt(cells kept)``, explicit in ``physnn_meta["readout"]``
    (noise, threshold in GeV and in σ, suppression) of every simulated file.
Strips (``strips: {layer: 0, eta: 4}``)
    The experiments built a finely segmented first layer for photon/π0
    separation (ATLAS's η strips, 8x finer than the middle layer). With
    ``strips`` set, that layer is also read out on a grid ``eta`` times finer
    along η (the image's rows) and ``phi`` times along φ (its columns), written
    as the branch ``strips[height*eta][width*phi]``; every strip has the noise
    and the zero suppression of a cell, and the layer of ``image`` is the sum of
    its strips, so ``image`` keeps its meaning and its total energy.
    ``images: {branches: [image, strips]}`` gives a network both, strips folded into channels.

Axes: an image is ``[layer][η][φ]``: rows are η (``height``, the impact point's
``y0``), columns φ (``width``, ``x0``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from physnn.config import Strict
from physnn.errors import ConfigError
from physnn.simulation.readout import Electronics, Strips, fine_index, read_out

#: Particle names the simulator knows, with their PDG id.
PARTICLES: dict[str, int] = {"e-": 11, "gamma": 22, "pi0": 111, "pi+": 211}
#: The neutral pion's mass (GeV, PDG 2024).
PI0_MASS = 0.1349768

#: Events generated per internal chunk (bounds memory while writing).
CHUNK = 2000


class ShowerConfig(Strict):
    """Geometry, material and response of the simulated calorimeter.

    All fields have physical defaults; see the module docstring for the model.
    """

    layers_x0: list[float] = Field(default_factory=lambda: [3.0, 16.0, 26.0])
    height: int = Field(default=24, gt=0)
    width: int = Field(default=24, gt=0)
    cell_size: float = Field(default=1.0, gt=0, description="cm")
    x0_cm: float = Field(default=1.436, gt=0)
    moliere_cm: float = Field(default=1.568, gt=0)
    lambda_cm: float = Field(default=15.32, gt=0)
    critical_energy: float = Field(default=0.0197, gt=0, description="GeV")
    mip_per_x0: float = Field(default=0.018, ge=0, description="GeV per X0 for a MIP")
    particles: list[str] = Field(default_factory=lambda: ["e-", "gamma", "pi+"])
    energy_min: float = Field(default=1.0, gt=0)
    energy_max: float = Field(default=100.0, gt=0)
    spectrum: Literal["uniform", "log-uniform"] = "uniform"
    impact_jitter: float = Field(default=1.0, ge=0, description="cm, uniform in +-jitter")
    stochastic_em: float = Field(default=0.10, ge=0, description="GeV^0.5")
    stochastic_had: float = Field(default=0.50, ge=0, description="GeV^0.5")
    h_over_e: float = Field(default=0.6, gt=0, le=1)
    noise: float = Field(default=0.010, ge=0, description="GeV per cell")
    threshold: float | None = Field(default=None, ge=0, description="GeV, zero suppression (overrides threshold_sigma)")
    threshold_sigma: float | None = Field(default=3.0, ge=0, description="zero suppression in units of the noise "
                                          "(null: the threshold in GeV, as configs written before 2026-12-03)")
    suppression: Literal["symmetric", "positive"] = "symmetric"
    spot_energy: float = Field(default=0.1, gt=0, description="GeV per spot (shape sampling)")
    max_spots: int = Field(default=300, gt=0)
    front_cm: float = Field(default=150.0, gt=0, description="cm from the pi0 decay to the calorimeter front")
    strips: Strips | None = Field(default=None, description="a finely segmented layer, also written as `strips`")

    @field_validator("layers_x0")
    @classmethod
    def _layers(cls, v: list[float]) -> list[float]:
        if not v or any(x <= 0 for x in v):
            msg = f"layers_x0 must be positive thicknesses, got {v}"
            raise ValueError(msg)
        return v

    @field_validator("particles")
    @classmethod
    def _particles(cls, v: list[str]) -> list[str]:
        for p in v:
            if p not in PARTICLES:
                msg = f"unknown particle {p!r}, expected some of {', '.join(PARTICLES)}"
                raise ValueError(msg)
        if not v:
            msg = "particles must not be empty"
            raise ValueError(msg)
        return v

    @model_validator(mode="after")
    def _range(self) -> ShowerConfig:
        if self.energy_max < self.energy_min:
            msg = f"energy_max ({self.energy_max}) is below energy_min ({self.energy_min})"
            raise ValueError(msg)
        if self.threshold is None and self.threshold_sigma is None:
            msg = "give the zero suppression: threshold (GeV) or threshold_sigma (in units of the noise)"
            raise ValueError(msg)
        if "pi0" in self.particles and self.energy_min < PI0_MASS:
            msg = f"energy_min ({self.energy_min}) is below the pi0 mass ({PI0_MASS} GeV)"
            raise ValueError(msg)
        if self.strips is not None and self.strips.layer >= len(self.layers_x0):
            msg = f"strips.layer ({self.strips.layer}) is not one of the {len(self.layers_x0)} layers of layers_x0"
            raise ValueError(msg)
        return self

    @property
    def cut(self) -> float:
        """The zero-suppression threshold in GeV: ``threshold`` when given, else ``threshold_sigma`` x ``noise``."""
        if self.threshold is not None:
            return self.threshold
        assert self.threshold_sigma is not None  # the validator refuses neither
        return self.threshold_sigma * self.noise

    def readout(self) -> dict[str, Any]:
        """The electronics as recorded in a file's ``physnn_meta["readout"]`` (:meth:`Electronics.declared`)."""
        return self.electronics().declared()

    def electronics(self) -> Electronics:
        """What the readout does to the cells (noise, zero suppression, strips)."""
        return Electronics(self.noise, self.cut, self.suppression, self.strips)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(layers, height, width) of one image."""
        return (len(self.layers_x0), self.height, self.width)


def _profile_fraction(t_lo: np.ndarray, t_hi: np.ndarray, start: np.ndarray,
                      a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fraction of a Gamma(a, b) profile starting at ``start`` inside [t_lo, t_hi)."""
    from scipy.special import gammainc

    lo = np.clip(t_lo - start, 0.0, None)
    hi = np.clip(t_hi - start, 0.0, None)
    return gammainc(a, b * hi) - gammainc(a, b * lo)


def _sample_radius(rng: np.random.Generator, core: np.ndarray, tail: np.ndarray,
                   p_core: np.ndarray) -> np.ndarray:
    """Radii from the two-component profile 2 r R^2 / (r^2 + R^2)^2 (inverse CDF)."""
    u = rng.uniform(0.0, 0.995, size=core.shape)  # cut the far tail at 14 R
    radius = np.where(rng.uniform(size=core.shape) < p_core, core, tail)
    return radius * np.sqrt(u / (1.0 - u))


def _simulate_chunk(cfg: ShowerConfig, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` events: primaries (a π0 decays to two photons), energy per layer and component of each shower,
    lateral spread, then the readout."""
    kind, pdgid, energy, x0, y0 = _primaries(cfg, n, rng)
    showers = _showers(cfg, pdgid, energy, x0, y0, rng)
    groups = _layer_energies(cfg, showers.pdgid, showers.energy, rng)
    cells = _deposit(cfg, groups, showers, n, rng)
    out = {
        **read_out(cells, cfg.electronics(), rng),
        "energy": energy.astype(np.float32),
        "pdgid": pdgid.astype(np.int32),
        "label": kind.astype(np.int32),
        "x0": x0.astype(np.float32),
        "y0": y0.astype(np.float32),
    }
    if "pi0" in cfg.particles:  # the truth of the decay: 0 for the other particles
        out["opening_angle"] = showers.opening_angle.astype(np.float32)
    return out


def _primaries(cfg: ShowerConfig, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The particle type (index into ``cfg.particles`` and PDG id), energy and impact point of each shower."""
    kind = rng.integers(0, len(cfg.particles), size=n)
    pdgid = np.array([PARTICLES[p] for p in cfg.particles])[kind]
    if cfg.spectrum == "uniform":
        energy = rng.uniform(cfg.energy_min, cfg.energy_max, size=n)
    else:
        energy = np.exp(rng.uniform(np.log(cfg.energy_min), np.log(cfg.energy_max), size=n))
    x0 = rng.uniform(-cfg.impact_jitter, cfg.impact_jitter, size=n)
    y0 = rng.uniform(-cfg.impact_jitter, cfg.impact_jitter, size=n)
    return kind, pdgid, energy, x0, y0


@dataclass
class _Showers:
    """The showers of a chunk: one per primary, two for a π0 (its photons); ``owner`` is each one's event."""

    pdgid: np.ndarray
    energy: np.ndarray
    x: np.ndarray
    y: np.ndarray
    owner: np.ndarray
    #: per event: the angle between the π0's photons (rad), 0 for other particles
    opening_angle: np.ndarray


def _showers(cfg: ShowerConfig, pdgid: np.ndarray, energy: np.ndarray, x0: np.ndarray, y0: np.ndarray,
             rng: np.random.Generator) -> _Showers:
    """One shower per primary; a π0 is replaced by the two photons of its decay, each showering from where it
    meets the calorimeter front (``front_cm`` from the decay, the π0 flying along the calorimeter's axis to
    the impact point). A photon emitted backwards misses the calorimeter. No random number is drawn without
    a π0, so the other particles' showers do not depend on whether ``pi0`` is among the particles."""
    n = len(energy)
    angle = np.zeros(n)
    pi0 = np.flatnonzero(pdgid == PARTICLES["pi0"])
    if pi0.size == 0:
        return _Showers(pdgid, energy, x0, y0, np.arange(n), angle)
    photons = pi0_decay(energy[pi0], rng)
    angle[pi0] = photons[0].deltaangle(photons[1])
    keep = np.flatnonzero(pdgid != PARTICLES["pi0"])
    parts = [(pdgid[keep], energy[keep], x0[keep], y0[keep], keep)]
    for photon in photons:
        forward = np.asarray(photon.pz) > 0
        pz = np.where(forward, photon.pz, 1.0)
        x = x0[pi0] + cfg.front_cm * np.asarray(photon.px) / pz
        y = y0[pi0] + cfg.front_cm * np.asarray(photon.py) / pz
        sel = np.flatnonzero(forward)
        parts.append((np.full(sel.size, PARTICLES["gamma"]), np.asarray(photon.E)[sel], x[sel], y[sel], pi0[sel]))
    pdg, e, x, y, owner = (np.concatenate(column) for column in zip(*parts, strict=True))
    return _Showers(pdg, e, x, y, owner, angle)


def pi0_decay(energy: np.ndarray, rng: np.random.Generator) -> tuple[Any, Any]:
    """The two photons of π0 -> gamma gamma for π0s of ``energy`` (GeV) flying along +z: isotropic in the π0's rest
    frame, boosted to the lab (``vector`` four-momenta, GeV).

    Examples
    --------
    >>> g1, g2 = pi0_decay(np.array([10.0]), np.random.default_rng(0))
    >>> round(float((g1 + g2).mass[0]), 4), round(float((g1.E + g2.E)[0]), 4)
    (0.135, 10.0)
    """
    import vector

    n = len(energy)
    cos_theta = rng.uniform(-1.0, 1.0, size=n)
    phi = rng.uniform(0.0, 2.0 * np.pi, size=n)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    half = np.full(n, PI0_MASS / 2)
    beta = np.sqrt(1.0 - (PI0_MASS / np.maximum(energy, PI0_MASS)) ** 2)
    return tuple(vector.array({"px": sign * half * sin_theta * np.cos(phi), "py": sign * half * sin_theta * np.sin(phi),
                               "pz": sign * half * cos_theta, "E": half}).boostZ(beta=beta)
                 for sign in (1.0, -1.0))  # type: ignore[return-value]


@dataclass
class _Groups:
    """Energy deposits per (shower, layer, component: EM, hadronic, MIP) and their lateral shape (cm)."""

    energy: np.ndarray  # (n, L, 3)
    core: np.ndarray
    tail: np.ndarray
    pcore: np.ndarray


def _layer_energies(cfg: ShowerConfig, pdgid: np.ndarray, energy: np.ndarray, rng: np.random.Generator) -> _Groups:
    """Where each shower starts, its EM/hadronic split, longitudinal profiles and lateral widths per layer."""
    n = len(energy)
    bounds = np.concatenate([[0.0], np.cumsum(cfg.layers_x0)])
    t_lo, t_hi = bounds[:-1][None, :], bounds[1:][None, :]
    t_mid = 0.5 * (t_lo + t_hi)
    lam = cfg.lambda_cm / cfg.x0_cm  # interaction length in X0
    is_had = pdgid == 211
    start = np.where(pdgid == 22, rng.exponential(9.0 / 7.0, size=n), 0.0)  # photons convert first
    start = np.where(is_had, rng.exponential(lam, size=n), start)
    # energy split: EM part (visible), hadronic part (h/e visible)
    f_em_mean = 1.0 - np.power(np.maximum(energy, 1.0), 0.82 - 1.0)
    f_em = np.where(is_had, np.clip(f_em_mean + rng.normal(0.0, 0.12, size=n), 0.0, 0.95), 1.0)
    mip_total = np.where(is_had, cfg.mip_per_x0 * np.minimum(start, bounds[-1]), 0.0)
    available = np.clip(energy - mip_total, 0.0, None)
    e_em = available * f_em
    e_had = available * (1.0 - f_em) * cfg.h_over_e
    # longitudinal profiles -> energy per layer
    tmax_em = np.log(np.maximum(e_em, 2 * cfg.critical_energy) / cfg.critical_energy) - 0.5
    tmax_em = np.maximum(tmax_em * np.exp(rng.normal(0.0, 0.12, size=n)), 0.3)
    frac_em = _profile_fraction(t_lo, t_hi, start[:, None], (1.0 + 0.5 * tmax_em)[:, None], np.full((n, 1), 0.5))
    tmax_had = np.maximum((0.2 * np.log(np.maximum(energy, 1.0)) + 0.7) * np.exp(rng.normal(0, 0.2, n)), 0.2)
    frac_had = _profile_fraction(t_lo / lam, t_hi / lam, start[:, None] / lam, (1.0 + tmax_had)[:, None],
                                 np.ones((n, 1)))
    path_before_interaction = np.clip(np.minimum(t_hi, start[:, None]) - t_lo, 0, None)
    mip_layer = np.where(is_had[:, None], cfg.mip_per_x0 * path_before_interaction, 0.0)
    # lateral widths (cm) per layer
    rm = cfg.moliere_cm
    depth_em = np.clip((t_mid - start[:, None]) / tmax_em[:, None], 0.0, 4.0)
    wider = np.where(is_had, 1.5, 1.0)[:, None]
    depth_had = np.clip((t_mid - start[:, None]) / lam, 0.0, 6.0)
    core_had = cfg.lambda_cm * (0.06 + 0.04 * depth_had)
    mip_width = np.full_like(core_had, 0.05 * rm)
    return _Groups(
        energy=np.stack([e_em[:, None] * frac_em, e_had[:, None] * frac_had, mip_layer], axis=-1),
        core=np.stack([rm * (0.10 + 0.08 * depth_em) * wider, core_had, mip_width], axis=-1),
        tail=np.stack([rm * (0.55 + 0.35 * depth_em) * wider, cfg.lambda_cm * (0.25 + 0.10 * depth_had),
                       mip_width], axis=-1),
        pcore=np.stack([np.clip(0.85 - 0.12 * depth_em, 0.3, 0.95), np.full_like(core_had, 0.6),
                        np.ones_like(core_had)], axis=-1))


def _spot_size(cfg: ShowerConfig, energy: np.ndarray, showers: _Showers, events: int) -> np.ndarray:
    """The energy of one spot per group: ``spot_energy``, coarser where an event's (layer, component) would need
    more than ``max_spots``. The budget is the event's, shared by its showers, so that a π0's two photons are
    drawn as finely as one photon of the same energy (a cap per shower would give them twice the spots, and a
    network would tell π0s by their smoother cells alone)."""
    per_event = np.zeros((events, *energy.shape[1:]))
    np.add.at(per_event, showers.owner, energy)
    size = np.maximum(cfg.spot_energy, per_event[showers.owner] / cfg.max_spots)
    return size.reshape(-1)


def _deposit(cfg: ShowerConfig, groups: _Groups, showers: _Showers, events: int,
             rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The true deposits: ``image`` (events, layers, H, W) and, with strips, ``strips`` (events, H eta, W phi):
    each group's energy in spots around its shower's impact point, sampling fluctuations as Gamma-distributed
    spot energies (total mean E, relative spread sqrt(eps / E))."""
    n, n_layers, height, width = len(showers.x), *cfg.shape
    e_groups = groups.energy.reshape(-1)
    eps = np.array([cfg.stochastic_em**2, cfg.stochastic_had**2, 0.25 * cfg.mip_per_x0])
    eps_groups = np.broadcast_to(eps, (n, n_layers, 3)).reshape(-1)
    n_spots = np.where(e_groups > 1e-6, np.ceil(e_groups / _spot_size(cfg, groups.energy, showers, events)), 0)
    n_spots = np.clip(n_spots, 0, cfg.max_spots).astype(np.int64)
    k = np.divide(e_groups, eps_groups * np.maximum(n_spots, 1), out=np.zeros_like(e_groups),
                  where=eps_groups > 0)
    group = np.repeat(np.arange(e_groups.size), n_spots)
    # A component with eps = 0 (no sampling fluctuations asked for) shares its energy evenly.
    spot_e = np.where(eps_groups[group] > 0,
                      rng.gamma(np.maximum(k[group], 1e-12)) * eps_groups[group],
                      e_groups[group] / np.maximum(n_spots[group], 1))
    r = _sample_radius(rng, groups.core.reshape(-1)[group], groups.tail.reshape(-1)[group],
                       groups.pcore.reshape(-1)[group])
    phi = rng.uniform(0.0, 2.0 * np.pi, size=group.size)
    shower = group // (n_layers * 3)
    layer = (group // 3) % n_layers
    ix = np.floor((showers.x[shower] + r * np.cos(phi)) / cfg.cell_size + width / 2.0).astype(np.int64)
    iy = np.floor((showers.y[shower] + r * np.sin(phi)) / cfg.cell_size + height / 2.0).astype(np.int64)
    inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
    flat = ((showers.owner[shower] * n_layers + layer) * height + iy) * width + ix
    image = np.bincount(flat[inside], weights=spot_e[inside], minlength=events * n_layers * height * width)
    out = {"image": image.astype(np.float32).reshape(events, n_layers, height, width)}
    if cfg.strips is not None:  # the same spots on the strip layer's finer grid
        s = cfg.strips
        rows, cols = height * s.eta, width * s.phi
        on = layer == s.layer
        x_cm, y_cm = (showers.x[shower] + r * np.cos(phi))[on], (showers.y[shower] + r * np.sin(phi))[on]
        jx, jy = fine_index(x_cm, cfg.cell_size, width, s.phi), fine_index(y_cm, cfg.cell_size, height, s.eta)
        keep = (jx >= 0) & (jx < cols) & (jy >= 0) & (jy < rows)
        fine = (showers.owner[shower][on] * rows + jy) * cols + jx
        strips = np.bincount(fine[keep], weights=spot_e[on][keep], minlength=events * rows * cols)
        out["strips"] = strips.astype(np.float32).reshape(events, rows, cols)
    return out


def iter_showers(n: int, cfg: ShowerConfig | None = None, *, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Yield simulated showers in chunks of at most :data:`CHUNK` events.

    The same ``seed`` and ``n`` give the same events.
    """
    cfg = cfg or ShowerConfig()
    if n < 0:
        msg = f"--events must be non-negative, got {n}"
        raise ConfigError(msg)
    n_chunks = -(-n // CHUNK)
    seeds = np.random.SeedSequence(seed).spawn(n_chunks)
    for i, chunk_seed in enumerate(seeds):
        size = min(CHUNK, n - i * CHUNK)
        yield _simulate_chunk(cfg, size, np.random.default_rng(chunk_seed))


def simulate_showers(n: int, cfg: ShowerConfig | None = None, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Simulate ``n`` showers in memory.

    Parameters
    ----------
    n
        Number of events.
    cfg
        Detector and beam settings; defaults to :class:`ShowerConfig`.
    seed
        Random seed.

    Returns
    -------
    dict
        ``image`` (n, L, H, W) float32 in GeV, ``energy`` (true incident
        energy, GeV), ``pdgid``, ``label`` (index into ``cfg.particles``),
        ``x0``, ``y0`` (impact point, cm).

    Examples
    --------
    >>> out = simulate_showers(10, seed=1)
    >>> out["image"].shape
    (10, 3, 24, 24)
    """
    chunks = list(iter_showers(n, cfg, seed=seed))
    if not chunks:
        cfg = cfg or ShowerConfig()
        return {"image": np.zeros((0, *cfg.shape), np.float32), "energy": np.zeros(0, np.float32),
                "pdgid": np.zeros(0, np.int32), "label": np.zeros(0, np.int32),
                "x0": np.zeros(0, np.float32), "y0": np.zeros(0, np.float32)}
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
