"""The losses of a GAN fast simulator's adversarial game (:mod:`physnn.models.gan`): the critic's (Wasserstein with
gradient penalty, or hinge), the generator's, the energy-matching term of an adversarial energy model, and the cell
spectrum term."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from physnn.models.gan import GANParams

#: a critic with the batch's conditions bound: images -> scores
Critic = Callable[[torch.Tensor], torch.Tensor]


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


def cell_spectrum_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The 1-D Wasserstein distance between the generated and the real cell values of each layer, summed over layers.

    ``fake`` and ``real`` are (N, L, H, W) images in the task's cell representation, after the zero suppression,
    of the same conditions: the cells of a layer are pooled over the batch and the two sorted lists compared, so
    the distance sees how many cells are read out and the spectrum of their energies (a soft cell's one spot).
    """
    pooled = [x.transpose(0, 1).flatten(1).sort(dim=1).values for x in (fake, real)]
    return (pooled[0] - pooled[1].to(pooled[0].dtype)).abs().mean(1).sum()
