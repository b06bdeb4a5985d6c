"""Shower-shape variables for photon identification (photon vs π0 -> two photons), as the experiments use them.

A π0's two photons hit the calorimeter ``~2 m / E x distance`` apart: two
maxima when resolved, one wider shower when they merge. The classic
discriminants, computed here per event from the cells (plain numpy; ATLAS's
names in brackets, Phys. Rev. D 2019, arXiv:1810.05087):

- ``f{l}``: the fraction of the energy in layer ``l`` (f1);
- ``width{l}``: the energy-weighted RMS width of layer ``l`` in cells,
  sqrt(width_x² + width_y²) (w_eta2, w_s,tot);
- ``eratio{l}``: (E1 - E2) / (E1 + E2) of the two highest local maxima in
  layer ``l`` (Eratio; 1 without a second maximum);
- ``e2nd{l}``: the second local maximum over the layer's energy (ΔE);
- ``core{l}``: the energy of the 3x3 cells around the hottest cell over the
  7x7 (R_eta);
- ``maxima{l}``: the number of local maxima above :data:`MAXIMUM_ENERGY`;
- ``log_energy``: log of the total energy (the response depends on it).

A local maximum is a cell above its 8 neighbours (``scipy.ndimage``).
"""

from __future__ import annotations

import numpy as np

from physnn.errors import ConfigError
from physnn.physics.showers import shower_shapes

#: The smallest cell energy (GeV) that counts as a local maximum: well above the demo calorimeter's noise.
MAXIMUM_ENERGY = 0.1

__all__ = ["MAXIMUM_ENERGY", "local_maxima", "photon_id_variables"]


def local_maxima(layer: np.ndarray, min_energy: float = MAXIMUM_ENERGY) -> tuple[np.ndarray, np.ndarray]:
    """The local maxima of a batch of 2D layers (N, H, W): their count above ``min_energy`` and the two
    highest maxima's energies (N, 2), 0 where there is none."""
    from scipy.ndimage import maximum_filter

    x = np.asarray(layer, dtype=np.float64)
    # a cell is a maximum when no neighbour is higher (ties: the plateau counts once per cell)
    neighbours = maximum_filter(x, size=(1, 3, 3), mode="constant", cval=-np.inf)
    peak = (x >= neighbours) & (x > min_energy)
    values = np.where(peak, x, 0.0).reshape(len(x), -1)
    top = -np.sort(-values, axis=1)[:, :2] if values.shape[1] >= 2 else np.zeros((len(x), 2))
    return peak.reshape(len(x), -1).sum(1), top


def _core_fraction(layer: np.ndarray) -> np.ndarray:
    """E(3x3) / E(7x7) around each event's hottest cell (cells beyond the grid count as empty)."""
    n, w = len(layer), layer.shape[2]
    padded = np.pad(layer, ((0, 0), (3, 3), (3, 3)))
    hottest = layer.reshape(n, -1).argmax(1)
    iy, ix = np.divmod(hottest, w)
    rows = np.arange(n)[:, None, None]
    offsets = np.arange(-3, 4)
    ys = (iy + 3)[:, None, None] + offsets[None, :, None]
    xs = (ix + 3)[:, None, None] + offsets[None, None, :]
    window = padded[rows, ys, xs]
    outer = window.sum((1, 2))
    inner = window[:, 2:5, 2:5].sum((1, 2))
    return np.divide(inner, outer, out=np.zeros(n), where=outer > 0)


def photon_id_variables(images: np.ndarray) -> dict[str, np.ndarray]:
    """The shower-shape variables of the module docs for showers (N, layers, H, W) or (N, H, W).

    Returns
    -------
    dict
        One (N,) float64 array per variable, finite everywhere (an empty layer gives fraction, width and
        core 0, eratio 1), ready for a classifier.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        msg = f"shower-shape variables need (N, layers, H, W) or (N, H, W) images, got shape {images.shape}"
        raise ConfigError(msg)
    shapes = shower_shapes(images)
    total = shapes["energy"].sum(1)
    safe_total = np.where(total > 0, total, 1.0)
    out: dict[str, np.ndarray] = {"log_energy": np.log(np.clip(total, 1e-3, None))}
    for l in range(images.shape[1]):  # noqa: E741
        layer = images[:, l]
        energy = shapes["energy"][:, l]
        count, top = local_maxima(layer)
        out[f"f{l}"] = energy / safe_total
        out[f"width{l}"] = np.nan_to_num(np.hypot(shapes["width_x"][:, l], shapes["width_y"][:, l]))
        pair = top.sum(1)
        out[f"eratio{l}"] = np.divide(top[:, 0] - top[:, 1], pair, out=np.ones(len(layer)), where=pair > 0)
        out[f"e2nd{l}"] = np.divide(top[:, 1], energy, out=np.zeros(len(layer)), where=energy > 0)
        out[f"core{l}"] = _core_fraction(layer)
        out[f"maxima{l}"] = count.astype(np.float64)
    return out
