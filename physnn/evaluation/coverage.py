"""Do the error bars hold? Coverage of each interval a predictions file holds, per bin and in/out of domain.

An error bar is trustworthy where its coverage is what it claims: ±1σ covers
68.3% of the true values, a conformal interval at level L covers L. Averaged
over all events a calibrated error bar always looks right (it was fitted to);
the checks that can fail are per bin of the true value and, above all,
separately for the events inside and outside the training domain (the
``in_domain`` branch of ``physnn predict``), where a network extrapolates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from physnn.evaluation.resolution import mean_error

__all__ = ["coverage_by_bin", "coverage_by_domain", "interval_coverage"]


def interval_coverage(true: np.ndarray, pred: np.ndarray, *, std: np.ndarray | None = None,
                      low: np.ndarray | None = None, high: np.ndarray | None = None) -> dict[str, Any]:
    """Bias, the mean σ, ±1σ coverage and pull width, and a conformal interval's coverage and mean half width,
    of one set of events (the figures of what is given)."""
    res = pred - true
    out: dict[str, Any] = {"events": len(true), "bias": float(np.mean(res)) if len(res) else float("nan"),
                           "bias_err": mean_error(float(np.std(res)), len(res)) if len(res) else float("nan")}
    if std is not None and len(res):
        pull = res / np.where(std > 0, std, np.nan)
        out.update(mean_std=float(np.mean(std)), coverage_1sigma=float(np.mean(np.abs(res) <= std)),
                   pull_std=float(np.nanstd(pull)))
    if low is not None and high is not None and len(res):
        out.update(conformal_coverage=float(np.mean((true >= low) & (true <= high))),
                   conformal_half_width=float(np.mean((high - low) / 2)))
    return out


def _subset(arrays: Mapping[str, np.ndarray | None], sel: np.ndarray) -> dict[str, np.ndarray | None]:
    return {k: None if v is None else v[sel] for k, v in arrays.items()}


def coverage_by_domain(true: np.ndarray, pred: np.ndarray, in_domain: np.ndarray,
                       **intervals: np.ndarray | None) -> dict[str, dict[str, Any]]:
    """:func:`interval_coverage` of the events inside (``in``) and outside (``out``) the training domain
    (a part without events is left out)."""
    inside = np.asarray(in_domain).astype(bool)
    parts = {"in": inside, "out": ~inside}
    return {name: interval_coverage(true[sel], pred[sel], **_subset(intervals, sel))
            for name, sel in parts.items() if sel.any()}


def coverage_by_bin(true: np.ndarray, pred: np.ndarray, ranges: Sequence[Sequence[float]],
                    **intervals: np.ndarray | None) -> list[dict[str, Any]]:
    """:func:`interval_coverage` per bin ``[lo, hi)`` of the true value (the last bin includes its top), e.g.
    the resolution's bins (their ``range``)."""
    rows = []
    for i, (lo, hi) in enumerate(ranges):
        sel = (true >= lo) & ((true <= hi) if i == len(ranges) - 1 else (true < hi))
        if sel.any():
            rows.append({"range": [float(lo), float(hi)], **interval_coverage(true[sel], pred[sel],
                                                                            **_subset(intervals, sel))})
    return rows
