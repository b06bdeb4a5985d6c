"""Regression plots: residuals (log scale, outliers counted), predicted vs true, resolution per bin, pulls
and coverage.

Each ``*_figure`` function returns the matplotlib figure; :func:`plot_regression`
writes ``{name}_residuals.png``, ``{name}_resolution.png`` and ``{name}_pulls.png``, and with
``evaluate --by B`` ``{name}_resolution_by_B.png``.
Values are in the target's unit (``figures["unit"]``, from its ``TargetSpec``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np

from physnn.evaluation.plots_common import corner_text, plt, save
from physnn.evaluation.resolution import OUTLIER_CUT, finite_pulls
from physnn.evaluation.resolution_plot import resolution_by_figure, resolution_figure
from physnn.evaluation.summary import bracket, with_unit
from physnn.fmt import with_error


def _outlier_line(figures: Mapping[str, Any]) -> str:
    out = figures.get("outliers")
    if not out:
        return ""
    return f"outliers: {out['count']:,} ({100 * out['fraction']:.2f}%)\n{out['criterion']}"


def residuals_figure(name: str, true: np.ndarray, pred: np.ndarray, figures: Mapping[str, Any]) -> Any:
    """Left: the residuals on a log scale (tails visible), bias, σ and the outliers counted.
    Right: predicted vs true, a 2D histogram with its colour bar."""
    unit = figures.get("unit")
    res = pred - true
    res = res[np.isfinite(res)]
    fig, (ax, bx) = plt.subplots(1, 2, layout="constrained", figsize=(15, 6.5))
    lo, hi = np.percentile(res, [0.05, 99.95]) if res.size else (-1.0, 1.0)
    lo, hi = lo - 0.1 * (hi - lo + 1e-12), hi + 0.1 * (hi - lo + 1e-12)
    beyond = int(np.sum((res < lo) | (res > hi)))
    bins = np.linspace(lo, hi, int(np.clip(2 * np.sqrt(res.size), 10, 100)) + 1)
    counts, _, _ = ax.hist(np.clip(res, lo, hi), bins=bins, histtype="step", lw=2)
    ax.set_yscale("log")
    ax.set_ylim(0.5, max(float(np.max(counts, initial=1)), 1) * 40)  # headroom for the text
    ax.set_xlabel(f"{name} predicted \N{MINUS SIGN} true{bracket(unit)}")
    ax.set_ylabel("events")
    lines = [f"bias {with_unit(with_error(figures['bias'], figures.get('bias_err')), unit)}",
             f"σ (robust) {with_unit(with_error(figures['sigma'], figures.get('sigma_err')), unit)}",
             _outlier_line(figures)]
    if beyond:
        lines.append(f"{beyond:,} beyond the axis, in the edge bins")
    corner_text(ax, "\n".join(line for line in lines if line), fontsize=15)
    ok = np.isfinite(pred) & np.isfinite(true)
    h = bx.hist2d(true[ok], pred[ok], bins=50, cmin=1, norm=mpl.colors.LogNorm())
    fig.colorbar(h[3], ax=bx, label="events")
    lims = [min(true[ok].min(), pred[ok].min()), max(true[ok].max(), pred[ok].max())] if ok.any() else [0, 1]
    bx.plot(lims, lims, "k:", label="predicted = true")
    bx.legend(loc="upper left", fontsize=16)
    bx.set_xlabel(f"true {name}{bracket(unit)}")
    bx.set_ylabel(f"predicted {name}{bracket(unit)}")
    return fig


def pulls_figure(name: str, true: np.ndarray, pred: np.ndarray, std: np.ndarray,
                 figures: Mapping[str, Any]) -> Any:
    """Left: the pulls (log scale) with N(0, 1) and the pulls beyond the outlier cut counted.
    Right: the coverage of ±kσ intervals vs the Gaussian expectation."""
    from scipy.special import erf

    fig, (ax, bx) = plt.subplots(1, 2, layout="constrained", figsize=(15, 6.5))
    pull = finite_pulls(pred - true, std)  # as metrics counts them
    bins = np.linspace(-5, 5, 51)
    ax.hist(np.clip(pull, -5, 5), bins=bins, density=True, histtype="step", lw=2,
            label="pulls (beyond ±5 in the edge bins)")
    x = np.linspace(-5, 5, 200)
    ax.plot(x, np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi), "k:", label="N(0, 1)")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 20)
    ax.set_xlabel(f"pull ({name} predicted \N{MINUS SIGN} true) / σ")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize=14)
    out = figures["outliers"]
    mean = with_error(figures["pull_mean"], figures.get("pull_mean_err"))  # the errors of metrics, as printed
    spread = with_error(figures["pull_std"], figures.get("pull_std_err"))
    corner_text(ax, f"mean {mean}\nstd {spread}\n|pull| > {OUTLIER_CUT:g}: "
                    f"{out['count']:,} ({100 * out['fraction']:.2f}%)", fontsize=15)
    curve = figures["coverage_curve"]
    z = np.array(curve["z"])
    bx.plot(z, erf(z / np.sqrt(2)), "k:", label="Gaussian expectation")
    bx.plot(z, curve["observed"], label="observed")
    bx.set_xlabel("interval half-width [σ]")
    bx.set_ylabel("coverage (fraction of events inside)")
    bx.legend(loc="lower right")
    corner_text(bx, f"±1σ {figures['coverage_1sigma']:.3f}\n±2σ {figures['coverage_2sigma']:.3f}")
    return fig


def plot_regression(name: str, true: np.ndarray, pred: np.ndarray, std: np.ndarray | None,
                    figures: dict[str, Any], out: Path, *, fmt: str = "png") -> list[Path]:
    """Residuals, resolution per bin of the true value (model and baselines, worst bin marked), pulls, coverage;
    ``fmt``: the file format (png, svg or pdf)."""
    out = Path(out)
    paths = [save(residuals_figure(name, true, pred, figures), out / f"{name}_residuals.{fmt}")]
    if figures["bins"]:  # no bin holds enough events when only a handful are judged
        paths.append(save(resolution_figure(name, figures), out / f"{name}_resolution.{fmt}"))
    if any(g.get("bins") for g in ((figures.get("by") or {}).get("groups") or {}).values()):
        by = figures["by"]["name"]
        paths.append(save(resolution_by_figure(name, figures), out / f"{name}_resolution_by_{by}.{fmt}"))
    if std is not None and "pull_std" in figures:
        paths.append(save(pulls_figure(name, true, pred, std, figures), out / f"{name}_pulls.{fmt}"))
    return paths
