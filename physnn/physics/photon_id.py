"""Shower-shape variables for photon identification (photon vs π0 -> two photons), as the experiments use them.

A π0's two photons hit the calorimeter ``~2 m / E x distance`` apart: two
maxima when resolved, one wider shower when they merge. The classic
discriminants, computed here per event from the cells (plain numpy; ATLAS's
names in brackets, Phys. Rev. D 2019, arXiv:1810.05087):

- ``f{l}``: the fraction of the energy in layer ``l`` (f1);
- ``width{l}``: the energy-weighted RMS width of layer ``l`` in cells,
  sqrt(width_x² + width_y²) (w_eta2, w_s,tot);
- ``lambda0_{l}``, ``lambda1_{l}``: the larger and smaller eigenvalue of the
  energy-weighted covariance of the cell positions (cells²) in the 7x7 cells
  around the hottest cell, the long and short axis of the cluster (ALICE's
  λ0², λ1²): two merged photons make an elongated cluster along their decay
  plane, a photon a round one;
- ``eratio{l}``: (E1 - E2) / (E1 + E2) of the two highest local maxima in
  layer ``l`` (Eratio; 1 without a second maximum);
- ``e2nd{l}``: the second local maximum over the layer's energy in positive
  cells (ΔE);
- ``core{l}``: the energy of the 3x3 cells around the hottest cell over the
  7x7 (R_eta), positive cells (these two ratios stay in [0, 1] when noise of
  both signs brings a layer's sum to ~0);
- ``maxima{l}``: the number of local maxima above :data:`MAXIMUM_ENERGY`;
- ``log_energy``: log of the total energy (the response depends on it).

With a strip layer (``strips``, :func:`strip_variables`), the η profile of the
strips around the hottest one (summed over the φ cells within ±1 of it) gives
ATLAS's strip variables: ``strips_eratio`` and ``strips_e2nd`` of its two
highest maxima (Eratio, ΔE over the profile's energy), ``strips_maxima``,
``strips_ws3`` (the energy-weighted width over the 3 strips around the
hottest, w_s3), ``strips_wtot`` (over ±10 strips, w_s,tot) and
``strips_fside`` ((E7 - E3) / E3 around the hottest strip, f_side).

A local maximum is a cell above its 8 neighbours (``scipy.ndimage``).
"""

from __future__ import annotations

import numpy as np

from physnn.errors import ConfigError
from physnn.physics.showers import shower_shapes

#: The smallest cell energy (GeV) that counts as a local maximum: well above the demo calorimeter's noise.
MAXIMUM_ENERGY = 0.1

__all__ = ["MAXIMUM_ENERGY", "local_maxima", "photon_id_variables", "strip_variables"]


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


def _window(layer: np.ndarray, half: int = 3) -> np.ndarray:
    """The (2 half + 1)² cells around each event's hottest cell, (N, 2 half + 1, 2 half + 1) (cells beyond the
    grid count as empty): the cluster the shapes are computed on, so that noise cells far away do not count."""
    n, w = len(layer), layer.shape[2]
    padded = np.pad(layer, ((0, 0), (half, half), (half, half)))
    iy, ix = np.divmod(layer.reshape(n, -1).argmax(1), w)
    offsets = np.arange(-half, half + 1)
    ys = (iy + half)[:, None, None] + offsets[None, :, None]
    xs = (ix + half)[:, None, None] + offsets[None, None, :]
    return padded[np.arange(n)[:, None, None], ys, xs]


def _core_fraction(cluster: np.ndarray) -> np.ndarray:
    """E(3x3) / E(7x7) around the hottest cell, from its 7x7 cluster, of the positive cells (noise of both
    signs can bring the signed 7x7 sum to ~0, and the ratio beyond any bound)."""
    positive = np.clip(cluster, 0.0, None)
    outer = positive.sum((1, 2))
    inner = positive[:, 2:5, 2:5].sum((1, 2))
    return np.divide(inner, outer, out=np.zeros(len(cluster)), where=outer > 0)


