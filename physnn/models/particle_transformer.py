"""The Particle Transformer: self-attention over the particles, pairwise kinematics as attention bias.

``[per-particle embedding] -> N x (pre-LayerNorm self-attention + feed-forward) -> readout -> head``

As the Particle Transformer (ParT; Qu, Li, Qian 2022, arXiv:2202.03772;
reference code ``weaver/nn/model/ParticleTransformer.py`` of hqucms/weaver-core):

- each particle's features are embedded by dense layers (the shared
  sequence ``embedding``);
- for every pair of particles ``(i, j)`` four features are computed in torch
  from the raw four-vectors (:func:`pair_features`): ln ΔR, ln kT, ln z and
  ln m², with ParT's definitions (ΔR in rapidity and azimuth); a small
  pointwise MLP turns them into one number per attention head, added to the
  attention logits ``q·k/√d`` of that pair (the "interaction" matrix);
- every block is pre-LayerNorm: ``x + MHA(LN(x), bias)``, then
  ``x + FFN(LN(x))``; padded particles are excluded as keys (key padding
  mask) and their outputs set to zero;
- the event vector is read by class attention (a learnt class token that
  attends to the particles, ParT's two class blocks) or by a masked pooling
  (``mean``, ``max``, ``sum``, ``attention``).

Beyond ParT, ``selections: K`` adds K learnt soft selections of particles
(:class:`FourVectorSums`): the invariant mass and pt of each selection's
weighted four-vector sum join the event vector. Attention weighs particles
but cannot compute a pair mass to the detector's 1%; on the demo's events
(``examples/particle_transformer_events.py``) two selections take the
muon-pair mass σ from 2.7 to 1.7 GeV with particle identification (the
analytic dimuon mass: 1.1 GeV) and from 6.2 to 2.8 GeV without.

The four-vectors come from the data config's ``sequence.kinematics``
(``[pt, eta, phi, energy]``), carried unstandardised next to the standardised
features as the batch's ``kinematics`` (B, T, 4) and as an input of an
exported graph. Without pairwise features (``pair_features: false``) the
model is a plain transformer encoder and needs no kinematics.

Nothing depends on the order of the particles (permutation invariance) or
on the padding (tested). Dropout inside the encoder (``dropout``) and in the
head is kept on by MC-dropout prediction; with ``dropout: 0`` only the head
runs T times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from physnn.errors import ConfigError
from physnn.models.base import SideInput
from physnn.models.registry import ModelIO, register
from physnn.models.sequence import MaskedReadout, SequenceModel, SequenceParams, build_sequence_model, masks

#: Clamp of the arguments of the logarithms (ParT's ``eps``).
EPS = 1e-8
#: The pairwise features, in the order :func:`pair_features` returns them.
PAIR_FEATURES = ("ln_kt", "ln_z", "ln_delta_r", "ln_m2")


def pair_features(kinematics: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """ParT's pairwise features of every pair of particles, from ``[pt, eta, phi, energy]``.

    Parameters
    ----------
    kinematics
        (B, T, 4): pt, pseudorapidity, azimuth, energy per particle (zeros at
        padded positions give finite values, masked later).
    eps
        Lower clamp of the arguments of the logarithms.

    Returns
    -------
    torch.Tensor
        (B, T, T, 4): ln kT, ln z, ln ΔR, ln m² of each pair ``(i, j)``, where
        ΔR² = Δy² + Δφ² (y the rapidity, Δφ wrapped into [-π, π)),
        kT = min(pt_i, pt_j) ΔR, z = min(pt_i, pt_j) / (pt_i + pt_j) and
        m² = (p_i + p_j)² of the summed four-vectors (in the input's units).
    """
    pt, eta, phi, energy = kinematics.unbind(-1)
    px, py, pz = pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)
    rapidity = 0.5 * torch.log((energy + pz).clamp(min=eps) / (energy - pz).clamp(min=eps))
    dy = rapidity[:, :, None] - rapidity[:, None, :]
    dphi = torch.remainder(phi[:, :, None] - phi[:, None, :] + math.pi, 2 * math.pi) - math.pi
    delta = torch.sqrt(dy.square() + dphi.square())
    pt_i, pt_j = pt[:, :, None], pt[:, None, :]
    pt_min = torch.minimum(pt_i, pt_j)
    ln_kt = torch.log((pt_min * delta).clamp(min=eps))
    ln_z = torch.log((pt_min / (pt_i + pt_j).clamp(min=eps)).clamp(min=eps))
    ln_delta = torch.log(delta.clamp(min=eps))
    m2 = ((energy[:, :, None] + energy[:, None, :]).square() - (px[:, :, None] + px[:, None, :]).square()
          - (py[:, :, None] + py[:, None, :]).square() - (pz[:, :, None] + pz[:, None, :]).square())
    ln_m2 = torch.log(m2.clamp(min=eps))
    return torch.stack([ln_kt, ln_z, ln_delta, ln_m2], dim=-1)


class ParticleTransformerParams(SequenceParams):
    """Parameters of the ``particle_transformer`` model.

    Attributes
    ----------
    embedding
        Per-particle dense layers before the encoder; the last width (the
        model width) must be a multiple of ``heads``.
    heads
        Attention heads per block.
    blocks
        Self-attention blocks over the particles.
    ffn_ratio
        Width of each block's feed-forward network, in multiples of the model width.
    dropout
        Dropout on the attention weights and on each residual branch of the
        blocks (kept on by MC dropout); 0: only the head's dropout.
    pair_features
        Add ParT's pairwise features (ln kT, ln z, ln ΔR, ln m²) as attention
        bias; needs the four-vectors (pt, eta, phi, energy) as ``kinematics`` in the data
        config's ``sequence``.
    pair_embedding
        Hidden widths of the pointwise MLP from the 4 pairwise features to one
        bias per head ([]: a linear map).
    readout
        ``class_attention`` (a learnt class token attends to the particles) or
        a masked pooling: ``mean``, ``max``, ``sum``, ``attention``.
    class_blocks
        Class-attention blocks of the ``class_attention`` readout.
    selections
        K learnt soft selections of particles (not in ParT): each particle gets a weight in (0, 1) per selection
        from its encoded features, and the invariant mass and pt of each selection's weighted four-vector sum
        join the event vector (batch-normalised). Attention mixes the particles' features but cannot compute an
        invariant mass to 1%; this hands the head the mass of the particles it picks (e.g. the two muons). 0:
        ParT as published. Needs the kinematics.
    head
        Dense and dropout layers after the readout (and the scalars).
    """

    heads: int = Field(default=4, gt=0)
    blocks: int = Field(default=2, ge=1)
    ffn_ratio: int = Field(default=2, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    pair_features: bool = True
    pair_embedding: list[PositiveInt] = Field(default_factory=lambda: [16])
    readout: Literal["class_attention", "mean", "max", "sum", "attention"] = "class_attention"  # type: ignore[assignment]
    class_blocks: int = Field(default=1, ge=1)
    selections: int = Field(default=0, ge=0)


def dropout_layer(rate: float) -> nn.Module:
    """Dropout, or nothing at rate 0 (so that MC dropout caches the encoder: it holds no dropout layer)."""
    return nn.Dropout(rate) if rate > 0 else nn.Identity()


class Attention(nn.Module):
    """Multi-head attention with an additive bias (B, H, Tq, Tk) and a key padding mask (B, Tk)."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.scale = heads, (width // heads) ** -0.5
        self.query, self.key_value = nn.Linear(width, width), nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.drop = dropout_layer(dropout)

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor, keys: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        b, tq, w = q_in.shape
        h = self.heads
        q = self.query(q_in).reshape(b, tq, h, w // h).transpose(1, 2)
        k, v = self.key_value(kv_in).reshape(b, -1, 2, h, w // h).permute(2, 0, 3, 1, 4).unbind(0)
        logits = (q @ k.transpose(-1, -2)) * self.scale
        if bias is not None:
            logits = logits + bias
        logits = logits.masked_fill(~keys[:, None, None, :], float("-inf"))
        weights = self.drop(torch.softmax(logits, dim=-1))
        return self.out((weights @ v).transpose(1, 2).reshape(b, tq, w))


class Block(nn.Module):
    """One pre-LayerNorm transformer block: ``x + MHA(LN(x))`` then ``x + FFN(LN(x))``."""

    def __init__(self, width: int, params: ParticleTransformerParams) -> None:
        super().__init__()
        self.norm_attention, self.norm_ffn = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = Attention(width, params.heads, params.dropout)
        hidden = params.ffn_ratio * width
        self.ffn = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), dropout_layer(params.dropout),
                                 nn.Linear(hidden, width))
        self.drop = dropout_layer(params.dropout)

    def forward(self, x: torch.Tensor, keys: torch.Tensor, bias: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        """``context`` given: class attention, ``x`` (the class token) attends to ``[x, context]``."""
        h = self.norm_attention(x)
        kv = h if context is None else torch.cat([h, self.norm_attention(context)], dim=1)
        x = x + self.drop(self.attention(h, kv, keys, bias))
        return x + self.drop(self.ffn(self.norm_ffn(x)))


class PairEmbedding(nn.Module):
    """The pointwise MLP from the pairwise features (B, T, T, 4) to one attention bias per head (B, H, T, T)."""

    def __init__(self, hidden: list[int], heads: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = len(PAIR_FEATURES)
        for units in hidden:
            layers += [nn.Linear(width, units), nn.GELU()]
            width = units
        layers.append(nn.Linear(width, heads))
        self.mlp = nn.Sequential(*layers)

    def forward(self, kinematics: torch.Tensor) -> torch.Tensor:
        return self.mlp(pair_features(kinematics)).permute(0, 3, 1, 2)


class FourVectorSums(nn.Module):
    """K soft selections of the particles: the mass and pt of each selection's weighted four-vector sum.

    ``weights = sigmoid(Linear(x))`` (B, T, K), zero at padded particles; the sum over the particles of
    ``weight * (px, py, pz, E)`` gives K four-vectors per event, whose ``sqrt(max(m², eps))`` and pt (B, 2K)
    are batch-normalised (their scale is that of the data: GeV).
    """

    def __init__(self, width: int, selections: int) -> None:
        super().__init__()
        self.select = nn.Linear(width, selections)
        self.norm = nn.BatchNorm1d(2 * selections)

    def forward(self, x: torch.Tensor, kinematics: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        pt, eta, phi, energy = kinematics.float().unbind(-1)
        p4 = torch.stack([pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta), energy], dim=-1)
        with torch.autocast(device_type=x.device.type, enabled=False):  # float32: bf16 sums are 2% off a Z's mass
            weights = torch.sigmoid(self.select(x.float())) * real.float()  # (B, T, K)
            total = weights.transpose(1, 2) @ p4  # (B, K, 4)
        px, py, pz, e = total.unbind(-1)
        mass = torch.sqrt((e.square() - px.square() - py.square() - pz.square()).clamp(min=EPS))
        out = torch.cat([mass, torch.sqrt(px.square() + py.square() + EPS)], dim=-1)
        norm = self.norm  # batch statistics from 2 events up; a training batch of one uses the running ones
        return nn.functional.batch_norm(out, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                                        norm.training and out.shape[0] > 1, norm.momentum or 0.1, norm.eps)


class TransformerEncoder(SideInput):
    """Self-attention blocks over the embedded particles with the pairwise bias, then the readout."""

    def __init__(self, width: int, params: ParticleTransformerParams) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, params) for _ in range(params.blocks))
        self.pairs = PairEmbedding(params.pair_embedding, params.heads) if params.pair_features else None
        self.norm = nn.LayerNorm(width)
        self.sums = FourVectorSums(width, params.selections) if params.selections else None
        self.width = width + 2 * params.selections
        if params.readout == "class_attention":
            self.cls = nn.Parameter(torch.zeros(1, 1, width))
            nn.init.trunc_normal_(self.cls, std=0.02)
            self.class_blocks = nn.ModuleList(Block(width, params) for _ in range(params.class_blocks))
            self.pool = None
        else:
            self.pool = MaskedReadout(params.readout, width)

    def forward(self, x: torch.Tensor, side: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mask, length = masks(side, x)
        keep = mask.unsqueeze(-1)
        bias = kinematics = None
        if self.pairs is not None or self.sums is not None:
            kinematics = side["kinematics"][:, : x.shape[1]].to(x.dtype)
            real = side["mask"][:, : x.shape[1], None] if "mask" in side else keep  # an empty event: zeros
            kinematics = torch.where(real, kinematics, torch.zeros_like(kinematics))
        if self.pairs is not None:
            bias = self.pairs(kinematics)
        for block in self.blocks:
            x = block(x, mask, bias) * keep.to(x.dtype)
        if self.pool is not None:
            out = self.pool(self.norm(x) * keep.to(x.dtype), mask, length)
        else:
            token = self.cls.expand(x.shape[0], -1, -1)
            keys = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
            for block in self.class_blocks:
                token = block(token, keys, context=x)
            out = self.norm(token)[:, 0]
        if self.sums is None:
            return out
        return torch.cat([out, self.sums(x, kinematics, real)], dim=-1)


@register("particle_transformer", ParticleTransformerParams)
def build_particle_transformer(params: ParticleTransformerParams, io: ModelIO) -> SequenceModel:
    """Particle Transformer: self-attention over the particles with pairwise kinematics (ΔR, kT, z, m²) as bias."""
    if (params.pair_features or params.selections) and io.sequence is not None and not io.kinematics:
        msg = ("model 'particle_transformer' computes pairwise features from the four-vectors: add kinematics: "
               "[part_pt, part_eta, part_phi, part_e] (pt, eta, phi, energy) to the data config's sequence, "
               "or set pair_features: false (and selections: 0)")
        raise ConfigError(msg)

    def encoder(width: int) -> tuple[SideInput, int]:
        if width % params.heads:
            msg = (f"model 'particle_transformer': the embedding's width {width} is not a multiple of heads "
                   f"({params.heads}); change the last embedding units or heads")
            raise ConfigError(msg)
        enc = TransformerEncoder(width, params)
        return enc, enc.width

    return build_sequence_model("particle_transformer", params, io, encoder)
