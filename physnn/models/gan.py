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
losses are :func:`critic_loss` and :func:`generator_loss` below.

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
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from physnn.config import Strict
from physnn.models.cells import CellCode
from physnn.models.registry import ModelIO, register

Critic = Callable[[torch.Tensor], torch.Tensor]

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
    readout_noise
        End the generator with the detector's readout: noise of a learnt
        width per layer, then the zero suppression (with ``layer_energies``).
        Gaussian electronic noise is added to every cell before the zero
        suppression, the energy that noise alone reads out is taken from the
        shower's, so the layer energy stays as asked for. The isolated noise cells above threshold
        that real data show all over the grid (they set the sparsity and the
        width of soft layers) are then easy to make, instead of an image
        network having to paint random speckles.
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
    readout_noise: bool = True


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


class LayerEnergyDensity(nn.Module):
    """The conditional density of the layer energies, ``p(y | c)``, with ``y_l = log(1 + E_l / eps)``
    (signed, ``sign(E_l) log(1 + |E_l| / eps)``, for a readout that keeps negative cells, so that layers of
    noise alone are a continuous tail below 0, not a point mass at 0).

    A mixture of ``components`` Gaussians with full covariance (so the
    correlations between layers, e.g. a late-starting pion's small first and
    large last layer, are kept), whose weights, means and Cholesky factors
    come from a small network of the conditions; the means are relative to
    ``offset`` (the task's ``log(E_inc / eps)`` plus the log mean fraction of
    each layer). Fitted by maximum likelihood (:meth:`nll`), it is evaluated
    with :mod:`torch.distributions`. :meth:`sample` turns standard-normal
    noise into samples deterministically, so generation stays a function of
    the seeded latent vector. Layers sampled at ``y <= 0`` are empty.
    """

    MIN_SCALE = 1e-3

    def __init__(self, n_layers: int, n_cond: int, components: int, hidden: int = 128) -> None:
        super().__init__()
        self.n_layers, self.components = n_layers, components
        self.register_buffer("tril", torch.tril_indices(n_layers, n_layers, -1), persistent=False)
        per = 1 + 2 * n_layers + n_layers * (n_layers - 1) // 2
        self.net = nn.Sequential(nn.Linear(max(n_cond, 1), hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(hidden, components * per))

    def parameters_of(self, cond: torch.Tensor, offset: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixture logits (N, K), means (N, K, L) and Cholesky factors (N, K, L, L)."""
        n_layers = self.n_layers
        c = cond if cond.shape[1] else cond.new_ones(cond.shape[0], 1)
        out = self.net(c).reshape(c.shape[0], self.components, -1)
        loc = offset[:, None, :].to(out.dtype) + out[..., 1:1 + n_layers]
        scale = torch.diag_embed(F.softplus(out[..., 1 + n_layers:1 + 2 * n_layers]) + self.MIN_SCALE)
        if n_layers > 1:
            lower = out.new_zeros(scale.shape)
            lower[..., self.tril[0], self.tril[1]] = out[..., 1 + 2 * n_layers:]
            scale = scale + lower
        return out[..., 0], loc, scale

    def nll(self, y: torch.Tensor, cond: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of layer energies ``y`` (N, L) given the conditions."""
        from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

        logits, loc, scale = self.parameters_of(cond, offset)
        density = MixtureSameFamily(Categorical(logits=logits), MultivariateNormal(loc, scale_tril=scale),
                                    validate_args=False)
        return -density.log_prob(y.to(loc.dtype)).mean()

    def sample(self, cond: torch.Tensor, offset: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Samples (N, L) from standard-normal ``noise`` (N, >= L + 1): column 0 picks the component
        (through its normal CDF), the next L columns are the Gaussian's."""
        logits, loc, scale = self.parameters_of(cond, offset)
        u = torch.special.ndtr(noise[:, :1].to(loc.dtype))
        # searchsorted(cdf, u) written as a count, which ONNX can express
        k = (torch.softmax(logits, dim=1).cumsum(1) < u).sum(1).clamp(max=self.components - 1)
        rows = torch.arange(k.shape[0], device=k.device)
        eps = noise[:, 1:1 + self.n_layers, None].to(loc.dtype)
        return loc[rows, k] + (scale[rows, k] @ eps)[..., 0]


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

    def readout(self, x: torch.Tensor, noise: torch.Tensor, code: CellCode) -> torch.Tensor:
        """Add the readout noise to generated cells (model space ``code``), keeping each layer's energy.

        ``noise`` is standard normal (N, L, H, W). The energy that the noise alone would read out (the
        cells the zero suppression keeps: above the cut, or beyond it on either side for a ``signed``
        code) is taken from the shower's, so that shower plus noise still has the layer energy the
        generator was asked for. Without ``readout_noise`` the cells are returned as they are.
        """
        if self.noise_scale is None:
            return x
        cells = torch.expm1(x)  # units of eps; the generator's cells are non-negative
        total = cells.flatten(2).sum(2)
        noise = self.noise_scale.exp().to(x.dtype)[None, :, None, None] * noise.to(x.dtype)
        alone = (noise * ~code.below_cut(noise)).flatten(2).sum(2)
        keep = ((total - alone) / total.clamp(min=1e-6)).clamp(min=0.0)
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


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Mean ``(|grad_x D(x_hat)| - 1)^2`` on random interpolates between real and generated images."""
    alpha = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def critic_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                params: GANParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The critic's loss on a batch of real and generated images, and the Wasserstein estimate.

    ``critic`` maps images to scores (the conditions and energy features of
    the batch already bound). ``fake`` must be detached from the generator.

    Returns
    -------
    loss, distance
        The loss to minimise and ``mean D(real) - mean D(fake)`` (detached),
        the critic's estimate of the distance between the two samples.
    """
    d_real, d_fake = critic(real), critic(fake)
    distance = (d_real.mean() - d_fake.mean()).detach()
    if params.loss == "hinge":
        return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean(), distance
    loss = d_fake.mean() - d_real.mean() + params.drift * (d_real**2).mean()
    if params.gp_weight > 0:
        loss = loss + params.gp_weight * gradient_penalty(critic, real, fake)
    return loss, distance


def generator_loss(critic: Critic, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss: ``-mean D(fake)`` (fool the critic), for both formulations."""
    return -critic(fake).mean()


def energy_matching_loss(fake_features: torch.Tensor, real_features: torch.Tensor) -> torch.Tensor:
    """Squared differences of the batch mean and standard deviation of each energy feature (N, F)."""
    mean = (fake_features.mean(0) - real_features.mean(0)) ** 2
    spread = (fake_features.std(0) - real_features.std(0)) ** 2 if len(fake_features) > 1 else 0.0 * mean
    return (mean + spread).sum()


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
    n_extra = FEATURES_PER_LAYER * shape[0] + 1 if params.feature_critic else 0
    return ConditionalGAN(shape, io.conditions or 0, n_extra, params)  # type: ignore[arg-type]
