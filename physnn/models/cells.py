"""The cell representation a GAN works in, and the readout's zero suppression in it.

Calorimeter cells span four orders of magnitude (a 30 MeV halo cell, a 30 GeV
core cell), so the networks see ``x = log(1 + E / eps)`` with ``eps`` the cell
scale (by default the zero-suppression threshold): both are O(1) numbers.

A readout that suppresses symmetrically (``|E| > cut``, as real calorimeters
do and physnn's simulator does by default) keeps noise of both signs, so a
file holds a few negative cells per event. The representation is then signed,
``x = sign(E) log(1 + |E| / eps)``, the same for positive cells, and the zero
suppression removes ``|x|`` below the cut. For a positive-only readout the
cells are clamped at zero, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class CellCode:
    """``x = sign(E) log(1 + |E| / scale)`` (``signed``) or ``log(1 + max(E, 0) / scale)``.

    Parameters
    ----------
    scale
        ``eps`` in physical units (GeV).
    threshold
        The readout's zero-suppression threshold in physical units (0: none).
    signed
        Whether the readout keeps negative cells (symmetric suppression).
    noise
        The electronic noise per cell (GeV, Gaussian sigma) the files declare, None if they declare none.

    Examples
    --------
    >>> code = CellCode(scale=0.03, threshold=0.03, signed=True)
    >>> [round(v, 4) for v in code.decode(code.encode(torch.tensor([-0.06, 0.0, 3.0]))).tolist()]
    [-0.06, 0.0, 3.0]
    """

    scale: float
    threshold: float
    signed: bool = False
    noise: float | None = None

    def encode(self, phys: torch.Tensor) -> torch.Tensor:
        """Cells in physical units -> the representation."""
        phys = phys.float()
        if not self.signed:
            return torch.log1p(phys.clamp(min=0.0) / self.scale)
        return torch.sign(phys) * torch.log1p(phys.abs() / self.scale)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """The representation -> cells in physical units."""
        return self.in_scale_units(x.float()) * self.scale

    def in_scale_units(self, x: torch.Tensor) -> torch.Tensor:
        """The representation -> cells in units of ``scale`` (differentiable)."""
        if not self.signed:
            return torch.expm1(x)
        return torch.sign(x) * torch.expm1(x.abs())

    def from_scale_units(self, cells: torch.Tensor) -> torch.Tensor:
        """Cells in units of ``scale`` -> the representation (negative cells clamped unless ``signed``)."""
        if not self.signed:
            return torch.log1p(cells.clamp(min=0.0))
        return torch.sign(cells) * torch.log1p(cells.abs())

    @property
    def cut(self) -> float:
        """The threshold in units of ``scale``."""
        return self.threshold / self.scale

    def below_cut(self, cells: torch.Tensor) -> torch.Tensor:
        """Which cells (in units of ``scale``) the readout removes."""
        return (cells.abs() if self.signed else cells) < self.cut

    def suppress(self, x: torch.Tensor) -> torch.Tensor:
        """Zero suppression in the representation, with a straight-through gradient."""
        if self.threshold <= 0:
            return x
        cut = float(np.log1p(self.cut))
        kept = torch.where((x.abs() if self.signed else x) < cut, torch.zeros_like(x), x)
        return x + (kept - x).detach()

    def layer_energies(self, x: torch.Tensor) -> torch.Tensor:
        """The layer energies of images (N, L, H, W) as ``log(1 + E_l / eps)``, (N, L).

        With a signed code, ``sign(E_l) log(1 + |E_l| / eps)``: a layer of noise alone sums to about
        zero with either sign, and flooring it at 0 would make a point mass at ``y = 0`` that a
        density of the layer energies cannot fit. A positive code floors ``E_l`` at 0."""
        total = self.in_scale_units(x.float()).flatten(2).sum(2)
        if self.signed:
            return torch.sign(total) * torch.log1p(total.abs())
        return torch.log1p(total.clamp(min=0.0))

    def readout(self, declared_noise: bool = False) -> dict[str, float | str | None]:
        """The zero suppression as a file's ``physnn_meta["readout"]`` records it, with the declared noise
        when the generator used it (else None: the noise is learnt)."""
        noise = self.noise if declared_noise else None
        return {"noise": noise, "threshold": self.threshold,
                "threshold_sigma": self.threshold / noise if noise else None,
                "suppression": "symmetric" if self.signed else "positive"}

    def describe(self) -> str:
        """One phrase for a run's description."""
        if self.signed:
            return (f"cells sign(E) log(1 + |E|/{self.scale:.3g}), zero suppression of |E| "
                    f"below {self.threshold:.3g}")
        return f"cells log(1 + E/{self.scale:.3g}), zero suppression below {self.threshold:.3g}"


def fit_cell_code(cells: torch.Tensor, readout: dict | None, zero_suppression: str | float,
                  cell_scale: str | float) -> CellCode:
    """The cell code for training images ``cells`` (physical units).

    Parameters
    ----------
    cells
        Training images, any shape.
    readout
        What the files declare in ``physnn_meta["readout"]`` (physnn's simulator records it: the noise and the
        zero suppression), or None.
    zero_suppression
        ``"auto"``: the declared threshold; without one, the smallest non-zero ``|E|`` of the images when
        more than 1% of their cells are exactly zero (a zero-suppressed readout), else 0. Or a value.
    cell_scale
        ``"auto"``: the threshold, else the 5% quantile of the non-zero ``|E|``. Or a value.

    The code is signed when the declared suppression is ``symmetric``, or, without a declaration, when
    the images hold negative cells.
    """
    nonzero = cells[cells != 0].abs()
    if zero_suppression != "auto":
        threshold = float(zero_suppression)
    elif readout is not None:
        threshold = float(readout["threshold"])
    else:
        zero_fraction = 1.0 - nonzero.numel() / max(cells.numel(), 1)
        threshold = float(nonzero.min()) if zero_fraction > 0.01 else 0.0
    if cell_scale != "auto":
        scale = float(cell_scale)
    else:
        scale = threshold if threshold > 0 else float(torch.quantile(nonzero[:1_000_000].double(), 0.05))
    signed = readout.get("suppression") == "symmetric" if readout is not None else bool((cells < 0).any())
    noise = float(readout["noise"]) if readout is not None and readout.get("noise") else None
    return CellCode(scale=scale, threshold=threshold, signed=signed, noise=noise)


def mean_shower(cells: torch.Tensor, cell_scale: float,
                incident: torch.Tensor | None) -> tuple[list[float], list[float]]:
    """The log mean energy fraction of each layer (of E_inc, else in units of eps) and the log mean
    normalised shape of each layer, (L, H, W), floored at 1e-6 of the layer's energy.

    The shape is that of the positive cells: with a symmetric readout a layer of noise alone sums to ~0 or
    less, and normalising the signed cells by it sends the shape to infinity."""
    layer = cells.double().flatten(2).sum(2)  # (N, L)
    if incident is not None:
        mean = (layer / incident.double()[:, None]).mean(0)
    else:
        mean = layer.mean(0) / cell_scale
    positive = cells.double().clamp(min=0.0)
    per_layer = positive.flatten(2).sum(2)
    shape = (positive / per_layer.clamp(min=1e-12)[:, :, None, None]).mean(0)
    shape = shape / shape.flatten(1).sum(1).clamp(min=1e-12)[:, None, None]
    return mean.clamp(min=1e-6).log().tolist(), shape.clamp(min=1e-6).log().flatten().tolist()
