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
:meth:`physnn.training.trainer.Trainer._train_epoch_adversarial`; the two
losses are :func:`critic_loss` and :func:`generator_loss` below.

Energy-conservation and shower-shape aids: the generator makes each layer as
its energy times its shape (``layer_energies``), an ``energy_matching`` term
pulls the batch mean and spread of the layer energies towards the real
showers', and a feature critic (``feature_critic``) scores the high-level
features of each shower (energy per layer over the incident energy,
energy-weighted centroids and widths), computed differentiably from the image
by the task, next to the image critic, so a generated shower with the wrong
energy response or width is easy to tell from a simulated one.
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
        Add a second, small critic on high-level features computed
        (differentiably) from the image: per layer the energy over the
        incident energy (or over eps without one), the energy-weighted
        centroid and width in x and y, and the total; its score is added to
        the image critic's, so the GAN is judged on the shower observables
        an analysis uses, and the generator gets a focused signal on them.
    energy_matching
        Weight of an energy-conservation term added to the generator's loss:
        the squared differences of the batch mean and spread of every layer's
        energy fraction (and of the total) between generated and real showers
        of the same conditions (:func:`energy_matching_loss`); 0: off.
    layer_energies
        The generator makes each layer as its energy times its shape: a dense
        head gives the layer's energy (as a fraction of the incident energy),
        a softmax over the layer's cells its shape, so the generated energy
        is exactly what the head asked for (before zero suppression) and the
        energy response is a low-dimensional problem the GAN learns well.
        Off: the convolutions give every cell directly.
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


def _maps(cond: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The conditions as constant feature maps the size of ``like``: (N, C) -> (N, C, H, W)."""
    return cond[:, :, None, None].expand(-1, -1, *like.shape[2:]).to(like.dtype)


class Generator(nn.Module):
    """Noise + conditions -> image ``(layers, H, W)`` in the task's cell representation (before zero suppression).

    With ``layer_energies``, layer ``l`` is ``E_l * s_l(h, w)`` with
    ``log E_l = offset_l + a_l(z, c)`` and ``s_l = softmax(prior_l + logits_l)``
    over the layer's cells; the task gives ``offset_l = log(E_inc / eps)`` plus
    the log of the layer's mean energy fraction and ``prior_l``, the log of the
    mean shower shape, so the generator starts from the average shower and
    learns corrections. In the cell representation ``x = log(1 + E / eps)``
    that is ``softplus(offset_l + a_l + log_softmax(prior_l + logits_l))``,
    exact and stable.
    """

    def __init__(self, shape: tuple[int, int, int], n_cond: int, params: GANParams) -> None:
        super().__init__()
        layers, height, width = shape
        ups = len(params.generator_channels) - 1
        self.start = (-(-height // 2**ups), -(-width // 2**ups))
        self.shape = shape
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
        self.layer_energies = params.layer_energies
        if params.layer_energies:
            self.energy = nn.Sequential(nn.Linear(params.latent_dim + n_cond, 64), nn.LeakyReLU(0.2),
                                        nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, layers))

    def forward(self, z: torch.Tensor, cond: torch.Tensor, offset: torch.Tensor | None = None,
                prior: torch.Tensor | None = None) -> torch.Tensor:
        h = F.leaky_relu(self.dense(torch.cat([z, cond], dim=1)), 0.2)
        h = h.reshape(len(z), -1, *self.start)
        for block in self.blocks:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = F.leaky_relu(block(torch.cat([h, _maps(cond, h)], dim=1)), 0.2)
        x = self.out(torch.cat([h, _maps(cond, h)], dim=1))
        x = x[:, :, : self.shape[1], : self.shape[2]]  # crop the upsampled grid to the detector's
        if not self.layer_energies:
            return F.softplus(x, beta=4.0)  # non-negative cells; the task's zero suppression makes exact zeros
        if prior is not None:
            x = x + prior.to(x.dtype)
        log_shape = torch.log_softmax(x.flatten(2), dim=2).reshape(x.shape)
        log_energy = self.energy(torch.cat([z, cond], dim=1))  # log(E_l / E_inc) - log(mean fraction)
        if offset is not None:
            log_energy = log_energy + offset
        return F.softplus(log_energy[:, :, None, None] + log_shape)


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
        return self.generator(batch["latent"], batch["conditions"], batch.get("offset"), batch.get("prior"))

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
    n_extra = FEATURES_PER_LAYER * shape[0] + 1 if params.feature_critic else 0
    return ConditionalGAN(shape, io.conditions or 0, n_extra, params)  # type: ignore[arg-type]
