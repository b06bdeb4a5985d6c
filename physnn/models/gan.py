"""Conditional GAN fast simulator for calorimeter images.

A **generator** maps noise ``z`` and the conditions ``c`` of a shower (the
standardised log of the incident energy, the impact point, the particle type
one-hot; see :class:`~physnn.models.generation.GenerationTask`) to an image of
the detector's shape ``(layers, H, W)``; a **critic** scores an image given the
same conditions. Both work in the task's cell representation
``x = log(1 + E / eps)`` (eps ~ the zero-suppression threshold), in which a
30 GeV core cell and a 30 MeV halo cell are both O(1) numbers.

Two formulations that train stably are available (``loss``):

- ``wgan-gp`` (default), Wasserstein GAN with gradient penalty (Gulrajani et
  al. 2017): the critic maximises ``D(real) - D(fake)`` under a soft
  1-Lipschitz constraint ``gp_weight * (|grad D(x_hat)| - 1)^2`` on random
  interpolates ``x_hat``, plus a small ``drift * D(real)^2`` that keeps its
  output near zero; the generator maximises ``D(fake)``.
- ``hinge`` with spectral normalisation of every critic layer (Miyato et
  al. 2018): the critic minimises ``relu(1 - D(real)) + relu(1 + D(fake))``,
  the generator maximises ``D(fake)``.

The alternating scheme itself, one critic step on real vs generated showers
for every batch and one generator step every ``n_critic`` batches, is
:meth:`physnn.models.gan_step.AdversarialStep.train_epoch`; the two
losses are :func:`~physnn.models.gan_losses.critic_loss` and
:func:`~physnn.models.gan_losses.generator_loss`.

Energy-conservation and shower-shape aids: the generator makes each layer as
its energy times its shape (``layer_energies``), so the energy is exactly
what was asked for; the layer energies come from a conditional density fitted
by maximum likelihood (``energy_model: mixture``, :class:`LayerEnergyDensity`)
and the image network is conditioned on them, so the adversarial game is
about shower shapes. A feature critic (``feature_critic``) scores the
high-level features of each shower (energy per layer over the incident
energy, energy-weighted centroids and widths), computed differentiably from
the image by the task, next to the image critic, so a generated shower with
the wrong width is easy to tell from a simulated one. With
``energy_model: adversarial`` the energies are learnt through the critic,
helped by an ``energy_matching`` term on their batch mean and spread.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from physnn.config import Strict
from physnn.models.cells import CellCode
from physnn.models.gan_energy import LayerEnergyDensity
from physnn.models.gan_hits import CellFluctuations, SpotFluctuations
from physnn.models.registry import ModelIO, register

#: High-level features per layer seen by the feature critic: energy, centroid x/y, width x/y.
FEATURES_PER_LAYER = 5


class GANParams(Strict):
    """Parameters of the ``gan`` model.

    Attributes
    ----------
    latent_dim
        Size of the noise vector ``z``.
    generator_channels
        Channels of the generator's feature maps, coarse to fine: the first
        map has ``ceil(H / 2^k) x ceil(W / 2^k)`` cells for ``k = len - 1``
        upsamplings, each following entry doubles the resolution.
    critic_channels
        Channels of the critic's stride-2 convolutions.
    critic_hidden
        Width of the critic's dense layer.
    kernel_size
        Odd convolution kernel size.
    loss
        ``wgan-gp`` or ``hinge`` (with spectral normalisation), see module docs.
    gp_weight
        Gradient-penalty weight (``wgan-gp``).
    drift
        Weight of the ``D(real)^2`` drift term (``wgan-gp``).
    n_critic
        Critic steps per generator step.
    feature_critic
        Add a second, small critic on the shower features an analysis uses.
        It sees high-level features computed (differentiably) from the image:
        per layer the energy over the incident energy (or over eps without
        one), the energy-weighted centroid and width in x and y, and the
        total; its score is added to the image critic's, so the GAN is judged
        on these observables, and the generator gets a focused signal on them.
    energy_matching
        Weight of an energy-conservation term in the generator's loss (0: off).
        The term is the squared differences of the batch mean and spread of
        every layer's energy fraction (and of the total) between generated and
        real showers of the same conditions (:func:`energy_matching_loss`).
    layer_energies
        Make each layer as its energy times its shape, so that the generated
        energy is what was asked for (before zero suppression). The layer's
        energy comes from ``energy_model``, a softmax over the layer's cells
        gives its shape. Off: the convolutions give every cell directly.
    energy_model
        Where the layer energies come from (with ``layer_energies``): a
        density fitted next to the GAN, or the adversarial game.
        ``mixture`` (default) is a conditional density
        :class:`LayerEnergyDensity` of the layer energies given the
        conditions, a mixture of full-covariance Gaussians fitted by maximum
        likelihood next to the GAN; the image generator is conditioned on
        the layer energies (the real ones during training, sampled ones when
        generating) and the adversarial game is about shapes only. The
        energy response, resolution and layer correlations, what an analysis
        is most sensitive to, are then fitted as a density, the way CaloFlow
        splits the problem. ``adversarial``: a dense head on ``(z, c)``
        learns them through the critic (and ``energy_matching``).
    energy_components
        Gaussians in the ``mixture`` energy model.
    energy_lr
        Learning rate of the ``mixture`` density's own Adam optimiser (default
        betas; ``train.scheduler`` applies to it as to the others), one step
        per batch; None: it learns with the generator's
        optimiser (the runs written before it). The density is a maximum-
        likelihood fit that shares no weight with the image networks, and
        the GAN's optimiser (lr 2e-4, beta1 0.5) fits it too slowly: after 30
        epochs 1% of generated pions had more visible energy than 1.7x their
        incident energy (0.1% in simulation above 1.05x).
    readout_noise
        End the generator with the detector's readout: noise of a learnt
        width per layer, then the zero suppression (with ``layer_energies``).
        Gaussian electronic noise is added to every cell before the zero
        suppression, the energy that noise alone reads out is taken from the
        shower's, so the layer energy stays as asked for. The isolated noise cells above threshold
        that real data show all over the grid (they set the sparsity and the
        width of soft layers) are then easy to make, instead of an image
        network having to paint random speckles.
    cell_fluctuations
        Share each generated layer's energy among its cells as Gamma-distributed
        hits around the generated mean shape, with a learnt hit energy
        (:class:`~physnn.models.gan_hits.CellFluctuations`; with
        ``layer_energies``), before the readout noise: the cells then
        fluctuate as a sampling calorimeter's do (variance ~ hit energy x
        mean, rare whole hits far from the core), which a convolutional
        generator paints poorly. Off by default, as in the runs written before it.
    hit_counts
        With ``cell_fluctuations``: cells made of whole spots, a Poisson number
        of them per cell, each of a Gamma energy of learnt mean and shape
        (:class:`~physnn.models.gan_hits.SpotFluctuations`), so that a soft
        cell holds one spot or none, as in a sampling calorimeter, not a
        fraction of one. Off by default, as in the runs written before it.
    cell_spectrum
        Weight of a term on the generator's loss: per layer, the distance
        between the generated and the real cell values of the batch
        (:func:`~physnn.models.gan_losses.cell_spectrum_loss`: how many cells
        are read out, and their energies). 0 (off) by default.
    noise_width
        The width of the readout noise (``readout_noise``): ``learnt`` per
        layer (the runs written before it), or ``declared``: the noise the
        training files declare in ``physnn_meta["readout"]`` (physnn's
        simulator does), learnt where they declare none.
    energy_kept
        Which sum of a generated layer's cells equals its sampled energy (with
        ``layer_energies``). ``noise`` (the runs written before it): the
        shower plus what its noise alone reads out, so the zero suppression
        then takes the shower's cells below the cut from it; ``readout``:
        the cells the readout keeps, after the zero suppression, which is
        what a file's layer energies are and what the energy density learnt
        (the kept shower cells are scaled up by what the cut removed).
    """

    latent_dim: PositiveInt = 64
    generator_channels: list[PositiveInt] = Field(default_factory=lambda: [64, 32, 16], min_length=1)
    critic_channels: list[PositiveInt] = Field(default_factory=lambda: [32, 64, 64], min_length=1)
    critic_hidden: PositiveInt = 128
    kernel_size: PositiveInt = 3
    loss: Literal["wgan-gp", "hinge"] = "wgan-gp"
    gp_weight: float = Field(default=10.0, ge=0.0)
    drift: float = Field(default=1e-3, ge=0.0)
    n_critic: PositiveInt = 5
    feature_critic: bool = True
    layer_energies: bool = True
    energy_matching: float = Field(default=100.0, ge=0.0)
    energy_model: Literal["mixture", "adversarial"] = "mixture"
    energy_components: PositiveInt = 8
    energy_lr: float | None = Field(default=None, gt=0.0)
    readout_noise: bool = True
    cell_fluctuations: bool = False
    hit_counts: bool = False
    cell_spectrum: float = Field(default=0.0, ge=0.0)
    energy_kept: Literal["noise", "readout"] = "noise"
    noise_width: Literal["learnt", "declared"] = "learnt"


def _maps(cond: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The conditions as constant feature maps the size of ``like``: (N, C) -> (N, C, H, W)."""
    return cond[:, :, None, None].expand(-1, -1, *like.shape[2:]).to(like.dtype)


