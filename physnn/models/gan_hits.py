"""Sampling fluctuations of generated cells: each layer's energy shared among its cells as Gamma-distributed hits.

A sampling calorimeter's cells fluctuate around the mean shower: the energy
of a cell is a sum of a few discrete deposits (hits), so its variance grows
like ``theta x mean`` with ``theta`` the energy a hit carries, and a cell far
from the core sees a hit rarely, but then a whole one. ATLAS's parametrised
fast simulation (FastCaloSim V2) reproduces this by sampling hits from the
shape of each layer, as many as the layer's sampling resolution asks for.

:class:`CellFluctuations` does the same, differentiably, so that a GAN's
critic can judge it: given a generated layer of mean cells ``mu_i`` (units of
eps) summing to ``E_l``, the cells become ``E_l g_i / sum_j g_j`` with
``g_i ~ Gamma(mu_i / theta_l)`` (a Dirichlet draw around the mean shape, with
the layer energy kept exactly). ``theta_l`` is the effective hit energy, a
small network of the conditions and the layer energy (it differs between an
electromagnetic and a hadronic shower, and grows where a simulator coarsens
its hits). The Gamma variates are functions of standard-normal draws (the
Wilson-Hilferty cube for ``Gamma(alpha + 1)``, times ``U^(1 / alpha)`` with
``U = Phi(n)``), so that ``physnn generate`` seeds them like every other
random number, ONNX can express them, and gradients reach ``mu`` and
``theta`` (the reparametrisation trick).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CellFluctuations", "gamma_from_normals", "log_gamma_from_normals"]

#: smallest shape parameter used: a cell below it receives a hit with probability ~alpha anyway
MIN_ALPHA = 1e-6


def log_gamma_from_normals(alpha: torch.Tensor, n1: torch.Tensor, n2: torch.Tensor) -> torch.Tensor:
    """The logarithm of ``Gamma(alpha, 1)`` variates from two standard-normal draws of ``alpha``'s shape.

    ``Gamma(alpha) = Gamma(alpha + 1) U^(1 / alpha)`` (Marsaglia and Tsang's boost), with
    ``Gamma(a) ~ a (1 - 1 / (9 a) + n1 / (3 sqrt a))^3`` (Wilson and Hilferty) and ``U = Phi(n2)``. On 2M
    draws the mean and variance are within 1% of the exact ones, the skewness within 5%, and the fraction of
    draws above ``alpha / 10`` (cells that receive a hit) within 1%, for ``alpha`` from 0.01 to 100. In logs,
    because ``U^(1 / alpha)`` underflows float32 for the small ``alpha`` of a cell far from the core; ``n2`` is
    clipped to +-5 (a change of 3e-7 in the distribution), where ONNX Runtime's ``log Phi`` agrees with torch's.
    """
    alpha = alpha.clamp(min=MIN_ALPHA)
    a = alpha + 1.0
    base = (1.0 - 1.0 / (9.0 * a) + n1 / (3.0 * a.sqrt())).clamp(min=1e-10)
    return a.log() + 3.0 * base.log() + torch.special.log_ndtr(n2.clamp(-5.0, 5.0)) / alpha


def gamma_from_normals(alpha: torch.Tensor, n1: torch.Tensor, n2: torch.Tensor) -> torch.Tensor:
    """``Gamma(alpha, 1)`` variates from two standard-normal draws (:func:`log_gamma_from_normals`).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> n1, n2 = torch.randn(2, 200_000, generator=g)
    >>> x = gamma_from_normals(torch.full((200_000,), 0.5), n1, n2)
    >>> round(float(x.mean()), 1), round(float(x.var()), 1)
    (0.5, 0.5)
    """
    return log_gamma_from_normals(alpha, n1, n2).exp()


class CellFluctuations(nn.Module):
    """Mean cells (units of eps) -> cells with hit fluctuations, each layer's energy kept (see the module docs).

    Parameters
    ----------
    n_layers
        Layers of the image.
    n_cond
        Width of the condition vector.
    hit_energy
        Initial hit energy ``theta`` in units of eps.
    """

    def __init__(self, n_layers: int, n_cond: int, hit_energy: float = 3.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_cond + n_layers, 32), nn.LeakyReLU(0.2), nn.Linear(32, n_layers))
        nn.init.zeros_(self.net[2].weight)
        nn.init.constant_(self.net[2].bias, float(torch.tensor(hit_energy).log()))

    def hit_energy(self, cond: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """``theta`` (N, L) in units of eps, from the conditions and the layer energies (N, L, units of eps)."""
        y = torch.log1p(energy.clamp(min=0.0))
        return self.net(torch.cat([cond.to(y.dtype), y], dim=1)).clamp(-8.0, 8.0).exp()

    def forward(self, cells: torch.Tensor, cond: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """``cells`` (N, L, H, W) non-negative means, ``draws`` (N, 2, L, H, W) standard normal."""
        energy = cells.flatten(2).sum(2)
        theta = self.hit_energy(cond, energy)
        log_g = log_gamma_from_normals(cells / theta[:, :, None, None], draws[:, 0].to(cells.dtype),
                                       draws[:, 1].to(cells.dtype)).flatten(2)
        top = log_g.amax(2, keepdim=True).detach()  # the shares as a softmax: no underflow, they sum to 1
        weights = torch.exp(log_g - top)
        share = (weights / weights.sum(2, keepdim=True)).reshape(cells.shape)
        return share * energy[:, :, None, None]