def _axes(cluster: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues (larger, smaller) of the energy-weighted covariance of the cell positions in each
    cluster, positive cells as weights (0 for an empty one)."""
    _, h, w = cluster.shape
    weights = np.clip(cluster, 0.0, None)
    total = weights.sum((1, 2))
    safe = np.where(total > 0, total, 1.0)
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    mx, my = (weights * xs).sum((1, 2)) / safe, (weights * ys).sum((1, 2)) / safe
    sxx = (weights * xs**2).sum((1, 2)) / safe - mx**2
    syy = (weights * ys**2).sum((1, 2)) / safe - my**2
    sxy = (weights * xs * ys).sum((1, 2)) / safe - mx * my
    half_trace, root = (sxx + syy) / 2, np.sqrt(np.clip(((sxx - syy) / 2) ** 2 + sxy**2, 0.0, None))
    return np.clip(half_trace + root, 0.0, None), np.clip(half_trace - root, 0.0, None)


def _profile(strips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The η profile (N, rows) of the strips in the φ cells within ±1 of the hottest strip's, and the index of
    the hottest strip of each profile."""
    n, _, cols = strips.shape
    flat_max = strips.reshape(n, -1).argmax(1)
    col = flat_max % cols
    near = np.abs(np.arange(cols)[None, :] - col[:, None]) <= 1  # (N, cols)
    profile = (strips * near[:, None, :]).sum(2)
    return profile, profile.argmax(1)


def _around(profile: np.ndarray, centre: np.ndarray, half: int) -> np.ndarray:
    """The profile's strips within ±``half`` of ``centre`` (N, 2 half + 1), zero beyond the edges."""
    padded = np.pad(profile, ((0, 0), (half, half)))
    return padded[np.arange(len(profile))[:, None], centre[:, None] + np.arange(2 * half + 1)[None, :]]


def _width(window: np.ndarray) -> np.ndarray:
    """The energy-weighted RMS position (in strips) of each window's positive strips (0 when empty)."""
    w = np.clip(window, 0.0, None)
    total = w.sum(1)
    safe = np.where(total > 0, total, 1.0)
    x = np.arange(window.shape[1], dtype=np.float64)[None, :]
    mean = (w * x).sum(1) / safe
    return np.sqrt(np.clip((w * x**2).sum(1) / safe - mean**2, 0.0, None))


def strip_variables(strips: np.ndarray) -> dict[str, np.ndarray]:
    """ATLAS-style strip-layer variables (module docs) of a finely segmented layer (N, rows = η, cols = φ).

    Examples
    --------
    >>> s = np.zeros((1, 16, 3)); s[0, 5, 1], s[0, 9, 1] = 2.0, 1.0   # two photons, 4 strips apart
    >>> v = strip_variables(s)
    >>> round(float(v["strips_eratio"][0]), 3), int(v["strips_maxima"][0])
    (0.333, 2)
    """
    strips = np.asarray(strips, dtype=np.float64)
    if strips.ndim != 3:
        msg = f"strip variables need strips of shape (N, rows, cols), got shape {strips.shape}"
        raise ConfigError(msg)
    profile, centre = _profile(strips)
    count, top = local_maxima(profile[:, :, None])
    pair, positive = top.sum(1), np.clip(profile, 0.0, None).sum(1)
    e3, e7 = (np.clip(_around(profile, centre, h), 0.0, None).sum(1) for h in (1, 3))
    return {"strips_eratio": np.divide(top[:, 0] - top[:, 1], pair, out=np.ones(len(profile)), where=pair > 0),
            "strips_e2nd": np.divide(top[:, 1], positive, out=np.zeros(len(profile)), where=positive > 0),
            "strips_maxima": count.astype(np.float64),
            "strips_ws3": _width(_around(profile, centre, 1)),
            "strips_wtot": _width(_around(profile, centre, 10)),
            "strips_fside": np.divide(e7 - e3, e3, out=np.zeros(len(profile)), where=e3 > 0)}


def photon_id_variables(images: np.ndarray, strips: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The shower-shape variables of the module docs for showers (N, layers, H, W) or (N, H, W), with the
    strip variables of :func:`strip_variables` when ``strips`` (N, rows, cols) are given.

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
        positive = np.clip(layer, 0.0, None).sum((1, 2))  # not the signed sum: noise alone sums to ~0
        out[f"e2nd{l}"] = np.divide(top[:, 1], positive, out=np.zeros(len(layer)), where=positive > 0)
        cluster = _window(layer)
        out[f"core{l}"] = _core_fraction(cluster)
        out[f"lambda0_{l}"], out[f"lambda1_{l}"] = _axes(cluster)
        out[f"maxima{l}"] = count.astype(np.float64)
    if strips is not None:
        out.update(strip_variables(strips))
    return out