def conv_with_conditions(conv: nn.Conv2d, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """``conv(cat([h, _maps(cond, h)]))`` for a stride-1 ``replicate``-padded convolution, computed without the
    condition maps: a constant map stays constant under replicate padding, so its part of the convolution is a
    per-event bias, ``cond @ W_cond.sum(kh, kw)``. The same function (to float rounding) and the same weights,
    at the cost of the image channels alone, run in channels-last layout (oneDNN's fast path on CPUs)."""
    kh, kw = conv.kernel_size
    if (conv.padding_mode != "replicate" or conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1
            or conv.padding != (kh // 2, kw // 2)):
        raise ValueError("conv_with_conditions: a stride-1, undilated, ungrouped convolution with 'same' "
                         "replicate padding")
    k = h.shape[1]
    w = conv.weight.to(h.dtype)
    bias = cond.to(h.dtype) @ w[:, k:].sum((2, 3)).T
    if conv.bias is not None:
        bias = bias + conv.bias.to(h.dtype)
    pad = kw // 2, kw // 2, kh // 2, kh // 2  # F.pad: the last axis (width) first
    h = F.pad(h.contiguous(memory_format=torch.channels_last), pad, mode="replicate")
    return F.conv2d(h, w[:, :k].contiguous(memory_format=torch.channels_last)) + bias[:, :, None, None]


class Generator(nn.Module):
    """Noise + conditions -> image ``(layers, H, W)`` in the task's cell representation (before zero suppression).

    With ``layer_energies``, layer ``l`` is ``E_l * s_l(h, w)`` with
    ``s_l = softmax(prior_l + logits_l)`` over the layer's cells, ``prior_l``
    the log of the mean shower shape (from the task), so the generator starts
    from the average shower and learns corrections. The layer energies come
    from the :class:`LayerEnergyDensity` (``energy_model: mixture``; given as
    ``energies`` during training, sampled from ``z`` otherwise), and the
    image network is conditioned on them; or from a dense head,
    ``log E_l = offset_l + a_l(z, c)`` (``adversarial``). In the cell
    representation ``x = log(1 + E / eps)`` that is
    ``softplus(log(E_l / eps) + log_softmax(prior_l + logits_l))``, exact and
    stable.
    """

    def __init__(self, shape: tuple[int, int, int], n_cond: int, params: GANParams) -> None:
        super().__init__()
        layers, height, width = shape
        ups = len(params.generator_channels) - 1
        self.start = (-(-height // 2**ups), -(-width // 2**ups))
        self.shape = shape
        self.layer_energies = params.layer_energies
        self.density = None
        if params.layer_energies and params.energy_model == "mixture":
            self.density = LayerEnergyDensity(layers, n_cond, params.energy_components)
            n_cond += layers  # the image network also sees the layer energies
        c0 = params.generator_channels[0]
        self.dense = nn.Linear(params.latent_dim + n_cond, c0 * self.start[0] * self.start[1])
        pad = params.kernel_size // 2
        # replicate padding: with zeros around the grid, border cells get a response of their own and the
        # generator learns to light the grid's edges
        self.blocks = nn.ModuleList(
            nn.Conv2d(c_in + n_cond, c_out, params.kernel_size, padding=pad, padding_mode="replicate")
            for c_in, c_out in zip(params.generator_channels[:-1], params.generator_channels[1:], strict=True))
        self.out = nn.Conv2d(params.generator_channels[-1] + n_cond, layers, params.kernel_size, padding=pad,
                             padding_mode="replicate")
        self.energy_kept, self.noise_width = params.energy_kept, params.noise_width
        self.hits = None
        if params.layer_energies and params.cell_fluctuations:
            hits = SpotFluctuations if params.hit_counts else CellFluctuations
            self.hits = hits(layers, n_cond - (layers if self.density is not None else 0))
        self.noise_scale = None
        if params.layer_energies and params.readout_noise:  # log of the noise width per layer, in units of eps
            self.noise_scale = nn.Parameter(torch.full((layers,), -0.7))
        if params.layer_energies and self.density is None:
            self.energy = nn.Sequential(nn.Linear(params.latent_dim + n_cond, 64), nn.LeakyReLU(0.2),
                                        nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, layers))

    def forward(self, z: torch.Tensor, cond: torch.Tensor, offset: torch.Tensor | None = None,
                prior: torch.Tensor | None = None, energies: torch.Tensor | None = None) -> torch.Tensor:
        if offset is None:
            offset = torch.zeros(z.shape[0], self.shape[0], device=z.device, dtype=z.dtype)
        log_energy = None
        if self.density is not None:  # layer energies y = log(1 + E_l / eps): given, or sampled from z
            y = energies if energies is not None else self.density.sample(cond, offset, z)
            y = y.to(z.dtype).clamp(min=1e-4)  # y <= 0: an empty layer (energy far below the threshold)
            log_energy = torch.log(torch.expm1(y))
            cond = torch.cat([cond.to(z.dtype), (y - offset).clamp(-5.0, 5.0)], dim=1)
        h = F.leaky_relu(self.dense(torch.cat([z, cond], dim=1)), 0.2)
        h = h.reshape(z.shape[0], -1, *self.start).contiguous(memory_format=torch.channels_last)
        for block in self.blocks:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = F.leaky_relu(conv_with_conditions(block, h, cond), 0.2)
        x = conv_with_conditions(self.out, h, cond).contiguous()  # few channels: back to the plain layout
        x = x[:, :, : self.shape[1], : self.shape[2]]  # crop the upsampled grid to the detector's
        if not self.layer_energies:
            return F.softplus(x, beta=4.0)  # non-negative cells; the task's zero suppression makes exact zeros
        if prior is not None:
            x = x + prior.to(x.dtype)
        log_shape = torch.log_softmax(x.flatten(2), dim=2).reshape(x.shape)
        if log_energy is None:  # the adversarial head: log(E_l / E_inc) - log(mean fraction), plus the offset
            log_energy = self.energy(torch.cat([z, cond], dim=1)) + offset
        return F.softplus(log_energy[:, :, None, None] + log_shape)

    def adds_noise(self, zero_suppression: bool) -> bool:
        """Whether the readout adds noise: with ``readout_noise`` and a zero suppression (which keeps the layer
        energy against it)."""
        return self.noise_scale is not None and zero_suppression

    def draws_per_cell(self, zero_suppression: bool) -> int:
        """Standard-normal draws per cell the readout takes: the hit fluctuations' (2, or 3 with counts), 1 for the
        noise."""
        return (0 if self.hits is None else self.hits.draws) + int(self.adds_noise(zero_suppression))

    def declared_noise(self, code: CellCode) -> bool:
        """Whether the readout adds the noise the files declare (``noise_width: declared``), not a learnt one."""
        return self.adds_noise(code.threshold > 0) and self.noise_width == "declared" and bool(code.noise)

    def noise_sigma(self, code: CellCode) -> torch.Tensor:
        """The readout noise's width per layer in units of eps: declared by the files, or learnt."""
        assert self.noise_scale is not None
        if self.declared_noise(code):
            return torch.full_like(self.noise_scale, float(code.noise) / code.scale)
        return self.noise_scale.exp()

    def readout(self, x: torch.Tensor, draws: torch.Tensor, code: CellCode, cond: torch.Tensor) -> torch.Tensor:
        """Hit fluctuations, then readout noise, on generated cells (model space ``code``), keeping each layer's
        energy.

        ``draws`` are standard normal, (N, k, L, H, W) with ``k`` = :meth:`draws_per_cell` (the noise's first), or
        (N, L, H, W) for the noise alone. The hits (:class:`~physnn.models.gan_hits.CellFluctuations`) share each
        layer's energy among its cells. The energy that the noise alone would read out (the cells the zero
        suppression keeps: above the cut, or beyond it on either side for a ``signed`` code) is taken from the
        shower's, so that shower plus noise still has the layer energy the generator was asked for.
        """
        draws = draws if draws.dim() == x.dim() + 1 else draws[:, None]
        cells = torch.expm1(x)  # units of eps; the generator's cells are non-negative
        if self.hits is not None:
            cells = self.hits(cells, cond, draws[:, -self.hits.draws:])
        with_noise = self.adds_noise(code.threshold > 0)
        if not with_noise and self.energy_kept == "noise":
            return code.from_scale_units(cells)
        total = cells.flatten(2).sum(2)
        noise = (self.noise_sigma(code).to(x.dtype)[None, :, None, None] * draws[:, 0].to(x.dtype) if with_noise
                 else torch.zeros_like(cells))
        if self.energy_kept == "noise":
            alone = (noise * ~code.below_cut(noise)).flatten(2).sum(2)
            keep = ((total - alone) / total.clamp(min=1e-6)).clamp(min=0.0)
        else:  # what the readout keeps sums to the layer energy: its shower cells take what the cut removed
            # (approximately: a kept cell that a scale below 1 takes under the cut is lost; the scale is capped at 10)
            kept = ~code.below_cut(cells + noise)
            shower, alone = (cells * kept).flatten(2).sum(2), (noise * kept).flatten(2).sum(2)
            keep = ((total - alone) / shower.clamp(min=1e-6)).clamp(0.0, 10.0)
            read = code.from_scale_units(cells * keep[:, :, None, None] + noise)
            # the cells the cut removed stay out (the scale could lift one over it), with a straight-through
            # gradient as the zero suppression's, so the critic can still push a cell below the cut above it
            return read + (read * kept - read).detach()
        return code.from_scale_units(cells * keep[:, :, None, None] + noise)


class CriticNet(nn.Module):
    """Image + conditions (+ energy features) -> one score per event."""

    def __init__(self, shape: tuple[int, int, int], n_cond: int, n_extra: int, params: GANParams) -> None:
        super().__init__()
        norm = nn.utils.parametrizations.spectral_norm if params.loss == "hinge" else (lambda m: m)
        pad = params.kernel_size // 2
        channels = [shape[0] + n_cond, *params.critic_channels]
        self.convs = nn.ModuleList(norm(nn.Conv2d(c_in, c_out, params.kernel_size, stride=2, padding=pad))
                                   for c_in, c_out in itertools.pairwise(channels))
        h, w = shape[1], shape[2]
        for _ in params.critic_channels:
            h, w = (h + 2 * pad - params.kernel_size) // 2 + 1, (w + 2 * pad - params.kernel_size) // 2 + 1
        self.n_extra = n_extra
        self.dense = norm(nn.Linear(channels[-1] * h * w + n_cond + n_extra, params.critic_hidden))
        self.out = norm(nn.Linear(params.critic_hidden, 1))
        self.features = None
        if n_extra:  # the feature critic: conditions + high-level features -> a score added to the image's
            self.features = nn.Sequential(norm(nn.Linear(n_cond + n_extra, 128)), nn.LeakyReLU(0.2),
                                          norm(nn.Linear(128, 128)), nn.LeakyReLU(0.2), norm(nn.Linear(128, 1)))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        h = torch.cat([x, _maps(cond, x)], dim=1)
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        flat = [h.flatten(1), cond.to(h.dtype)] + ([] if extra is None else [extra.to(h.dtype)])
        score = self.out(F.leaky_relu(self.dense(torch.cat(flat, dim=1)), 0.2))[:, 0]
        if self.features is not None and extra is not None:
            score = score + self.features(torch.cat([cond.to(h.dtype), extra.to(h.dtype)], dim=1))[:, 0]
        return score


class ConditionalGAN(nn.Module):
    """A generator and a critic trained against each other (see the module docs).

    ``forward(batch)`` generates images from ``batch["latent"]``,
    ``batch["conditions"]``, ``batch["offset"]`` and ``batch["prior"]`` (see :class:`Generator`).
    """

    def __init__(self, shape: tuple[int, int, int], n_cond: int, n_extra: int, params: GANParams) -> None:
        super().__init__()
        self.params = params
        self.latent_dim = params.latent_dim
        self.n_critic = params.n_critic
        self.generator = Generator(shape, n_cond, params)
        self.critic = CriticNet(shape, n_cond, n_extra, params)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generator(batch["latent"], batch["conditions"], batch.get("offset"), batch.get("prior"),
                              batch.get("energies"))

    # What the trainer asks of every model: a GAN has no transferable feature extractor.
    def feature_modules(self) -> list[nn.Module]:
        return []

    def penalty(self) -> float:
        return 0.0

    def first_stochastic_stage(self) -> int:
        return 0


@register("gan", GANParams, generates=True)
def build_gan(params: GANParams, io: ModelIO) -> ConditionalGAN:
    """Conditional GAN fast simulator (WGAN-GP or hinge + spectral norm) for calorimeter images."""
    from physnn.errors import ConfigError

    if io.image is None:
        msg = "model 'gan' generates images: add images: {branches: [...]} to the data config"
        raise ConfigError(msg)
    shape = tuple(io.image)
    if len(shape) == 2:  # a single-layer (H, W) image is generated as (1, H, W)
        shape = (1, *shape)
    if len(shape) != 3:
        msg = f"model 'gan' generates (layers, H, W) or (H, W) images; the data give {list(io.image)}"
        raise ConfigError(msg)
    if params.kernel_size % 2 == 0:
        msg = f"model 'gan' params: kernel_size must be odd, got {params.kernel_size}"
        raise ConfigError(msg)
    if params.layer_energies and params.energy_model == "mixture" and params.latent_dim < shape[0] + 1:
        msg = (f"model 'gan' params: latent_dim must be at least layers + 1 = {shape[0] + 1} with "
               f"energy_model mixture (the noise of the energy sampling), got {params.latent_dim}")
        raise ConfigError(msg)
    mixture = params.layer_energies and params.energy_model == "mixture"
    needs = {"cell_fluctuations": (params.cell_fluctuations and not params.layer_energies, "layer_energies: true"),
             "hit_counts": (params.hit_counts and not params.cell_fluctuations, "cell_fluctuations: true"),
             "energy_kept: readout": (params.energy_kept == "readout" and not params.layer_energies,
                                      "layer_energies: true"),
             "energy_lr": (params.energy_lr is not None and not mixture,
                           "layer_energies: true and energy_model: mixture")}
    for option, (unmet, requirement) in needs.items():
        if unmet:
            msg = f"model 'gan' params: {option} needs {requirement}"
            raise ConfigError(msg)
    n_extra = FEATURES_PER_LAYER * shape[0] + 1 if params.feature_critic else 0
    return ConditionalGAN(shape, io.conditions or 0, n_extra, params)  # type: ignore[arg-type]
