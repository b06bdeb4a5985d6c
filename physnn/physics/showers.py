"""Shower physics shared by the GAN, its training and the evaluation: shapes, features, separation power.

- :func:`shower_shapes`: per layer, the energy and the energy-weighted
  centroid and width in x and y (cell units);
- :func:`high_level_features`: the CaloChallenge high-level features of a
  batch of showers (Krause et al., arXiv:2410.21611): total deposited over
  incident energy, energy per layer, centroids, widths and the fraction of
  non-zero cells per layer, the hottest cell;
- :func:`separation_power`: ``S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i)``
  of two unit-normalised histograms (0: identical, 1: disjoint).

Plain numpy on ``(N, layers, H, W)`` or ``(N, H, W)`` cell energies; nothing
here knows models, training or files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from physnn.errors import ConfigError


# -- features ---------------------------------------------------------------
def shower_shapes(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per event and layer: ``energy`` (all cells) and, for 2D layers, the centroid and width in x and y.

    Centroids and widths (cell units, from the grid's corner) use the
    non-negative cells as weights; a layer without positive energy gives NaN.
    """
    n, layers = images.shape[:2]
    out = {"energy": images.reshape(n, layers, -1).sum(-1)}
    if images.ndim != 4:
        return out
    w = np.clip(images, 0.0, None).astype(np.float64)
    total = w.sum(axis=(2, 3))
    safe = np.where(total > 0, total, np.nan)
    ys = np.arange(images.shape[2], dtype=np.float64)[None, None, :, None]
    xs = np.arange(images.shape[3], dtype=np.float64)[None, None, None, :]
    cx = (w * xs).sum(axis=(2, 3)) / safe
    cy = (w * ys).sum(axis=(2, 3)) / safe
    out["centroid_x"], out["centroid_y"] = cx, cy
    out["width_x"] = np.sqrt(np.clip((w * xs**2).sum(axis=(2, 3)) / safe - cx**2, 0.0, None))
    out["width_y"] = np.sqrt(np.clip((w * ys**2).sum(axis=(2, 3)) / safe - cy**2, 0.0, None))
    return out


def high_level_features(images: np.ndarray, incident: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The CaloChallenge high-level features of a batch of showers.

    Parameters
    ----------
    images
        ``(N, layers, H, W)`` or ``(N, H, W)`` cell energies.
    incident
        ``(N,)`` incident energies; without them ``e_total`` replaces ``e_ratio``.

    Returns
    -------
    dict
        ``e_ratio`` (or ``e_total``), and per layer ``l``: ``e_layer{l}``,
        ``centroid_x{l}``, ``centroid_y{l}``, ``width_x{l}``, ``width_y{l}``
        (NaN for an empty layer), ``sparsity{l}``; and ``e_max``, the hottest
        cell's energy. Each an ``(N,)`` float64 array.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        msg = f"shower features need (N, layers, H, W) or (N, H, W) images, got shape {images.shape}"
        raise ConfigError(msg)
    n, layers = images.shape[:2]
    shapes = shower_shapes(images)
    total = shapes["energy"].sum(1)
    out: dict[str, np.ndarray] = {}
    if incident is not None:
        out["e_ratio"] = total / np.asarray(incident, dtype=np.float64)
    else:
        out["e_total"] = total.astype(np.float64)
    nonzero = (images.reshape(n, layers, -1) != 0).mean(-1)  # cells read out (negative noise cells too)
    for layer in range(layers):
        out[f"e_layer{layer}"] = shapes["energy"][:, layer].astype(np.float64)
        for key in ("centroid_x", "centroid_y", "width_x", "width_y"):
            out[f"{key}{layer}"] = shapes[key][:, layer]
        out[f"sparsity{layer}"] = nonzero[:, layer].astype(np.float64)
    out["e_max"] = images.reshape(n, -1).max(1).astype(np.float64) if n else np.zeros(0)
    return out


# -- separation power ---------------------------------------------------------
def feature_bins(reference: np.ndarray, candidate: np.ndarray, bins: int = 50) -> np.ndarray:
    """Common bin edges: ``bins`` equal bins over the 0.1-99.9 % range of both samples (NaNs ignored).

    A discrete feature (its values on a grid, e.g. the fraction of 576 cells
    hit, k/576) gets bins of whole grid steps centred on the values, so that
    no bin holds one value more than its neighbour (a comb of full and empty
    bins that would look like a disagreement).
    """
    both = np.concatenate([reference[np.isfinite(reference)], candidate[np.isfinite(candidate)]])
    if both.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = np.quantile(both, [0.001, 0.999])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    step = _grid_step(both)
    if step is not None and (hi - lo) / step < 50 * bins:
        width = max(1, math.ceil((hi - lo) / bins / step)) * step
        first = np.floor(lo / step) * step - step / 2
        return first + width * np.arange(math.ceil((hi + step / 2 - first) / width) + 1)
    return np.linspace(lo, hi, bins + 1)


def _grid_step(values: np.ndarray) -> float | None:
    """The step of the grid all ``values`` lie on (their smallest gap, every gap a whole multiple of it), else
    None."""
    distinct = np.unique(values)
    if distinct.size < 3 or distinct.size > 0.5 * values.size:
        return None
    gaps = np.diff(distinct)
    step = float(gaps.min())
    if step <= 0 or not np.allclose(gaps / step, np.round(gaps / step), atol=1e-3):
        return None
    return step


def normalized_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Unit-normalised histogram; under- and overflow are counted in the first and last bins."""
    values = values[np.isfinite(values)]
    counts = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0].astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def separation_power(reference: np.ndarray, candidate: np.ndarray, edges: np.ndarray | int = 50) -> float:
    """``1/2 sum (h1 - h2)^2 / (h1 + h2)`` of the unit-normalised histograms (0: identical, 1: disjoint).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> round(separation_power(rng.normal(size=100_000), rng.normal(size=100_000)), 3)
    0.0
    >>> separation_power(np.zeros(10), np.ones(10), edges=np.array([-0.5, 0.5, 1.5]))
    1.0
    """
    if isinstance(edges, int):
        edges = feature_bins(reference, candidate, edges)
    h1, h2 = normalized_histogram(reference, edges), normalized_histogram(candidate, edges)
    total = h1 + h2
    ok = total > 0
    return float(0.5 * np.sum((h1[ok] - h2[ok]) ** 2 / total[ok]))


def separation_powers(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
                      bins: int = 50) -> dict[str, float]:
    """The separation power of every feature the two samples share."""
    return {k: separation_power(reference[k], candidate[k], bins) for k in reference if k in candidate}
