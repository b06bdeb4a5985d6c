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

__all__ = ["CellFluctuations", "SpotFluctuations", "gamma_from_normals", "log_gamma_from_normals",
           "poisson_from_normals"]

#: smallest shape parameter used: a cell below it receives a hit with probability ~alpha anyway
MIN_ALPHA = 1e-6
#: spot counts of a smaller mean are drawn exactly (inverse Poisson CDF), larger ones as a normal
EXACT_BELOW = 3.0
#: terms of the inverse CDF: a count of mean 3 reaches 10 with probability 1e-3
TERMS = 10


def log_gamma_from_normals(alpha: torch.Tensor, n1: torch.Tensor, n2: torch.Tensor) -> torch.Tensor:
    """The logarithm of ``Gamma(alpha, 1)`` variates from two standard-normal draws of ``alpha``'s shape.

    ``Gamma(alpha) = Gamma(alpha + 1) U^(1 / alpha)`` (Marsaglia and Tsang's boost), with
    ``Gamma(a) ~ a (1 - 1 / (9 a) + n1 / (3 sqrt a))^3`` (Wilson and Hilferty) and ``U = Phi(n2)``. On 2M
    draws the mean and variance are within 1% of the exact ones, the skewness within 5%, and the fraction of
    draws above ``alpha / 10`` (cells that receive a hit) within 1%, for ``alpha`` from 0.01 to 100. In logs,
    because ``U^(1 / alpha)`` underflows float32 for the small ``alpha`` of a cell far from the core; ``n2`` is
    clipped to +-5 (a change of 3e-7 in the distribution), and ``log U`` is ``log(Phi(n2))``, not torch's
    ``log_ndtr`` (10x slower on CPUs, and within 0.3% of it there), as ONNX Runtime computes it too.
    """
    alpha = alpha.clamp(min=MIN_ALPHA)
    a = alpha + 1.0
    base = (1.0 - 1.0 / (9.0 * a) + n1 / (3.0 * a.sqrt())).clamp(min=1e-10)
    return a.log() + 3.0 * base.log() + torch.special.ndtr(n2.clamp(-5.0, 5.0)).log() / alpha


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


def poisson_from_normals(rate: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Poisson counts of mean ``rate`` from standard-normal draws ``n`` of its shape, with a straight-through
    gradient (that of the mean).

    Below :data:`EXACT_BELOW` the count is the inverse Poisson CDF at ``Phi(n)`` (exact up to :data:`TERMS`
    terms), above it ``rate + sqrt(rate) n`` (not rounded: the Gamma spot energies smear neighbouring counts
    into each other there). Both are increasing in ``n``, so one draw orders the counts of every rate.

    Examples
    --------
    >>> n = torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    >>> c = poisson_from_normals(torch.full((200_000,), 0.3), n)
    >>> round(float((c == 0).float().mean()), 2), round(float(c.mean()), 2)  # exp(-0.3) = 0.74
    (0.74, 0.3)
    """
    with torch.no_grad():  # count >= j + 1 where Phi(n) e^rate > sum_{i <= j} rate^i / i!
        small = rate.clamp(0.0, EXACT_BELOW)
        v = torch.special.ndtr(n.to(rate.dtype)) * torch.exp(small)
        power, partial = torch.ones_like(small), torch.ones_like(small)
        count = (v > partial).to(rate.dtype)
        floor = small.clamp(min=1e-2)  # no float32 denormals (slow on CPUs); a change below 5e-5 per cell
        for j in range(1, TERMS):
            power.mul_(floor).mul_(1.0 / j)
            partial.add_(power)
            count.add_(v > partial)
    large = (rate + rate.clamp(min=EXACT_BELOW).sqrt() * n.to(rate.dtype)).clamp(min=0.0)  # no 0/0 at rate 0
    return torch.where(rate < EXACT_BELOW, count + (rate - rate.detach()), large)


def _shared(log_g: torch.Tensor, energy: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Each layer's ``energy`` (N, L) shared among its cells in proportion to the variates ``exp(log_g)``
    (N, L, cells), as a softmax of ``log_g``: no underflow, the shares sum to 1; reshaped to ``shape``."""
    top = log_g.amax(2, keepdim=True).detach()
    weights = torch.exp(log_g - top)
    return (weights / weights.sum(2, keepdim=True)).reshape(shape) * energy[:, :, None, None]


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
    outputs
        Parameters per layer the small network gives (``theta``; :class:`SpotFluctuations` adds the spot shape).
    """

    #: standard-normal draws per cell
    draws = 2

    def __init__(self, n_layers: int, n_cond: int, hit_energy: float = 3.0, outputs: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_cond + n_layers, 32), nn.LeakyReLU(0.2),
                                 nn.Linear(32, outputs * n_layers))
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
        return _shared(log_g, energy, cells.shape)


class SpotFluctuations(CellFluctuations):
    """Mean cells -> cells made of whole spots, as a sampling calorimeter's (and physnn's simulator's) are.

    :class:`CellFluctuations` gives a soft cell a continuous Gamma energy, most often far below one hit; a
    simulated cell far from the core holds no spot or one, and one spot carries the hit energy ``theta`` (the
    peak at ~0.1 GeV in the soft cells of physnn's simulator). Here cell ``i`` receives
    ``c_i ~ Poisson(mu_i / theta)`` spots (:func:`poisson_from_normals`), each of a ``Gamma(k)`` energy, so its
    share of the layer is a Dirichlet draw with concentration ``c_i k`` (a layer with energy but no spot keeps
    one, in a cell drawn in proportion to ``mu_i``). ``theta`` and the spot shape ``k`` (10 for an
    electromagnetic sampling term of 0.1 / sqrt(GeV) and 0.1 GeV spots, below 1 for a hadronic one) are learnt
    per layer from the conditions and the layer energies. Three draws per cell: the count, then the Gamma's two.
    """

    draws = 3

    def __init__(self, n_layers: int, n_cond: int, hit_energy: float = 3.0, spot_shape: float = 3.0) -> None:
        super().__init__(n_layers, n_cond, hit_energy, outputs=2)
        with torch.no_grad():
            self.net[2].bias[n_layers:] = float(torch.tensor(spot_shape).log())

    def forward(self, cells: torch.Tensor, cond: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """``cells`` (N, L, H, W) non-negative means, ``draws`` (N, 3, L, H, W) standard normal."""
        energy = cells.flatten(2).sum(2)
        theta, shape = self.hit_energy(cond, energy).chunk(2, dim=1)
        rate = (cells / theta[:, :, None, None]).flatten(2)
        count = poisson_from_normals(rate, draws[:, 0].flatten(2))
        u = torch.special.ndtr(draws[:, 0].flatten(2)).clamp(1e-7, 1.0 - 1e-7)
        pick = rate.clamp(min=1e-30).log() - (-u.log()).log()  # a Gumbel draw: the cell of the lone spot
        lone = (pick == pick.amax(2, keepdim=True)) & (count.detach().sum(2, keepdim=True) <= 0)
        count = count + lone.to(count.dtype)
        empty = count.detach() <= 0
        log_g = log_gamma_from_normals(count * shape[:, :, None], draws[:, 1].flatten(2),
                                       draws[:, 2].flatten(2)).masked_fill(empty, -1e30)
        # a cell without a spot passes its gradient straight through (value 0), as the zero suppression does, so
        # that the critic can ask for a spot in a particular empty cell
        return _shared(log_g, energy, cells.shape) + (cells - cells.detach()) * empty.reshape(cells.shape)
