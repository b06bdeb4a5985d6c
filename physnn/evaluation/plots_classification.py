"""Classification plots: ROC (linear, log background efficiency, background rejection), calibration,
confusion matrix and MC-dropout scores.

Each ``*_figure`` function returns the matplotlib figure; each ``plot_*``
function draws it into a PNG. Classes are named (``class_names``: the names the data config
gave them, else e- and pi+ for PDG ids 11 and 211); the callers pass the background's name and
the signal's, and the signal's probability as the score (the data config's ``signal``, else class 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np

from physnn.evaluation.plots_common import colorbar, plt, reference_x, save

BAND = "bootstrap 68% band"


def _names(classes: Sequence[str] | None, k: int = 2) -> list[str]:
    if classes is not None:
        return [str(c) for c in classes]
    return ["background", "signal"] if k == 2 else [f"class {i}" for i in range(k)]


def _roc_floor(roc: Mapping[str, Any], fpr: np.ndarray) -> float:
    """The smallest background efficiency the events can measure: 1 / background events."""
    n = roc.get("n_background")
    positive = fpr[fpr > 0]
    floor = 1.0 / n if n else (positive.min() if positive.size else 1e-3)
    return float(max(floor, positive.min() if positive.size else floor))


def _zoom_low(values: np.ndarray) -> float:
    """Where an efficiency axis starts: 0, or just below the smallest value drawn when that is above 0.5."""
    low = float(np.min(values))
    return 0.0 if low < 0.5 else min(low - 0.05 * (1 - low), 0.99)  # a perfect curve (all 1) still gets a range


def roc_figure(roc: Mapping[str, Any], *, name: str = "classifier", classes: Sequence[str] | None = None) -> Any:
    """The ROC three ways: linear; with a log background-efficiency axis (readable at AUC 0.9999); and the
    HEP form, background rejection 1/ε_B (log) vs signal efficiency. The bootstrap band in each.

    ``classes``: the names of the background and of the signal (the score's class), in this order.
    """
    bkg, sig = _names(classes)[:2]
    fpr, tpr = np.asarray(roc["fpr"], float), np.asarray(roc["tpr"], float)
    low = np.asarray(roc.get("tpr_low", tpr), float)
    high = np.asarray(roc.get("tpr_high", tpr), float)
    band = "tpr_low" in roc
    auc = f"AUC = {roc['auc']:.4f}"
    if "auc_low" in roc:
        auc += f" [{roc['auc_low']:.4f}, {roc['auc_high']:.4f}]"
    floor = _roc_floor(roc, fpr)
    fig, (ax, bx, cx) = plt.subplots(1, 3, layout="constrained", figsize=(20, 6.8))
    for axis, log in ((ax, False), (bx, True)):
        if band:
            axis.fill_between(fpr, low, high, color="tab:orange", alpha=0.45, lw=0, label=BAND)
        axis.plot(fpr, tpr, color="tab:blue", lw=1.5, label=f"{name}: {auc}")
        diagonal = reference_x(floor if log else 0.0, 1.0, log=log)  # dense: a straight line on a log axis
        axis.plot(diagonal, diagonal, "k:", label="random")  # is a curve
        axis.set_xlabel(f"{bkg} efficiency ε$_B$")
        axis.set_ylabel(f"{sig} efficiency ε$_S$")
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=12)
    seen = fpr >= floor
    bx.set_xscale("log")
    bottom = _zoom_low(low[seen]) if seen.any() else 0.0
    bx.set(xlim=(floor, 1), ylim=(bottom, 1.0 + 0.02 * (1 - bottom)))
    bx.set_title("zoom: log ε$_B$", fontsize=13)
    ok = seen & (fpr > 0)
    rejection = 1 / fpr[ok]
    if band:
        cx.fill_betweenx(rejection, low[ok], high[ok], color="tab:orange", alpha=0.45, lw=0, label=BAND)
    cx.plot(tpr[ok], rejection, color="tab:blue", lw=1.5, label=name)
    left = _zoom_low(low[ok]) if ok.any() else 0.0  # a near-perfect classifier lives at ε_S near 1
    eff = reference_x(max(floor, 0.01, left), 1.0)
    cx.plot(eff, 1 / eff, "k:", label="random")
    cx.set_yscale("log")
    cx.set_xlim(left, 1.0 + 0.02 * (1 - left))
    cx.set_xlabel(f"{sig} efficiency ε$_S$")
    cx.set_ylabel(f"{bkg} rejection 1/ε$_B$")  # short: a long label is cut at the figure's edge
    cx.legend(loc="best", fontsize=12)
    fig.suptitle(f"signal: {sig} (the score is P({sig})); background: {bkg}", fontsize=18)
    return fig


def plot_roc(roc: dict[str, Any], path: Path, *, name: str = "classifier",
             classes: Sequence[str] | None = None) -> Path:
    """ROC curve with its bootstrap band, zoomed on small background efficiencies, and the background
    rejection vs signal efficiency (:func:`roc_figure`)."""
    return save(roc_figure(roc, name=name, classes=classes), path)


def _calibration_labels(signal: str | None) -> tuple[str, str]:
    if signal is None:  # several classes: the top class's probability vs the fraction predicted right
        return "predicted probability of the predicted class", "fraction predicted correctly"
    return f"predicted probability P({signal})", f"observed fraction of {signal}"


def calibration_figure(cal: Mapping[str, Any], *, signal: str | None = None) -> Any:
    """Reliability diagram with 68% Clopper-Pearson error bars, and the events per bin below (log).

    ``signal``: the class whose probability is judged (two classes); None: the predicted class's.
    """
    from physnn.evaluation.metrics import binomial_interval

    x, obs = np.asarray(cal["mean_predicted"], float), np.asarray(cal["observed"], float)
    count = np.asarray(cal["count"], float)
    if "observed_low" in cal:
        low, high = np.asarray(cal["observed_low"]), np.asarray(cal["observed_high"])
    else:  # a metrics.json of an older physnn
        low, high = binomial_interval(np.round(obs * count), count)
    xlabel, ylabel = _calibration_labels(signal)
    fig, (ax, bx) = plt.subplots(2, 1, sharex=True, layout="constrained", figsize=(8.5, 9.5),
                                 height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    ax.errorbar(x, obs, yerr=[np.clip(obs - low, 0, None), np.clip(high - obs, 0, None)], fmt="o", capsize=3,
                label=f"observed (68% Clopper-Pearson), ECE = {cal['ece']:.4f}")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    fig.legend(loc="outside upper center", fontsize=14, ncols=1)  # above the panel, off the points
    ranges = np.asarray(cal.get("bin_range") or [[v - 0.05, v + 0.05] for v in x], float)
    bx.bar(ranges[:, 0], count, width=ranges[:, 1] - ranges[:, 0], align="edge", color="tab:blue", alpha=0.5)
    for xi, n in zip(x, count, strict=True):
        bx.text(xi, n, f"{n:.0f}", ha="center", va="bottom", fontsize=13)
    bx.set_yscale("log")
    bx.set_ylim(0.5, max(count.max(initial=1), 1) * 8)
    bx.set_ylabel("events", fontsize=16)
    bx.set_xlabel(xlabel)
    bx.set_xlim(0, 1)
    return fig


def plot_calibration(cal: dict[str, Any], path: Path, *, signal: str | None = None) -> Path:
    """Reliability diagram: observed frequency vs mean predicted probability, with counts and error bars."""
    return save(calibration_figure(cal, signal=signal), path)


def confusion_figure(confusion: Sequence[Sequence[float]], classes: Sequence[Any]) -> Any:
    """Confusion matrix normalised per true class (colour and number), the counts in brackets."""
    m = np.asarray(confusion, dtype=float)
    names = [str(c) for c in classes]
    norm = m / np.maximum(m.sum(1, keepdims=True), 1e-12)
    size = 2.0 * len(names) + 3.5
    fig, ax = plt.subplots(layout="constrained", figsize=(size + 1.2, size))
    shown = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    small = 15 if len(names) <= 4 else 10
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{norm[i, j]:.3f}\n({m[i, j]:.0f})", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=small)
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.minorticks_off()
    ax.set_title("fraction of each true class (events)", fontsize=15)
    fig.colorbar(shown, ax=ax, label="fraction of the true class")
    return fig


def plot_confusion(confusion: Sequence[Sequence[float]], classes: Sequence[Any], path: Path) -> Path:
    """Confusion matrix normalised per true class, with the counts."""
    return save(confusion_figure(confusion, classes), path)


def mc_scores_figure(score: np.ndarray, score_std: np.ndarray, true_class: np.ndarray,
                     samples: np.ndarray | None, *, classes: Sequence[str] | None = None) -> Any:
    """What MC dropout says about each prediction (see :func:`plot_mc_scores`)."""
    from physnn.evaluation.metrics import mc_categories

    names = _names(classes)
    sig = names[1]
    panels = 3 if samples is not None else 2
    fig, axes = plt.subplots(1, panels, layout="constrained", figsize=(7 * panels, 6.5))
    fig.get_layout_engine().set(w_pad=0.2)  # the colour bar's label apart from the next panel's
    bins = np.linspace(0, 1, 41)
    for c in (0, 1):
        axes[0].hist(score[true_class == c], bins=bins, histtype="step", lw=2, label=f"true {names[c]}")
    axes[0].set_yscale("log")
    axes[0].set_ylim(top=axes[0].get_ylim()[1] * 30)  # room for the legend above the histograms
    axes[0].set_xlabel(f"mean MC-dropout score P({sig})")
    axes[0].set_ylabel("events")
    axes[0].legend(loc="upper center")
    h = axes[1].hist2d(score, score_std, bins=(bins, 40), cmin=1, norm=mpl.colors.LogNorm())
    colorbar(fig, h[3], axes[1], "events")
    axes[1].set_xlabel(f"mean score P({sig})")
    axes[1].set_ylabel("MC-dropout spread (std)")
    if samples is not None:
        cat = mc_categories(score, score_std)
        picks = []
        for c, what in ((0, f"surest {names[0]}"), (1, f"surest {sig}")):
            idx = np.flatnonzero(cat == c)
            if idx.size:  # the band score ± 2 std farthest from 0.5 (the smallest spread alone can sit at 0.45)
                picks.append((idx[np.argmax(np.abs(score[idx] - 0.5) - 2 * score_std[idx])], what))
        picks.append((int(np.argmax(score_std)), "most uncertain"))
        for i, what in picks:
            axes[2].hist(samples[i], bins=bins, histtype="stepfilled", alpha=0.5,
                         label=f"{what}: {score[i]:.2f} ± {score_std[i]:.2f}")
        axes[2].set_xlabel(f"score P({sig}) of each of the T = {samples.shape[1]} passes")
        axes[2].set_ylabel("passes")
        axes[2].legend(loc="upper center", fontsize=14)
    fig.suptitle(f"signal: {sig} (score P({sig})); background: {names[0]}", fontsize=18)
    return fig


def plot_mc_scores(score: np.ndarray, score_std: np.ndarray, true_class: np.ndarray,
                   samples: np.ndarray | None, path: Path, *, classes: Sequence[str] | None = None) -> Path:
    """What MC dropout says about each prediction.

    Left: the mean score per true class. Middle: spread vs mean score (sure
    predictions sit at the ends with a small spread). Right (when the samples
    were kept): the T sampled scores of the surest of each class (the
    score ± 2 std band farthest from 0.5) and of the most uncertain event.
    """
    return save(mc_scores_figure(score, score_std, true_class, samples, classes=classes), path)


def _rejection_points(rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rejection of each bin and its 68% interval, drawable: an infinite rejection (no background event
    passes) at its lower limit, the background events of the bin (the largest rejection they can measure), and
    an infinite upper bound there too; ``limit`` says which points are such lower limits."""
    value, low, high, limit = [], [], [], []
    for r in rows:
        top = float(max(r["n_background"], 1))
        v = r["rejection"]
        limit.append(not np.isfinite(v))
        value.append(min(v, top))
        low.append(min(r.get("rejection_low", v), top))
        high.append(min(r.get("rejection_high", v), top))
    return np.array(value, float), np.array(low, float), np.array(high, float), np.array(limit, bool)


def bins_of_figure(b: Mapping[str, Any], *, classes: Sequence[str] | None = None) -> Any:
    """AUC (top) and background rejection at the signal efficiency ``b["efficiency"]`` (bottom, log) against the
    mean of the binned branch in each bin, the bootstrap 68% intervals as vertical bars and each bin's range as
    horizontal ones; ``b`` is the ``bins_of`` section of ``metrics.json``
    (:func:`physnn.evaluation.discrimination.classification_by_bin`), ``classes`` the background's name and the
    signal's."""
    bkg, sig = _names(classes)[:2]
    rows = [r for r in b["bins"] if r["auc"] is not None]
    fig, (ax, bx) = plt.subplots(2, 1, sharex=True, layout="constrained", figsize=(9, 9.5))
    x = np.array([r["center"] for r in rows], float)
    xerr = np.array([[r["center"] - r["low"] for r in rows], [r["high"] - r["center"] for r in rows]], float)
    auc = np.array([r["auc"] for r in rows], float)
    auc_low = np.array([r.get("auc_low", r["auc"]) for r in rows], float)
    auc_high = np.array([r.get("auc_high", r["auc"]) for r in rows], float)
    ax.errorbar(x, auc, yerr=[auc - auc_low, auc_high - auc], xerr=xerr.reshape(2, -1), fmt="o", capsize=3,
                color="tab:blue", label="AUC, bootstrap 68% interval")
    ax.axhline(0.5, color="k", ls=":", label="random")
    ax.set_ylabel("AUC")
    ax.set_ylim(min(0.45, float(auc_low.min(initial=1)) - 0.02), 1.01)
    ax.legend(loc="lower right", fontsize=13)
    rej, low, high, limit = _rejection_points(rows)
    shown = ~limit
    bx.errorbar(x[shown], rej[shown], yerr=[rej[shown] - low[shown], high[shown] - rej[shown]],
                xerr=xerr[:, shown], fmt="o", capsize=3, color="tab:blue",
                label="1/ε$_B$, bootstrap 68% interval")
    if limit.any():
        bx.errorbar(x[limit], rej[limit], xerr=xerr[:, limit], fmt="^", color="tab:red", ms=9,
                    label=f"no {bkg} passes: 1/ε$_B$ above its events")
    eff = float(b["efficiency"])
    bx.axhline(1 / eff, color="k", ls=":", label="random")
    bx.set_yscale("log")
    bottom = min(float(low.min(initial=1 / eff)), 1 / eff) / 1.3  # the random line above the axis
    top = max(float(high.max(initial=1 / eff)), 1 / eff) * 4  # room above the highest point for the legend
    bx.set_ylim(bottom, top)
    plain = mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}")  # 2, 5, 10, 20, not 2×10^0
    bx.yaxis.set_major_formatter(plain)
    few = np.log10(top / bottom) < 2  # under two decades: label the minor ticks at 2 and 5 as well
    bx.yaxis.set_minor_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}" if few and f"{v:g}"[0] in "25"
                                                          else ""))
    bx.set_ylabel(f"{bkg} rejection 1/ε$_B$")
    bx.set_xlabel(f"{b['branch']} (mean in each bin; bars: the bin)")
    bx.legend(loc="best", fontsize=13)
    fig.suptitle(f"{sig} vs {bkg} per bin of {b['branch']}: rejection at {eff:.0%} {sig} efficiency", fontsize=17)
    return fig


def plot_bins_of(b: Mapping[str, Any], path: Path, *, classes: Sequence[str] | None = None) -> Path:
    """AUC and background rejection per bin of a branch, with their intervals (:func:`bins_of_figure`)."""
    return save(bins_of_figure(b, classes=classes), path)
