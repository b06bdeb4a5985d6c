"""The resolution plot: model and baselines per bin of the true value, the worst bin marked.

Each point spans its bin (horizontal bar) at the bin's mean true value, with
the statistical error of the robust σ. Energies (``kind: energy``) show σ/E
and, for the model and each baseline, the a/√E ⊕ b curve only when its fit
was accepted (otherwise the legend says it was rejected, with its χ²/ndf);
other targets (``mass``, ``generic``) show σ in their unit, never a √E curve. With baselines, a lower
panel shows the model's σ over each baseline's (above 1: the model is worse).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter

from physnn.evaluation.plots_common import plt
from physnn.evaluation.summary import bracket, fit_terms, fmt_range, num

MARKERS = ("s", "^", "v", "D", "P")


def _bars(rows: list[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres (mean true value) and the horizontal bars to the bin edges."""
    x = np.array([r["true_mean"] for r in rows])
    lo, hi = np.array([r["range"] for r in rows]).T
    return x, np.vstack([x - lo, hi - x])


def _fit_curve(ax: Any, fit: Mapping[str, Any] | None, rows: list[Mapping[str, Any]], who: str,
               color: Any) -> str | None:
    """Draw an accepted σ/E fit of ``who`` (the model or a baseline) in its colour; for a rejected one draw
    nothing and return the note that says so."""
    if not fit:
        return None
    quality = f"χ²/ndf = {num(fit['chi2_ndf'], 2)}"
    if not fit["accepted"]:
        return f"{who}: fit a/√E $\\oplus$ b rejected: {quality}"
    lo, hi = rows[0]["range"][0], rows[-1]["range"][1]
    e = np.geomspace(max(lo, 1e-9), hi, 200)
    terms = fit_terms(fit).replace("⊕", r"$\oplus$")
    ax.plot(e, np.sqrt(fit["stochastic"] ** 2 / e + fit["constant"] ** 2), color=color, lw=1,
            ls="-" if who == "model" else "--", label=f"{who} fit {terms}, {quality}")
    return None


def _worst(ax: Any, r: Mapping[str, Any], unit: str | None) -> None:
    """Shade the worst bin; the legend says why it is the worst."""
    worst = r.get("worst_bin")
    if not worst:
        return
    why = f"{num(worst['ratio'], 2)}× {worst['reference']}" if "reference" in worst else worst["reason"]
    ax.axvspan(*worst["range"], color="tab:red", alpha=0.12, lw=0,
               label=f"worst bin {fmt_range(*worst['range'], unit)}: {why}")


def _plain_log(axis: Any, minor: tuple[int, ...] = (2, 3, 5)) -> None:
    """A log axis labelled 0.05, 0.1, 0.2 rather than 5×10⁻², minor ticks with these leading digits labelled."""
    def lead(v: float) -> int:
        return round(v / 10 ** np.floor(np.log10(v))) if v > 0 else 0

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if lead(v) in minor else ""))


def _ratio_panel(bx: Any, rows: list[Mapping[str, Any]], labels: list[str], key: str) -> None:
    """Model σ over each baseline's σ per bin, with its error."""
    x, xerr = _bars(rows)
    model = np.array([row[key] for row in rows])
    model_err = np.array([row[f"{key}_err"] for row in rows])
    ratios = []
    for marker, label in zip(MARKERS, labels, strict=False):
        base = np.array([row["baselines"][label][key] for row in rows])
        base_err = np.array([row["baselines"][label][f"{key}_err"] for row in rows])
        with np.errstate(divide="ignore", invalid="ignore"):  # a perfect baseline (σ = 0): no ratio drawn
            ratio = np.where(base > 0, model / base, np.nan)
            error = ratio * np.hypot(model_err / model, base_err / base)
        bx.errorbar(x, ratio, xerr=xerr, yerr=np.nan_to_num(error), fmt=marker, label=label)
        ratios.append(ratio)
    bx.axhline(1.0, color="grey", ls=":")
    bx.set_ylabel("model / baseline", fontsize=14)
    values = np.concatenate(ratios)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and max(values.max(), 1) / min(values.min(), 1) > 5:
        bx.set_yscale("log")
        _plain_log(bx.yaxis, minor=(2, 5))


