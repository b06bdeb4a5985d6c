"""DeepSets / Particle Flow Network: a per-particle network, a masked sum over the particles, an event network.

``Φ (per particle) -> masked sum/mean/max over real particles [+ Lorentz pooling] -> [scalars] -> F (head)``

A Particle Flow Network (Komiske, Metodiev, Thaler 2019; Zaheer et al.'s
DeepSets) sums a learnt per-particle representation Φ(p_i) over the particles
of the event and reads the sum with an event network F. The sum makes the
model blind to the particles' order by construction (permutation
invariance is tested), and only real particles enter it: Φ's outputs are
multiplied by the mask, so neither the padding's values nor its length can
change a prediction (tested).

**Lorentz pooling** (``lorentz:``, optional): a network that must learn
``sqrt(E² - p²)`` of a pair of particles from standardised (pt, η, φ, E)
approximates it to a few per cent at best (a GRU reaches σ ≈ 12 GeV on the
demo's muon pairs, where the analytic dimuon mass has 1.05 GeV); a
physicist computes it. With ``lorentz: {four_momentum: [i_px, i_py, i_pz,
i_E]}`` (the indices of the Cartesian four-momentum among the sequence
features, in GeV, left out of standardisation) the model also learns, per
channel k, a weight ``w_ik = sigmoid(g_k(Φ_i)) ∈ [0, 1]`` for each real
particle, sums the weighted four-momenta ``P_k = Σ_i w_ik p_i`` exactly, and
gives the event network the Minkowski products ``P_k · P_l`` (signed square
roots; the diagonal is the mass of channel k), the transverse momenta of the
P_k, and the logarithms of the masses and transverse momenta (a resolution
relative to the mass is then a linear map), all divided by ``scale``. The
network has to learn which particles belong to the system (``w ≈ is_muon``
for a muon pair when particle ID is an input; the hard pair without it), and
the mass is computed, not approximated: the four-momentum sum is exact
whatever Φ learns, as Lorentz-aware networks (LorentzNet, PELICAN) keep
Minkowski products exact. ``select`` restricts the sums to the particles a
feature flags (an analysis's identified muons). The four-momentum columns
enter Φ divided by ``scale`` too.

Two choices measured on the demo's events (``examples/sequence_benchmark.py``):
the gate starts almost closed (``gate_start`` 0.05) with a steep logit
(``sharpness`` 10), so that the soft particles' weights reach ~0 within the
training (a soft particle left at w = 0.05 adds GeV to the mass); and the
shipped configs pool Φ with ``mean``: the PFN's ``sum`` grows with the
multiplicity, and its large values drowned the mass in the event network
(σ 22 GeV with ``sum`` against 2.3 GeV with ``mean``, same 10 epochs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from physnn.config import Strict
from physnn.errors import ConfigError
from physnn.models.base import SideInput
from physnn.models.registry import ModelIO, register
from physnn.models.sequence import EmbedLayer, MaskedReadout, SequenceModel, SequenceParams, build_sequence_model, masks

DEFAULT_PHI = [{"type": "dense", "units": 64}, {"type": "dense", "units": 64}]
#: The Minkowski metric for (px, py, pz, E).
METRIC = (-1.0, -1.0, -1.0, 1.0)


class LorentzPooling(Strict):
    """Exact weighted four-momentum sums and their Minkowski products (see the module docs).

    Attributes
    ----------
    four_momentum
        Indices of (px, py, pz, E) among the sequence features, in GeV and
        not standardised (``standardize: {exclude: [...]}``).
    channels
        How many weighted sums (systems) the network learns.
    scale
        GeV: the invariants, the transverse momenta and the four-momentum
        inputs of Φ are divided by it.
    select
        Optional index of a feature (e.g. ``is_muon``) that pre-selects the
        particles entering the sums, as an analysis selects identified
        muons: a particle enters with weight ``w_i`` where the feature is
        above 0.5 and with 0 elsewhere. Null: every real particle is a
        candidate and the gate alone learns which to take.
    gate_start
        The weights every particle starts with (through the gate's bias):
        a small value starts from an almost empty system, which the network
        fills with the particles that explain the target.
    sharpness
        The gate's logit is ``sharpness`` times a linear map of Φ (whose
        initial weights are divided by it): weights reach 0 and 1 that many
        times faster under Adam, where every step moves a parameter by about
        the learning rate. A soft particle left at w = 0.05 would add GeV to
        the mass.
    """

    four_momentum: list[int] = Field(min_length=4, max_length=4)
    channels: int = Field(default=1, ge=1, le=8)
    scale: float = Field(default=100.0, gt=0)
    select: int | None = Field(default=None, ge=0)
    gate_start: float = Field(default=0.05, gt=0, lt=1)
    sharpness: float = Field(default=10.0, gt=0)

    @field_validator("four_momentum")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) != 4 or min(v) < 0:
            msg = f"four_momentum needs four distinct feature indices >= 0 (px, py, pz, E), got {v}"
            raise ValueError(msg)
        return v


class PFNParams(SequenceParams):
    """Parameters of the ``pfn`` model (DeepSets / Particle Flow Network).

    Attributes
    ----------
    embedding
        Φ, the per-particle network (dense, dropout, activation layers),
        applied to each particle alone; ``[]`` sums the features themselves.
    readout
        How Φ is pooled over the real particles: ``sum`` (the PFN), ``mean``
        or ``max``.
    lorentz
        Lorentz pooling: exact sums Σ w_i p_i of the four-momenta with learnt
        weights w_i ∈ [0, 1] (a sigmoid gate on Φ), whose Minkowski masses and
        pt go to F; ``four_momentum``: the feature indices of (px, py, pz, E)
        in GeV, left out of standardisation; ``channels``: how many sums;
        ``scale``: GeV dividing them. Null for a plain PFN.
    head
        F, the event network: dense and dropout layers after the pooling
        (and the scalars).
    """

    embedding: list[EmbedLayer] = Field(default_factory=lambda: list(DEFAULT_PHI), validate_default=True)
    readout: Literal["sum", "mean", "max"] = "sum"
    lorentz: LorentzPooling | None = None


class PFNParticles(SideInput):
    """Φ on each particle, zero at padded positions; with Lorentz pooling the raw four-momenta ride along."""

    def __init__(self, layers: nn.Sequential, features: int, lorentz: LorentzPooling | None) -> None:
        super().__init__()
        self.layers = layers
        scale = torch.ones(features)
        self.four_momentum = list(lorentz.four_momentum) if lorentz else []
        if lorentz and lorentz.select is not None:
            self.four_momentum.append(lorentz.select)
        if lorentz:
            scale[self.four_momentum] = 1.0 / lorentz.scale
        self.register_buffer("input_scale", scale, persistent=False)

    def forward(self, x: torch.Tensor, side: Mapping[str, torch.Tensor]) -> torch.Tensor:
        keep = masks(side, x)[0].unsqueeze(-1).to(x.dtype)
        phi = self.layers(x * self.input_scale) * keep
        if not self.four_momentum:
            return phi
        return torch.cat([phi, x[..., self.four_momentum] * keep], dim=-1)


class PFNPooling(SideInput):
    """Masked pooling of Φ over the real particles, and the Lorentz invariants of the learnt weighted sums."""

    def __init__(self, width: int, readout: str, lorentz: LorentzPooling | None) -> None:
        super().__init__()
        self.width = width
        self.readout = MaskedReadout(readout, width)
        self.gate = nn.Linear(width, lorentz.channels) if lorentz else None
        self.sharpness = lorentz.sharpness if lorentz else 1.0
        if lorentz and self.gate is not None:
            with torch.no_grad():
                self.gate.weight.div_(self.sharpness)
                self.gate.bias.fill_(math.log(lorentz.gate_start / (1 - lorentz.gate_start)) / self.sharpness)
        self.scale = lorentz.scale if lorentz else 1.0
        k = lorentz.channels if lorentz else 0
        rows, cols = torch.triu_indices(k, k) if k else (torch.zeros(0, dtype=torch.long),) * 2
        self.register_buffer("pairs", rows * k + cols, persistent=False)
        self.register_buffer("metric", torch.tensor(METRIC), persistent=False)
        self.register_buffer("diagonal", torch.arange(k) * (k + 1), persistent=False)
        self.out_width = width + (k * (k + 1) // 2 + 3 * k if k else 0)

    def forward(self, h: torch.Tensor, side: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mask, length = masks(side, h)
        phi = h[..., : self.width]
        pooled = self.readout(phi, mask, length)
        if self.gate is None:
            return pooled
        raw = h[..., self.width:]
        keep = mask.unsqueeze(-1).to(h.dtype)
        if raw.shape[-1] == 5:  # the pre-selection feature rides after the four-momentum
            keep = keep * (raw[..., 4:] > 0.5).to(h.dtype)
        weight = torch.sigmoid(self.sharpness * self.gate(phi)) * keep  # (B, T, K)
        total = (weight.unsqueeze(-1) * raw[..., :4].unsqueeze(2)).sum(dim=1)  # (B, K, 4): Σ w p
        gram = (total.unsqueeze(2) * self.metric * total.unsqueeze(1)).sum(dim=-1)  # (B, K, K): P_k · P_l
        products = gram.flatten(1)[:, self.pairs]
        invariants = torch.sign(products) * torch.sqrt(products.abs() + 1e-6)
        pt = torch.sqrt(total[..., 0] ** 2 + total[..., 1] ** 2 + 1e-6) / self.scale
        mass = torch.sqrt(gram.flatten(1)[:, self.diagonal].clamp(min=0.0) + 1e-6) / self.scale
        # the logarithms too: a resolution relative to the mass is a linear map of them
        return torch.cat([pooled, invariants / self.scale, pt, torch.log(mass + 1e-3), torch.log(pt + 1e-3)], dim=-1)


@register("pfn", PFNParams)
def build_pfn(params: PFNParams, io: ModelIO) -> SequenceModel:
    """DeepSets / Particle Flow Network: per-particle Φ, masked sum over real particles, event network F."""
    lorentz = params.lorentz
    features = io.sequence[1] if io.sequence is not None else 0
    used = [*lorentz.four_momentum, *([] if lorentz.select is None else [lorentz.select])] if lorentz else []
    if used and io.sequence is not None and max(used) >= features:
        msg = (f"model 'pfn': lorentz names feature indices {used} (four_momentum, select) beyond the "
               f"{features} sequence features")
        raise ConfigError(msg)

    def encoder(width: int) -> tuple[SideInput, int]:
        enc = PFNPooling(width, params.readout, lorentz)
        return enc, enc.out_width

    def particles(layers: nn.Sequential) -> SideInput:
        return PFNParticles(layers, features, lorentz)

    return build_sequence_model("pfn", params, io, encoder, particles)
