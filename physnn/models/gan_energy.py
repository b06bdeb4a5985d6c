"""The layer energies of a generated shower: a conditional density fitted by maximum likelihood.

A GAN fast simulator (:mod:`physnn.models.gan`) with ``energy_model: mixture``
takes the energy of each layer from :class:`LayerEnergyDensity` and generates
the shapes given them, the split CaloFlow makes: the energy response, its
resolution and the correlations between layers are fitted as a density, the
adversarial game is about shapes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerEnergyDensity"]


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