def resolution_figure(name: str, r: Mapping[str, Any]) -> Any:
    """The resolution per bin of true ``name`` (a regression figure of :func:`physnn.evaluation.metrics.regression`).

    Returns the matplotlib figure; its first axes hold the resolution, the
    second (with baselines) the model / baseline ratio.
    """
    unit, key = r.get("unit"), r["key"]
    rows, labels = list(r["bins"]), list(r.get("baselines") or {})
    fig, axes = plt.subplots(2 if labels else 1, 1, sharex=True, squeeze=False, layout="constrained",
                             figsize=(13, 8.5 if labels else 6.5), height_ratios=[3, 1] if labels else None)
    ax = axes[0, 0]
    x, xerr = _bars(rows)
    ax.errorbar(x, [row[key] for row in rows], xerr=xerr, yerr=[row[f"{key}_err"] for row in rows], fmt="o",
                color="black", label="model")
    notes = [_fit_curve(ax, r.get("fit"), rows, "model", "black")]
    for marker, label in zip(MARKERS, labels, strict=False):
        drawn = ax.errorbar(x, [row["baselines"][label][key] for row in rows], xerr=xerr,
                            yerr=[row["baselines"][label][f"{key}_err"] for row in rows], fmt=marker, label=label)
        notes.append(_fit_curve(ax, (r["baselines"].get(label) or {}).get("fit"), rows, label,
                                drawn[0].get_color()))
    note = "\n".join(n for n in notes if n) or None
    _worst(ax, r, unit)
    values = np.array([row[key] for row in rows] + [row["baselines"][lb][key] for row in rows for lb in labels])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and values.max() / values.min() > 8:
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
    ax.set_ylabel("relative resolution σ/E" if key == "sigma_rel" else f"resolution σ{bracket(unit)}")
    # beside the plot, never over the points
    legend = ax.legend(fontsize=14, loc="upper left", bbox_to_anchor=(1.02, 1.0), title=note, title_fontsize=14,
                       alignment="left")
    if note:
        legend.get_title().set_color("tab:red")
    if labels:
        _ratio_panel(axes[1, 0], rows, labels, key)
    axes[-1, 0].set_xlabel(f"true {name}{bracket(unit)}")
    return fig


def resolution_by_figure(name: str, r: Mapping[str, Any]) -> Any:
    """The resolution per bin of true ``name`` for each group of ``r["by"]`` (``evaluate --by``): the model
    (filled markers, solid line) and each baseline (open markers, dashed) in the group's colour, so a type
    for which the model is worse than the baseline shows, whatever the overall figure says."""
    from physnn.evaluation.plots_common import class_names

    unit, key, by = r.get("unit"), r["key"], r["by"]
    groups = {value: g for value, g in by["groups"].items() if g.get("bins")}
    names = class_names(list(groups), by["name"])
    fig, ax = plt.subplots(layout="constrained", figsize=(13, 6.5))
    for g, label, color in zip(groups.values(), names, plt.rcParams["axes.prop_cycle"].by_key()["color"],
                                        strict=False):
        x, xerr = _bars(g["bins"])
        ax.errorbar(x, [row[key] for row in g["bins"]], xerr=xerr, yerr=[row[f"{key}_err"] for row in g["bins"]],
                    fmt="o-", color=color, label=f"{label}: model")
        for marker, base in zip(MARKERS, g.get("baselines") or {}, strict=False):
            ax.errorbar(x, [row["baselines"][base][key] for row in g["bins"]], xerr=xerr,
                        yerr=[row["baselines"][base][f"{key}_err"] for row in g["bins"]], fmt=marker, ls="--",
                        color=color, mfc="white", label=f"{label}: {base}")
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    ax.set_ylabel("relative resolution σ/E" if key == "sigma_rel" else f"resolution σ{bracket(unit)}")
    ax.set_xlabel(f"true {name}{bracket(unit)}")
    ax.legend(fontsize=14, loc="upper left", bbox_to_anchor=(1.02, 1.0), title=f"per {by['name']}",
              title_fontsize=14, alignment="left")
    return fig
