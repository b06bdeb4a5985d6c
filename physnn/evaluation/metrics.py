"""Figures of merit from predictions: ROC/AUC, calibration, coverage, resolution.

Every function takes numpy arrays and returns a dict of plain numbers and
lists (JSON-ready). Curves and AUCs come from scikit-learn; the bootstrap
resamples events with a seeded generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FPR_GRID = np.linspace(0.0, 1.0, 101)


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
        on a fixed grid with ``tpr_low``/``tpr_high``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(y).astype(int)
    w = _weights(weight, len(y))
    fpr, tpr, _ = roc_curve(y, score, sample_weight=w)
    result: dict[str, Any] = {"auc": float(roc_auc_score(y, score, sample_weight=w)),
                              "fpr": FPR_GRID.tolist(), "tpr": np.interp(FPR_GRID, fpr, tpr).tolist()}
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


def calibration(y: np.ndarray, prob: np.ndarray, *, bins: int = 10) -> dict[str, Any]:
    """Reliability curve and expected calibration error (ECE).

    ``y`` says whether the event is of the class that ``prob`` is the
    probability of. ECE is the event-weighted mean of |observed frequency -
    mean predicted probability| over equal-width probability bins.
    """
    y = np.asarray(y, dtype=np.float64)
    prob = np.asarray(prob, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    mean_p = np.bincount(which, prob, minlength=bins) / np.maximum(count, 1)
    freq = np.bincount(which, y, minlength=bins) / np.maximum(count, 1)
    used = count > 0
    ece = float(np.sum(count[used] * np.abs(freq[used] - mean_p[used])) / max(count.sum(), 1))
    return {"ece": ece, "bin_edges": edges.tolist(), "mean_predicted": mean_p[used].tolist(),
            "observed": freq[used].tolist(), "count": count[used].astype(int).tolist()}


def mc_categories(score: np.ndarray, score_std: np.ndarray, *, z: float = 2.0) -> np.ndarray:
    """0 certain negative, 1 certain positive, 2 uncertain: is 0.5 outside score ± z·std?"""
    cat = np.full(len(score), 2, dtype=np.int8)
    cat[score + z * score_std < 0.5] = 0
    cat[score - z * score_std > 0.5] = 1
    return cat


def classification(true_class: np.ndarray, prob: np.ndarray, *, weight: np.ndarray | None = None,
                   prob_std: np.ndarray | None = None, classes: list[Any] | None = None, n_boot: int = 200,
                   seed: int = 0) -> dict[str, Any]:
    """Accuracy, confusion matrix, ROC/AUC (binary; one-vs-rest otherwise), calibration, MC categories."""
    from sklearn.metrics import confusion_matrix, roc_auc_score

    k = prob.shape[1]
    pred = prob.argmax(1)
    w = _weights(weight, len(pred))
    result: dict[str, Any] = {
        "events": len(pred), "classes": classes if classes is not None else list(range(k)),
        "accuracy": float(np.average(pred == true_class, weights=w)),
        "confusion": confusion_matrix(true_class, pred, labels=list(range(k)), sample_weight=w).tolist(),
    }
    present = np.unique(true_class)
    if k == 2:
        if len(present) == 2:
            result["roc"] = roc_with_band(true_class, prob[:, 1], weight, n_boot=n_boot, seed=seed)
            result["auc"] = result["roc"]["auc"]
        result["calibration"] = calibration(true_class == 1, prob[:, 1])
    else:
        if len(present) == k:
            result["auc"] = float(roc_auc_score(true_class, prob, multi_class="ovr", sample_weight=w))
        result["calibration"] = calibration(pred == true_class, prob.max(1))
    result["ece"] = result["calibration"]["ece"]
    if prob_std is not None and k == 2:
        cat = mc_categories(prob[:, 1], prob_std[:, 1])
        names = ("certain_negative", "certain_positive", "uncertain")
        result["mc"] = {
            "fraction": {n: float(np.mean(cat == i)) for i, n in enumerate(names)},
            "accuracy": {n: float(np.mean(pred[cat == i] == true_class[cat == i])) if np.any(cat == i) else None
                         for i, n in enumerate(names)},
            "mean_std": float(np.mean(prob_std[:, 1])),
        }
    return result


def _robust_sigma(x: np.ndarray) -> float:
    """Half the 16-84% interval: the Gaussian sigma, insensitive to tails."""
    lo, hi = np.percentile(x, [15.865, 84.135])
    return float((hi - lo) / 2)


def resolution_fit(energy: np.ndarray, sigma_rel: np.ndarray, error: np.ndarray) -> dict[str, float] | None:
    """Fit σ/E = a/√E ⊕ b (stochastic and constant terms) with scipy; None if it fails."""
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    def model(e: np.ndarray, a: float, b: float) -> np.ndarray:
        return np.sqrt(a**2 / e + b**2)

    ok = (energy > 0) & np.isfinite(sigma_rel) & (error > 0)
    if ok.sum() < 3:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)  # no covariance: the errors below are inf
            (a, b), cov = curve_fit(model, energy[ok], sigma_rel[ok], p0=(0.5, 0.02), sigma=error[ok],
                                    absolute_sigma=False, maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    err = np.sqrt(np.diag(cov))
    return {"stochastic": abs(float(a)), "stochastic_err": float(err[0]), "constant": abs(float(b)),
            "constant_err": float(err[1])}


def regression(true: np.ndarray, pred: np.ndarray, *, std: np.ndarray | None = None,
               bins: int = 8) -> dict[str, Any]:
    """Residuals, resolution in bins of the true value, pulls and interval coverage.

    Resolution is the robust sigma (half the 16-84% interval) of
    ``(pred - true) / true`` per quantile bin of ``true`` (when the truth is
    positive) or of ``pred - true`` otherwise; for positive truth the
    calorimeter form σ/E = a/√E ⊕ b is fitted.
    """
    true = np.asarray(true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    res = pred - true
    relative = bool(np.all(true > 0))
    result: dict[str, Any] = {
        "events": len(true), "bias": float(res.mean()), "rmse": float(np.sqrt(np.mean(res**2))),
        "sigma": _robust_sigma(res), "relative": relative,
        "residual_quantiles": np.percentile(res, [2.5, 16, 50, 84, 97.5]).tolist(),
    }
    edges = np.unique(np.quantile(true, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.digitize(true, edges[1:-1]), 0, len(edges) - 2)
    centers, sig, err, bias = [], [], [], []
    for b in range(len(edges) - 1):
        sel = which == b
        if sel.sum() < 10:
            continue
        r = res[sel] / true[sel] if relative else res[sel]
        s = _robust_sigma(r)
        centers.append(float(np.mean(true[sel])))
        sig.append(s)
        err.append(s / np.sqrt(2 * (sel.sum() - 1)))
        bias.append(float(np.median(r)))
    result["binned"] = {"true": centers, "sigma": sig, "sigma_err": err, "median_bias": bias}
    if relative:
        result["fit"] = resolution_fit(np.array(centers), np.array(sig), np.array(err))
    if std is not None:
        std = np.asarray(std, dtype=np.float64)
        pull = res / np.where(std > 0, std, np.nan)
        pull = pull[np.isfinite(pull)]
        result["pull_mean"] = float(pull.mean())
        result["pull_std"] = float(pull.std())
        result["coverage_1sigma"] = float(np.mean(np.abs(res) <= std))
        result["coverage_2sigma"] = float(np.mean(np.abs(res) <= 2 * std))
        z = np.linspace(0, 3, 31)
        result["coverage_curve"] = {"z": z.tolist(), "observed": [float(np.mean(np.abs(res) <= k * std)) for k in z]}
    return result
