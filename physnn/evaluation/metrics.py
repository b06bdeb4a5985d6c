"""Figures of merit from predictions: ROC/AUC, calibration, coverage, resolution per bin.

Every function takes numpy arrays and returns a dict of plain numbers and
lists (JSON-ready). Curves and AUCs come from scikit-learn; the bootstrap
resamples events with a seeded generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from physnn.errors import DataError
from physnn.evaluation.coverage import interval_coverage
from physnn.evaluation.resolution import (
    MIN_BIN_EVENTS,
    bin_edges,
    bin_index,
    binned,
    compare,
    finite_pulls,
    fold_samples,
    interval_verdict,
    mean_error,
    outliers,
    resolution_fit,
    robust_sigma,
    robust_sigma_error,
    std_error,
    worst_bin,
)
from physnn.evaluation.summary import comparison_line

__all__ = ["binomial_interval", "calibration", "classification", "mc_categories", "mc_labels", "regression",
           "regression_by", "resolution_fit", "rejection_at", "robust_sigma", "roc_with_band"]

#: Background efficiencies the ROC is given at: linear steps of 0.01 and log steps down to 1e-6, so that the
#: background rejection of a near-perfect classifier (AUC 0.9999) can be read off.
FPR_GRID = np.unique(np.concatenate([np.linspace(0.0, 1.0, 101), np.geomspace(1e-6, 1.0, 121)]))


def _weights(w: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n) if w is None else np.asarray(w, dtype=np.float64)


def roc_with_band(y: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None, *,
                  n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """ROC curve, AUC and a bootstrap band (16-84% of resampled curves).

    Parameters
    ----------
    y
        0/1 truth.
    score
        Higher means more signal-like (class 1).
    weight
        Per-event weights.
    n_boot
        Bootstrap resamples for the AUC interval and the band (0: none).

    Returns
    -------
    dict
        ``auc``, ``auc_low``/``auc_high`` (68% interval), ``fpr``/``tpr``
        on a fixed grid (:data:`FPR_GRID`) with ``tpr_low``/``tpr_high``;
        ``n_signal``/``n_background``, the events of each class (below
        ``1/n_background`` the curve is an interpolation).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(y).astype(int)
    w = _weights(weight, len(y))
    fpr, tpr, _ = roc_curve(y, score, sample_weight=w)
    result: dict[str, Any] = {"auc": float(roc_auc_score(y, score, sample_weight=w)),
                              "fpr": FPR_GRID.tolist(), "tpr": np.interp(FPR_GRID, fpr, tpr).tolist(),
                              "n_signal": int(np.sum(y == 1)), "n_background": int(np.sum(y == 0))}
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        aucs, curves = [], []
        for _ in range(n_boot):
            idx = rng.integers(0, len(y), len(y))
            if y[idx].min() == y[idx].max():
                continue
            f, t, _ = roc_curve(y[idx], score[idx], sample_weight=w[idx])
            aucs.append(roc_auc_score(y[idx], score[idx], sample_weight=w[idx]))
            curves.append(np.interp(FPR_GRID, f, t))
        lo, hi = np.percentile(aucs, [16, 84])
        band = np.percentile(np.array(curves), [16, 84], axis=0)
        result.update(auc_low=float(lo), auc_high=float(hi), tpr_low=band[0].tolist(), tpr_high=band[1].tolist())
    return result


