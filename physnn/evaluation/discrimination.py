"""A binary classifier's quality per bin of an observer: AUC and background rejection, each with its interval.

- :func:`discrimination_by_bin`: per bin of a variable (the true energy), the ROC AUC and the background
  rejection 1/ε_B at a fixed efficiency of class 0, each with a bootstrap 68% interval (the same resampled
  events for every score): the photon/π0 benchmark (``examples/gamma_pi0.py``) compares a CNN and a BDT
  with it;
- :func:`classification_by_bin`: the same for ``physnn evaluate --bins-of BRANCH``, on quantile bins of an
  observer of the predictions file, the classifier's signal class as the report defines it
  (:func:`physnn.evaluation.metrics.classification`);
- :func:`bins_of_table`: those rows as the strings the terminal and ``report.html`` show.

The rejection is :func:`physnn.evaluation.metrics.rejection_at`, the report's one definition: 1 / (the
fraction of the background kept by the loosest cut on the signal's score that keeps ``efficiency`` of the
signal).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from physnn.errors import ConfigError
from physnn.evaluation.metrics import rejection_at
from physnn.evaluation.resolution import MIN_BIN_EVENTS, bin_edges, bin_index
from physnn.fmt import num, with_interval

__all__ = ["BINS_OF", "bins_of_table", "check_bins_of", "classification_by_bin", "discrimination_by_bin"]

#: Quantile bins of ``evaluate --bins-of`` when no number is given (fewer when the events are few).
BINS_OF = 5


def _background_efficiency(y: np.ndarray, score: np.ndarray, efficiency: float,
                           weight: np.ndarray | None = None, signal: int = 0) -> float:
    """ε_B of the cut that keeps ``efficiency`` of class ``signal``, ``score`` being P(class 1):
    :func:`physnn.evaluation.metrics.rejection_at` on the signal's probability (``score`` itself when the signal
    is class 1, 1 - ``score`` when it is class 0), as the report judges it."""
    own = np.asarray(score) if signal == 1 else 1 - np.asarray(score)
    return rejection_at(y, own, efficiency, weight, signal=signal)["background_efficiency"]


def _bootstrap(y: np.ndarray, score: np.ndarray, efficiency: float, n_boot: int, rng: np.random.Generator,
               weight: np.ndarray | None = None, signal: int = 0) -> dict[str, float]:
    """68% intervals of the AUC and of the rejection (from those of ε_B, so that a resample that rejects
    every background event gives an infinite upper bound, not a NaN)."""
    from sklearn.metrics import roc_auc_score

    aucs, kept = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        w = None if weight is None else weight[idx]
        aucs.append(roc_auc_score(y[idx], score[idx], sample_weight=w))
        kept.append(_background_efficiency(y[idx], score[idx], efficiency, w, signal))
    if not aucs:  # no resample (n_boot 0), or none with both classes: no interval
        return {}
    lo, hi = np.percentile(aucs, [16, 84])
    e_lo, e_hi = np.percentile(kept, [16, 84])
    return {"auc_low": float(lo), "auc_high": float(hi), "rejection_low": float(1 / e_hi) if e_hi > 0 else np.inf,
            "rejection_high": float(1 / e_lo) if e_lo > 0 else np.inf}


def discrimination_by_bin(y: np.ndarray, scores: dict[str, np.ndarray], energy: np.ndarray, edges: Sequence[float],
                          *, efficiency: float = 0.8, n_boot: int = 200, seed: int = 0,
                          weight: np.ndarray | None = None, signal: int = 0) -> list[dict[str, Any]]:
    """AUC and rejection at ``efficiency`` of the signal class per energy bin, for each named score.

    Parameters
    ----------
    y
        0/1 truth (by default class 0: the signal, e.g. photons; class 1: the background to reject, e.g. π0).
    scores
        Name -> P(class 1) per event, e.g. ``{"CNN": ..., "shower shapes + BDT": ...}``; used as it is when
        ``signal`` is 1 (no ``1 - p`` that would merge tiny probabilities into ties in float32).
    energy
        The binning variable per event (true energy).
    edges
        Bin edges; each bin holds ``low <= energy < high``, events outside are left out.
    efficiency
        The class-0 (photon) efficiency at which the rejection is quoted.
    n_boot
        Bootstrap resamples for the 68% intervals (the same events for every score).
    weight
        Event weights (None: all 1), in the AUC, the rejection and their resamples.
    signal
        The class of ``y`` that is the signal (0 or 1), the other the background.

    Returns
    -------
    list of dict
        Per bin holding both classes and score: ``low``, ``high``, ``score``, ``n_signal`` (class ``signal``),
        ``n_background``, ``auc``, ``rejection`` (inf when every class-1 event is rejected), and their
        ``_low``/``_high`` bounds (left out without resamples).
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(int)
    w_all = None if weight is None else np.asarray(weight, dtype=np.float64)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        inside = (energy >= lo) & (energy < hi)
        if len(np.unique(y[inside])) < 2:
            continue
        w = None if w_all is None else w_all[inside]
        for name, score in scores.items():
            rng = np.random.default_rng(seed)  # the same resamples for every score
            s = np.asarray(score)[inside]
            passed = _background_efficiency(y[inside], s, efficiency, w, signal)
            row = {"low": float(lo), "high": float(hi), "score": name,
                   "n_signal": int(np.sum(y[inside] == signal)), "n_background": int(np.sum(y[inside] != signal)),
                   "auc": float(roc_auc_score(y[inside], s, sample_weight=w)),
                   "rejection": float(1 / passed) if passed > 0 else float("inf")}
            rows.append({**row, **_bootstrap(y[inside], s, efficiency, n_boot, rng, w, signal)})
    return rows


