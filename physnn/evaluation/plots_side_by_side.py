"""The error bars of several predictions files per bin of the truth (``physnn evaluate A.root B.root``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from physnn.evaluation.plots_common import plt, save
from physnn.evaluation.summary import bracket

__all__ = ["plot_side_by_side", "side_by_side_figure"]


def side_by_side_figure(rows: Sequence[Mapping[str, Any]], target: str, files: Sequence[str]) -> Any:
    """Per bin of the true ``target``, each interval's mean half width (top) and its coverage with 68%
    Clopper-Pearson bars (bottom), its nominal coverage dashed in its colour; ``files`` numbers the files
    as the table does."""
    from physnn.evaluation.metrics import binomial_interval

    mine = [r for r in rows if r["target"] == target and r.get("bins")]
    unit = next((r.get("unit") for r in mine if r.get("unit")), None)
    fig, (ax, bx) = plt.subplots(2, 1, sharex=True, layout="constrained", figsize=(10, 10), height_ratios=[1, 1])
    markers = "osD^v<>"
    for i, r in enumerate(mine):
        bins = r["bins"]
        lo, hi = (np.array([b["range"][k] for b in bins], float) for k in (0, 1))
        x, xerr = (lo + hi) / 2, (hi - lo) / 2
        n = np.array([b["events"] for b in bins], float)
        cov = np.array([b["coverage"] for b in bins], float)
        low, high = binomial_interval(np.round(cov * n), n)
        style = {"color": f"C{i}", "marker": markers[i % len(markers)], "capsize": 2}
        label = f"[{files.index(r['file']) + 1}] {r['label']}: {r['interval']}"
        ax.errorbar(x, [b["half_width"] for b in bins], xerr=xerr, ls="-", label=label, **style)
        bx.errorbar(x, cov, xerr=xerr, yerr=[np.clip(cov - low, 0, None), np.clip(high - cov, 0, None)], ls="none",
                    **style)
        bx.axhline(r["nominal"], color=f"C{i}", ls="--", lw=1.2)
    ax.set_ylabel(f"mean half width{bracket(unit)}")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=13)
    bx.plot([], [], "k--", lw=1.2, label="nominal coverage (dashed, in each interval's colour)")
    bx.set_ylim(0, 1.05)
    bx.set_ylabel("coverage (true values inside)")
    bx.set_xlabel(f"true {target}{bracket(unit)}")
    bx.legend(loc="lower right", fontsize=13)
    return fig


def plot_side_by_side(rows: Sequence[Mapping[str, Any]], target: str, files: Sequence[str], path: Path) -> Path:
    """:func:`side_by_side_figure` as a PNG."""
    return save(side_by_side_figure(rows, target, files), path)