def binomial_interval(k: np.ndarray, n: np.ndarray, cl: float = 0.6827) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson (exact) interval of a fraction ``k / n`` at confidence ``cl``, per bin.

    Examples
    --------
    >>> lo, hi = binomial_interval(np.array([3]), np.array([3]))
    >>> round(float(lo[0]), 3), float(hi[0])
    (0.541, 1.0)
    """
    from scipy.stats import beta

    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    alpha = 1.0 - cl
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        hi = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return np.nan_to_num(lo, nan=0.0), np.nan_to_num(hi, nan=1.0)


def calibration(y: np.ndarray, prob: np.ndarray, *, bins: int = 10) -> dict[str, Any]:
    """Reliability curve and expected calibration error (ECE).

    ``y`` says whether the event is of the class that ``prob`` is the
    probability of. ECE is the event-weighted mean of |observed frequency -
    mean predicted probability| over equal-width probability bins.

    Returns
    -------
    dict
        ``ece``; ``bin_edges`` (all bins); for each bin holding events:
        ``mean_predicted``, ``observed``, ``count``, ``bin_range`` and the
        68% Clopper-Pearson interval of the observed fraction
        ``observed_low``/``observed_high`` (a bin of three events has a wide
        one: it cannot look like a miscalibration).
    """
    y = np.asarray(y, dtype=np.float64)
    prob = np.asarray(prob, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    mean_p = np.bincount(which, prob, minlength=bins) / np.maximum(count, 1)
    hits = np.bincount(which, y, minlength=bins)
    freq = hits / np.maximum(count, 1)
    used = count > 0
    ece = float(np.sum(count[used] * np.abs(freq[used] - mean_p[used])) / max(count.sum(), 1))
    low, high = binomial_interval(hits[used], count[used])
    return {"ece": ece, "bin_edges": edges.tolist(), "mean_predicted": mean_p[used].tolist(),
            "observed": freq[used].tolist(), "count": count[used].astype(int).tolist(),
            "bin_range": [[float(edges[i]), float(edges[i + 1])] for i in np.flatnonzero(used)],
            "observed_low": low.tolist(), "observed_high": high.tolist()}


#: How many MC-dropout spreads the score's band spans in :func:`mc_categories`.
MC_Z = 2.0


def mc_rule(z: float = MC_Z, names: tuple[str, str] | None = None) -> str:
    """The definition of the MC-dropout categories that :func:`mc_categories` applies, for captions and tables;
    ``names``: the (signal, background) class names (None: said in general terms)."""
    signal, background = names or ("signal", "background")
    return (f"certain: the score ± {z:g}σ (the score P({signal}), σ the spread of the T passes) lies entirely on "
            f"one side of 0.5, certain {signal} above, certain {background} below; uncertain: the band holds 0.5")


def mc_labels(signal: str, background: str) -> dict[str, str]:
    """The names of the MC categories (the keys of ``classification(...)["mc"]["fraction"]``) for the reader:
    ``certain photon``, ``certain pi0``, ``uncertain``."""
    return {"certain_negative": f"certain {background}", "certain_positive": f"certain {signal}",
            "uncertain": "uncertain"}


def mc_categories(score: np.ndarray, score_std: np.ndarray, *, z: float = MC_Z) -> np.ndarray:
    """0 certain background, 1 certain signal (``score`` is the signal's probability), 2 uncertain: is 0.5 outside
    score ± z·std (:func:`mc_rule`)?"""
    cat = np.full(len(score), 2, dtype=np.int8)
    cat[score + z * score_std < 0.5] = 0
    cat[score - z * score_std > 0.5] = 1
    return cat


def rejection_at(y: np.ndarray, score: np.ndarray, efficiency: float = 0.8, weight: np.ndarray | None = None, *,
                 signal: int = 1) -> dict[str, float]:
    """The background rejection 1/ε_B of the loosest cut ``score >= q`` that keeps at least ``efficiency`` of
    the signal: the one definition of the report and of the photon/π0 benchmark
    (:func:`physnn.evaluation.discrimination.discrimination_by_bin`).

    Parameters
    ----------
    y
        The class index of each event (0 or 1); ``signal`` is the signal's, the other the background's.
    score
        The signal's score (e.g. its probability): higher is more signal-like.
    efficiency
        The signal efficiency at which the rejection is quoted.
    weight
        Event weights (None: all 1).
    signal
        The class index of the signal.

    Returns
    -------
    dict
        ``efficiency``, ``signal_efficiency`` (kept, >= ``efficiency``), ``background_efficiency`` and
        ``rejection`` (inf when no background event passes).
    """
    from sklearn.metrics import roc_curve

    is_signal = (np.asarray(y).astype(int) == signal).astype(int)
    fpr, tpr, _ = roc_curve(is_signal, score, sample_weight=_weights(weight, len(is_signal)))
    i = int(np.searchsorted(tpr, efficiency - 1e-12))
    eps_b = float(fpr[min(i, len(fpr) - 1)])
    return {"efficiency": efficiency, "signal_efficiency": float(tpr[min(i, len(tpr) - 1)]),
            "background_efficiency": eps_b, "rejection": 1 / eps_b if eps_b > 0 else float("inf")}


def classification(true_class: np.ndarray, prob: np.ndarray, *, weight: np.ndarray | None = None,
                   prob_std: np.ndarray | None = None, classes: list[Any] | None = None, n_boot: int = 200,
                   seed: int = 0, signal: int = 1, names: list[str] | None = None) -> dict[str, Any]:
    """Accuracy, confusion matrix, ROC/AUC (binary; one-vs-rest otherwise), calibration, MC categories.

    Two classes: ``signal`` (its index) is the signal: the ROC, the rejection at 80% signal efficiency, the
    calibration and the MC categories judge its probability ``prob[:, signal]`` against the other class.
    ``names``: the classes' names in index order (``class_names`` and ``signal`` in the result).
    """
    from sklearn.metrics import confusion_matrix, roc_auc_score

    k = prob.shape[1]
    pred = prob.argmax(1)
    w = _weights(weight, len(pred))
    result: dict[str, Any] = {
        "events": len(pred), "classes": classes if classes is not None else list(range(k)),
        "accuracy": float(np.average(pred == true_class, weights=w)),
        "confusion": confusion_matrix(true_class, pred, labels=list(range(k)), sample_weight=w).tolist(),
    }
    if names is not None:
        result["class_names"] = list(names)
    present = np.unique(true_class)
    if k == 2:
        if signal not in (0, 1):
            msg = f"signal: class index {signal} of a binary classifier, expected 0 or 1"
            raise DataError(msg)
        is_signal, score = (true_class == signal).astype(int), prob[:, signal]
        result["signal_index"] = signal
        if names is not None:
            result["signal"], result["background"] = names[signal], names[1 - signal]
        if len(present) == 2:
            result["roc"] = roc_with_band(is_signal, score, weight, n_boot=n_boot, seed=seed)
            result["auc"] = result["roc"]["auc"]
            result["rejection"] = rejection_at(true_class, score, 0.8, weight, signal=signal)
        result["calibration"] = calibration(is_signal, score)
    else:
        if len(present) == k:
            result["auc"] = float(roc_auc_score(true_class, prob, multi_class="ovr", sample_weight=w))
        result["calibration"] = calibration(pred == true_class, prob.max(1))
    result["ece"] = result["calibration"]["ece"]
    if prob_std is not None and k == 2:
        cat = mc_categories(prob[:, signal], prob_std[:, signal])
        who = [str(n) for n in names] if names is not None else [f"class {c}" for c in result["classes"]]
        names_mc = ("certain_negative", "certain_positive", "uncertain")
        result["mc"] = {
            "fraction": {n: float(np.mean(cat == i)) for i, n in enumerate(names_mc)},
            "accuracy": {n: float(np.mean(pred[cat == i] == true_class[cat == i])) if np.any(cat == i) else None
                         for i, n in enumerate(names_mc)},
            "mean_std": float(np.mean(prob_std[:, signal])),
            "rule": mc_rule(names=(who[signal], who[1 - signal])),
            "labels": mc_labels(who[signal], who[1 - signal]),  # the keys' names for the reader
        }
    return result


def _overall(true: np.ndarray, estimate: np.ndarray) -> dict[str, Any]:
    """Bias (the mean residual) and its error, RMSE, robust σ and its error, and residual quantiles over all events
    (non-finite estimates left out)."""
    ok = np.isfinite(estimate)
    res = estimate[ok] - true[ok]
    sigma, n = robust_sigma(res), int(ok.sum())
    return {"events": n, "bias": float(res.mean()), "bias_err": mean_error(float(res.std()), n),
            "rmse": float(np.sqrt(np.mean(res**2))), "sigma": sigma, "sigma_err": robust_sigma_error(sigma, n),
            "residual_quantiles": np.percentile(res, [2.5, 16, 50, 84, 97.5]).tolist()}


def _pulls(res: np.ndarray, std: np.ndarray) -> dict[str, Any]:
    """Pull mean and width with their errors (from the events with a finite pull), and the coverage of ±kσ
    intervals."""
    pull = finite_pulls(res, std)
    z = np.linspace(0, 3, 31)
    spread = float(pull.std())
    return {"pull_mean": float(pull.mean()), "pull_std": spread, "pull_mean_err": mean_error(spread, pull.size),
            "pull_std_err": std_error(spread, pull.size),
            "coverage_1sigma": float(np.mean(np.abs(res) <= std)),
            "coverage_2sigma": float(np.mean(np.abs(res) <= 2 * std)),
            "coverage_curve": {"z": z.tolist(), "observed": [float(np.mean(np.abs(res) <= k * std)) for k in z]}}


def _fit(true: np.ndarray, edges: np.ndarray, rows: list[dict[str, Any]], source: str | None) -> dict | None:
    """The σ/E fit of one estimator's bins (``source`` None: the model's, else a baseline's label)."""
    pick = (lambda r: r) if source is None else (lambda r: r["baselines"][source])
    return resolution_fit(fold_samples(true, edges, rows), np.array([pick(r)["sigma_rel"] for r in rows]),
                          np.array([pick(r)["sigma_rel_err"] for r in rows]))


def regression(true: np.ndarray, pred: np.ndarray, *, std: np.ndarray | None = None, bins: int = 8,
               kind: str = "generic", unit: str | None = None,
               baselines: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Residuals and resolution per bin of the true value, next to every baseline; outliers, pulls, coverage.

    Parameters
    ----------
    true, pred
        Truth and the model's estimate.
    std
        The model's per-event error bars (pulls, coverage, outliers by pull).
    bins
        Quantile bins of the true value (bins with fewer than 10 events are left out).
    kind, unit
        The target's :class:`physnn.config.TargetSpec`: ``energy`` adds σ/E per bin and the
        σ/E = a/√E ⊕ b fit (accepted or rejected on its χ²); other kinds are judged by σ in ``unit``.
    baselines
        Other estimators of the same events, ``{label: array}``, binned and compared with the model.

    Returns
    -------
    dict
        Overall ``bias``/``rmse``/``sigma``; ``bins`` (one row per bin: ``range``, ``events``, ``bias``,
        ``sigma``, ``sigma_rel`` for energies, ``outliers``, each baseline's figures); ``worst_bin``;
        ``outliers``; ``fit`` (energies); ``baselines`` (overall figures, fit, per-bin ``comparison``);
        pulls and coverage when ``std`` is given.
    """
    true, pred = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    energy = kind == "energy"
    if energy and not np.all(true > 0):
        msg = f"a kind: energy target needs positive true values (smallest {true.min():.4g}); declare kind: generic"
        raise DataError(msg)
    others = {label: np.asarray(v, dtype=np.float64) for label, v in (baselines or {}).items()}
    key = "sigma_rel" if energy else "sigma"
    # fewer bins when there are few events, so that every bin has MIN_BIN_EVENTS (a small test split)
    edges = bin_edges(true, max(1, min(bins, len(true) // MIN_BIN_EVENTS)))
    which = bin_index(true, edges)
    rows = binned(true, pred, edges, relative=energy, baselines=others)
    result: dict[str, Any] = {"kind": kind, "unit": unit, "key": key, **_overall(true, pred), "bins": rows}
    std = None if std is None else np.asarray(std, dtype=np.float64)
    result["outliers"] = outliers(true, pred, std, which)
    for row in rows:
        row["outliers"] = result["outliers"]["per_bin"][row["bin"]] if row["bin"] < len(
            result["outliers"]["per_bin"]) else 0
    if std is not None:  # per bin: an error bar fitted on all events can hold overall and fail in a bin
        for row in rows:
            sel = which == row["bin"]
            cov = interval_coverage(true[sel], pred[sel], std=std[sel])
            row.update(coverage_1sigma=cov.get("coverage_1sigma"), pull_std=cov.get("pull_std"),
                       mean_std=cov.get("mean_std"))
    result["worst_bin"] = worst_bin(rows, key)
    if energy:
        result["fit"] = _fit(true, edges, rows, None)
    if std is not None:
        result.update(_pulls(pred - true, std))
    if others:
        result["baselines"] = {}
        for label, values in others.items():
            base = {**_overall(true, values), "outliers": outliers(true, values, None, which)}
            if energy:
                base["fit"] = _fit(true, edges, rows, label)
            comparison = compare(rows, label, key)
            comparison["summary"] = comparison_line(rows, label, comparison, (result["sigma"], base["sigma"]), unit)
            base["comparison"] = comparison
            result["baselines"][label] = base
    return result


def regression_by(true: np.ndarray, pred: np.ndarray, groups: np.ndarray, *, std: np.ndarray | None = None,
                  kind: str = "generic", unit: str | None = None,
                  baselines: Mapping[str, np.ndarray] | None = None, bins: int = 5) -> dict[str, dict[str, Any]]:
    """The headline regression figures for each value of ``groups`` (an integer observer such as ``pdgid``).

    Each group is judged by :func:`regression` on its own events (``bins`` quantile bins of the true value;
    groups with fewer than ``2 * MIN_BIN_EVENTS`` events are left out). Returns, per group value (a string),
    ``events``, ``bias``, ``sigma``, for energies ``sigma_rel`` (robust σ of (pred - true)/true) and ``fit``
    (σ/E = a/√E ⊕ b), with error bars ``coverage_1sigma``, ``pull_std`` and ``pull_std_err``, each baseline's
    ``bias``, ``sigma_rel``/``sigma`` and fit, and the group's ``bins`` (as :func:`regression` gives them). A
    baseline calibrated on the mixture (one factor for all types) is biased per type: its σ is around its own
    median, so read the two together. Each baseline of a group gets a ``verdict`` (:func:`~physnn.evaluation.resolution.
    interval_verdict`): ``better``, ``worse`` or ``not resolved``, the σ (σ/E) ± its statistical error
    (``sigma_err``/``sigma_rel_err``) of the model against the baseline's.
    """
    true, pred, groups = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64), np.asarray(groups)
    energy = kind == "energy"
    out: dict[str, dict[str, Any]] = {}
    for value in np.unique(groups):
        g = groups == value
        if g.sum() < 2 * MIN_BIN_EVENTS:
            continue
        others = {label: np.asarray(v, dtype=np.float64)[g] for label, v in (baselines or {}).items()}
        fig = regression(true[g], pred[g], std=None if std is None else np.asarray(std)[g], bins=bins, kind=kind,
                         unit=unit, baselines=others)
        row = {k: fig[k] for k in ("events", "bias", "bias_err", "sigma", "fit", "coverage_1sigma", "pull_std",
                                   "pull_std_err", "bins") if k in fig}
        if energy:
            row["sigma_rel"] = robust_sigma((pred[g] - true[g]) / true[g])
        key = "sigma_rel" if energy else "sigma"
        row[f"{key}_err"] = robust_sigma_error(row[key], int(g.sum()))
        row["baselines"] = {}
        for label, v in others.items():
            base = {"sigma_rel": robust_sigma((v - true[g]) / true[g]) if energy else None,
                    "bias": fig["baselines"][label]["bias"], "bias_err": fig["baselines"][label]["bias_err"],
                    "sigma": fig["baselines"][label]["sigma"], "fit": fig["baselines"][label].get("fit")}
            base[f"{key}_err"] = robust_sigma_error(base[key], int(np.isfinite(v).sum()))
            base["verdict"] = interval_verdict(row[key], row[f"{key}_err"], base[key], base[f"{key}_err"])
            row["baselines"][label] = base
        out[str(value.item() if hasattr(value, "item") else value)] = row
    return out