def _quantile_bins(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The edges of up to ``bins`` quantile bins of the finite ``values`` (fewer when there are under
    :data:`MIN_BIN_EVENTS` events a bin; one when every value is the same) and each value's bin number."""
    edges = bin_edges(values, max(1, min(bins, len(values) // MIN_BIN_EVENTS))) if len(values) else np.array([])
    if len(edges) == 1:  # one value in every event: one bin
        edges = np.repeat(edges, 2)
    return edges, bin_index(values, edges)


def classification_by_bin(truth: np.ndarray, prob_signal: np.ndarray, values: np.ndarray, *, signal: int,
                          bins: int = BINS_OF, efficiency: float = 0.8, weight: np.ndarray | None = None,
                          n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """A binary classifier's AUC and background rejection at ``efficiency`` of its signal, per quantile bin of
    ``values`` (an observer such as the true energy), with bootstrap 68% intervals.

    Parameters
    ----------
    truth
        The class index of each event (0 or 1).
    prob_signal
        The signal's probability per event (higher: more signal-like).
    values
        The binning variable per event; events where it is not finite are left out (``left_out``).
    signal
        The class index of the signal.
    bins
        Quantile bins (equal populations; fewer when there are under :data:`MIN_BIN_EVENTS` events a bin).
    efficiency, weight, n_boot, seed
        As in :func:`discrimination_by_bin`.

    Returns
    -------
    dict
        ``edges``, ``efficiency``, ``left_out`` and ``bins``: per bin ``low``, ``high`` (the last bin holds its
        upper edge), ``center`` (the mean of ``values`` in it), ``n_signal``, ``n_background``, ``auc``,
        ``rejection`` and their ``_low``/``_high`` bounds; a bin with one class only has ``auc`` and
        ``rejection`` None.
    """
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    truth, prob, values = np.asarray(truth)[ok].astype(int), np.asarray(prob_signal)[ok], values[ok]
    w = None if weight is None else np.asarray(weight, dtype=np.float64)[ok]
    edges, which = _quantile_bins(values, bins)
    # discrimination_by_bin on the bin number, class 1 the signal and the score its probability as it is: its AUC
    # and rejection are rejection_at(truth, prob, signal=signal)'s, with no 1 - p rounding ties into it
    found = discrimination_by_bin((truth == signal).astype(int), {"model": prob}, which, range(len(edges)),
                                  efficiency=efficiency, n_boot=n_boot, seed=seed, weight=w, signal=1)
    by_bin = {int(r["low"]): r for r in found}
    rows = []
    for i in range(len(edges) - 1):
        inside = which == i
        if not inside.any():
            continue
        row = {"low": float(edges[i]), "high": float(edges[i + 1]), "center": float(values[inside].mean()),
               "n_signal": int(np.sum(truth[inside] == signal)), "n_background": int(np.sum(truth[inside] != signal)),
               "auc": None, "rejection": None}
        got = by_bin.get(i, {})
        row.update({k: v for k, v in got.items() if k.startswith(("auc", "rejection"))})
        rows.append(row)
    return {"edges": [float(e) for e in edges], "efficiency": efficiency, "left_out": int((~ok).sum()), "bins": rows}


def _rejection_text(row: Mapping[str, Any], background: str) -> str:
    """The rejection and its interval; ``> N`` (no background event passes: 1/ε_B above the events) for inf."""
    value = row["rejection"]
    if value is None:
        return "-"
    if not math.isfinite(value):
        return f"> {row['n_background']:,} (no {background} passes)"
    if "rejection_low" not in row:
        return num(value)
    high = row["rejection_high"]
    low = num(row["rejection_low"])
    return f"{num(value)} [{low}, {num(high) if math.isfinite(high) else 'inf'}]"


def bins_of_table(b: Mapping[str, Any], signal: str, background: str) -> tuple[str, list[str], list[list[str]], str]:
    """Title, column names, one row of strings per bin and a note, of a ``bins_of`` section of ``metrics.json``
    (:func:`classification_by_bin` and its ``branch``); ``signal`` and ``background``: the classes' names."""
    branch, eff = b["branch"], b["efficiency"]
    columns = [branch, "mean", f"{signal} / {background}", "AUC [68%]", f"{background} rejection [68%]"]
    rows = []
    for r in b["bins"]:
        auc = "-" if r["auc"] is None else num(r["auc"])
        if r["auc"] is not None and "auc_low" in r:
            value, low, high = with_interval(r["auc"], r["auc_low"], r["auc_high"])
            auc = f"{value} [{low}, {high}]"
        rows.append([f"{num(r['low'])}-{num(r['high'])}", num(r["center"]), f"{r['n_signal']:,} / "
                     f"{r['n_background']:,}", auc, _rejection_text(r, background)])
    title = f"AUC and {background} rejection at {eff:.0%} {signal} efficiency per bin of {branch}"
    note = (f"quantile bins of {branch} (the last holds its upper edge); rejection: 1/ε_B of the loosest cut on "
            f"P({signal}) that keeps {eff:.0%} of the {signal} events in the bin; [68%]: bootstrap interval")
    if b.get("left_out"):
        note += f"; {b['left_out']:,} events without a finite {branch} left out"
    return title, columns, rows, note


def _check_both_classes(predictions: str, arrays: Mapping[str, np.ndarray], bins_of: str, bins: int,
                        keep: np.ndarray | None) -> None:
    """Refuse (one line) ``bins_of`` when the judged events (``keep``, with a known class) have no finite value of
    it, or when none of its quantile bins would hold both classes: nothing to draw or tabulate."""
    if "true_class" not in arrays:  # the report says so itself
        return
    sel = arrays["true_class"] >= 0
    if keep is not None:
        sel = sel & keep
    values = np.asarray(arrays[bins_of][sel], dtype=np.float64)
    ok = np.isfinite(values)
    if sel.any() and not ok.any():
        msg = (f"bins_of={bins_of}: the branch {bins_of!r} of {predictions} has no finite value in the "
               f"{int(sel.sum()):,} judged events; expected a number per event to bin in")
        raise ConfigError(msg, options=["bins_of"])
    truth = arrays["true_class"][sel][ok]
    edges, which = _quantile_bins(values[ok], bins)
    if ok.any() and not any(len(np.unique(truth[which == i])) == 2 for i in range(len(edges) - 1)):
        msg = (f"bins_of={bins_of}: none of the {len(edges) - 1} quantile bins of {bins_of!r} holds both classes "
               f"in {predictions}, so no AUC or rejection can be measured in any; expected an observer such as "
               f"energy, not the label")
        raise ConfigError(msg, options=["bins_of"])


def check_bins_of(predictions: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], bins_of: str | None,
                  bins: int | None, keep: np.ndarray | None = None) -> int:
    """The number of quantile bins of ``bins_of`` (:data:`BINS_OF` when ``bins`` is None), after checking that
    ``bins_of`` is a numeric branch of one value per event of a binary classifier's predictions file, and that
    the judged events (``keep``; None: all) have a finite value of it and a bin with both classes.

    Raises
    ------
    ConfigError
        One line naming the option and what was expected: ``bins`` without ``bins_of`` or below 1, a branch the
        file does not have or that is not a number per event, a regression's or a multi-class classifier's
        predictions or a file without class probabilities, no finite value or no bin holding both classes.
    """
    if bins_of is None:
        if bins is not None:
            msg = f"bins={bins}: the number of quantile bins of bins_of=BRANCH; give the branch to bin in too"
            raise ConfigError(msg, options=["bins", "bins_of"])
        return 0
    if bins is not None and bins < 1:
        msg = f"bins={bins}: expected at least 1 quantile bin of {bins_of}"
        raise ConfigError(msg, options=["bins"])
    numeric = [k for k, v in arrays.items() if v.ndim == 1 and v.dtype.kind in "iuf"]
    if bins_of not in arrays:
        msg = (f"bins_of={bins_of}: {predictions} has no branch {bins_of!r} (its numeric branches: "
               f"{', '.join(numeric)}); predict writes the run config's data observers: add it there")
        raise ConfigError(msg, options=["bins_of"])
    if bins_of not in numeric:
        value = arrays[bins_of]
        msg = (f"bins_of={bins_of}: the branch {bins_of!r} of {predictions} holds {value.dtype} values of shape "
               f"{value.shape[1:] or '()'} per event; expected one number per event (such as energy)")
        raise ConfigError(msg, options=["bins_of"])
    kind = meta["task"]["kind"]
    k = arrays["prob"].shape[1] if "prob" in arrays and arrays["prob"].ndim == 2 else 0
    if kind == "regression" or k != 2:
        if kind == "regression":
            what = "holds a regression's predictions"
        elif k:
            what = f"holds a {k}-class classifier's predictions"
        else:
            what = f"has no class probabilities (no 'prob' branch; its task: {kind})"
        msg = f"bins_of={bins_of}: AUC and rejection per bin judge a binary classifier; {predictions} {what}"
        raise ConfigError(msg, options=["bins_of"])
    n = BINS_OF if bins is None else bins
    _check_both_classes(predictions, arrays, bins_of, n, keep)
    return n
