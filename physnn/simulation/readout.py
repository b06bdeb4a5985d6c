"""The simulated calorimeter's electronics: noise, zero suppression and an optional strip layer.

Every cell gets Gaussian noise of ``noise`` GeV and is zero-suppressed at the
threshold (``symmetric``: cells with ``|E|`` below it go, ``positive``: cells
below it go). With :class:`Strips`, one layer is also read out on a finer
grid; its strips get the same noise and suppression, and that layer of the
image becomes the sum of its strips, as a coarser readout of the same
detector would be, zero-suppressed at the same threshold as every cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from physnn.config import Strict

__all__ = ["Electronics", "Strips", "fine_index", "read_out"]


class Strips(Strict):
    """A finely segmented layer (the experiments' η strips for photon/π0 separation).

    Attributes
    ----------
    layer
        Which layer of ``layers_x0`` is segmented finely (0: the first).
    eta
        Strips per cell along η (the image's rows).
    phi
        Strips per cell along φ (the image's columns).
    """

    layer: int = Field(default=0, ge=0)
    eta: int = Field(default=4, ge=1)
    phi: int = Field(default=1, ge=1)


def fine_index(position: np.ndarray, cell_size: float, cells: int, factor: int) -> np.ndarray:
    """The index of the strip (``factor`` per cell of ``cell_size`` cm, ``cells`` cells centred on 0) holding
    each ``position`` (cm); outside the grid gives an index below 0 or at least ``cells * factor``."""
    return np.floor(position / (cell_size / factor) + cells * factor / 2.0).astype(np.int64)


@dataclass(frozen=True)
class Electronics:
    """What the readout does to every cell: Gaussian ``noise`` (GeV), zero suppression at ``cut`` (GeV) of the
    ``suppression`` kind, and the optional strip layer."""

    noise: float
    cut: float
    suppression: Literal["symmetric", "positive"]
    strips: Strips | None = None

    def declared(self) -> dict[str, Any]:
        """As recorded in a file's ``physnn_meta["readout"]``: the noise σ per cell (GeV), the zero-suppression
        threshold (GeV and in units of σ) and which cells it removes; with strips, their layer and segmentation,
        and the noise σ of that layer's cells, sums of ``eta x phi`` strips (suppressed at the same threshold)."""
        out: dict[str, Any] = {"noise": self.noise, "threshold": self.cut,
                               "threshold_sigma": self.cut / self.noise if self.noise > 0 else None,
                               "suppression": self.suppression}
        if self.strips is not None:
            s = self.strips
            out["strips"] = {"layer": s.layer, "eta": s.eta, "phi": s.phi,
                             "layer_noise": self.noise * (s.eta * s.phi) ** 0.5}
        return out


def _suppress(cells: np.ndarray, cfg: Electronics, rng: np.random.Generator) -> np.ndarray:
    """Noise on every cell, then zero suppression (in place; returns ``cells``)."""
    if cfg.noise > 0:
        cells += rng.standard_normal(size=cells.shape, dtype=np.float32) * np.float32(cfg.noise)
    cells[(np.abs(cells) if cfg.suppression == "symmetric" else cells) < cfg.cut] = 0.0
    return cells


def read_out(deposits: dict[str, np.ndarray], cfg: Electronics, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The branches a detector writes from the true deposits (``image`` and, with strips, ``strips``).

    The image's noise is drawn first, so the layers without strips are the same with and without them.
    """
    image = _suppress(deposits["image"], cfg, rng)
    if cfg.strips is None:
        return {"image": image}
    strips = _suppress(deposits["strips"], cfg, rng)
    n, _, height, width = image.shape
    s = cfg.strips
    layer = strips.reshape(n, height, s.eta, width, s.phi).sum(axis=(2, 4))
    layer[(np.abs(layer) if cfg.suppression == "symmetric" else layer) < cfg.cut] = 0.0  # every cell obeys the cut
    image[:, s.layer] = layer
    return {"image": image, "strips": strips}
