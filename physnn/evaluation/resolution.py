"""Resolution per bin of the true value, the calorimeter fit and catastrophic outliers.

A single resolution number over a wide range of true values hides where the
model fails, so everything here is per bin of the true value (quantile bins,
the same for the model and every baseline):

* robust σ (half the 16-84% interval of the residuals) and the median bias in
  the target's unit, and for ``kind: energy`` targets σ/E (the robust σ of
  ``(pred - true) / true``);
* the model compared with each baseline bin by bin, and the worst bin named;
* for energies, the calorimeter form σ/E = a/√E ⊕ b fitted with its χ²/ndf;
  the fit is *rejected* (:data:`FIT_P_MIN`) when the points do not follow it;
* catastrophic outliers: events more than :data:`OUTLIER_CUT` σ away.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

#: An event is a catastrophic outlier beyond this many σ (its pull, or robust σ of its bin).
OUTLIER_CUT = 5.0
#: A σ/E fit whose χ² p-value is below this does not describe the points: rejected, not shown.
FIT_P_MIN = 1e-3
#: Bins with fewer events are left out of the resolution table and the fit.
MIN_BIN_EVENTS = 10
#: Energies kept per bin to fold the σ/E form over the bin's spread of energies.
FOLD_POINTS = 64

_NAMES = {"sigma": "σ", "sigma_rel": "σ/E"}
_P84 = float(stats.norm.cdf(1.0))
#: Asymptotic standard error of the 16-84% half-width of N Gaussian values, in units of σ/√N (0.96;
#: the standard deviation's own is 0.71).
_SIGMA_ERR = float(np.sqrt((1 - _P84) * (2 * _P84 - 1) / 2) / stats.norm.pdf(1.0))


def robust_sigma(x: np.ndarray) -> float:
    """Half the 16-84% interval: the Gaussian σ, insensitive to tails (NaN for no values)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return float("nan")
    lo, hi = np.percentile(x, [15.865, 84.135])
    return float((hi - lo) / 2)


def robust_sigma_error(sigma: float, n: int) -> float:
    """Statistical error of :func:`robust_sigma` from ``n`` Gaussian values."""
    return float(sigma * _SIGMA_ERR / np.sqrt(max(n, 1)))


def finite_pulls(res: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The pulls ``res / std`` of the events with a positive, finite error bar (the others have none)."""
    pull = res / np.where(std > 0, std, np.nan)
    return pull[np.isfinite(pull)]


def mean_error(std: float, n: int) -> float:
    """Statistical error of the mean of ``n`` values of standard deviation ``std``: σ/√n."""
    return float(std / np.sqrt(max(n, 1)))


def std_error(std: float, n: int) -> float:
    """Statistical error of the standard deviation ``std`` of ``n`` Gaussian values: σ/√(2n)."""
    return float(std / np.sqrt(2 * max(n, 1)))


def median_error(sigma: float, n: int) -> float:
    """Statistical error of the median of ``n`` Gaussian values of width ``sigma``: √(π/2) σ/√n."""
    return float(np.sqrt(np.pi / 2) * sigma / np.sqrt(max(n, 1)))


def bin_edges(true: np.ndarray, bins: int) -> np.ndarray:
    """Quantile bin edges of the true value (equal populations; repeated edges merged)."""
    return np.unique(np.quantile(true, np.linspace(0, 1, bins + 1)))


def bin_index(true: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each event (the last bin includes its upper edge)."""
    return np.clip(np.digitize(true, edges[1:-1]), 0, max(len(edges) - 2, 0))


def _stats(true: np.ndarray, estimate: np.ndarray, relative: bool) -> dict[str, float]:
    """Bias and robust σ of one estimator in one bin (non-finite estimates left out)."""
    ok = np.isfinite(estimate)
    res = estimate[ok] - true[ok]
    s = robust_sigma(res)
    out = {"events": int(ok.sum()), "bias": float(np.median(res)) if res.size else float("nan"),
           "bias_err": median_error(s, res.size), "sigma": s, "sigma_err": robust_sigma_error(s, res.size)}
    if relative:
        rel = res / true[ok]
        s = robust_sigma(rel)
        out.update(bias_rel=float(np.median(rel)) if rel.size else float("nan"), sigma_rel=s,
                   sigma_rel_err=robust_sigma_error(s, rel.size))
    return out


def binned(true: np.ndarray, pred: np.ndarray, edges: np.ndarray, *, relative: bool,
           baselines: Mapping[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """One row per bin with at least :data:`MIN_BIN_EVENTS` events: its number ``bin``, range, count, the
    model's bias and σ (and σ/E when ``relative``), and the same for each baseline under ``baselines``."""
    which = bin_index(true, edges)
    rows = []
    for b in range(len(edges) - 1):
        sel = which == b
        if sel.sum() < MIN_BIN_EVENTS:
            continue
        t = true[sel]
        row: dict[str, Any] = {"bin": b, "range": [float(edges[b]), float(edges[b + 1])],
                               "true_mean": float(t.mean()), **_stats(t, pred[sel], relative)}
        row["baselines"] = {label: _stats(t, np.asarray(values)[sel], relative)
                            for label, values in (baselines or {}).items()}
        rows.append(row)
    return rows


def fold_samples(true: np.ndarray, edges: np.ndarray, rows: Sequence[Mapping[str, Any]]) -> list[np.ndarray]:
    """Per row of :func:`binned`, :data:`FOLD_POINTS` quantiles of its true values (for :func:`resolution_fit`)."""
    which = bin_index(true, edges)
    q = (np.arange(FOLD_POINTS) + 0.5) / FOLD_POINTS
    return [np.quantile(true[which == r["bin"]], q) for r in rows]


def _folded_sigma(energies: np.ndarray, a: float, b: float) -> float:
    """Robust σ of a mixture of Gaussians with σ/E = a/√E ⊕ b over a bin's energies."""
    from scipy.optimize import brentq

    f = np.maximum(np.sqrt(a**2 / energies + b**2), 1e-12)
    if np.ptp(f) <= 1e-12 * f.max():
        return float(f[0])
    return float(brentq(lambda q: np.mean(stats.norm.cdf(q / f)) - _P84, f.min(), f.max()))


def resolution_fit(energies: Sequence[np.ndarray], sigma_rel: np.ndarray,
                   error: np.ndarray) -> dict[str, Any] | None:
    """Fit σ/E = a/√E ⊕ b to per-bin σ/E, with its χ²/ndf and whether it is accepted.

    Parameters
    ----------
    energies
        Per bin, the true energies in it (or a representative sample of
        them, or one value for a point): the form is folded over them, so a
        wide bin is compared with the σ its mixture of energies gives.
    sigma_rel, error
        Per-bin σ/E and its statistical error.

    Returns
    -------
    dict or None
        ``stochastic`` (a), ``constant`` (b) with errors, ``chi2``, ``ndf``
        (points - 2), ``chi2_ndf``, ``p_value`` and ``accepted`` (p-value at
        least :data:`FIT_P_MIN`); None with fewer than 3 usable points or
        when the fit fails.
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    sigma_rel, error = np.asarray(sigma_rel, dtype=np.float64), np.asarray(error, dtype=np.float64)
    ok = [i for i, e in enumerate(energies) if np.all(np.asarray(e) > 0) and np.isfinite(sigma_rel[i])
          and error[i] > 0]
    if len(ok) < 3:
        return None
    samples = [np.asarray(energies[i], dtype=np.float64) for i in ok]

    def model(_: np.ndarray, a: float, b: float) -> np.ndarray:
        return np.array([_folded_sigma(e, a, b) for e in samples])

    y, dy = sigma_rel[ok], error[ok]
    a0 = float(y[0] * np.sqrt(np.mean(samples[0])))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            (a, b), cov = curve_fit(model, np.arange(len(ok)), y, p0=(a0, 0.01), sigma=dy, absolute_sigma=True,
                                    maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    chi2 = float(np.sum(((y - model(np.arange(len(ok)), a, b)) / dy) ** 2))
    ndf = len(ok) - 2
    p = float(stats.chi2.sf(chi2, ndf))
    err = np.sqrt(np.abs(np.diag(cov)))
    return {"stochastic": abs(float(a)), "stochastic_err": float(err[0]), "constant": abs(float(b)),
            "constant_err": float(err[1]), "chi2": chi2, "ndf": ndf, "chi2_ndf": chi2 / ndf, "p_value": p,
            "accepted": p >= FIT_P_MIN, "p_min": FIT_P_MIN}


def outliers(true: np.ndarray, pred: np.ndarray, std: np.ndarray | None, which: np.ndarray) -> dict[str, Any]:
    """Catastrophic outliers: |pull| > :data:`OUTLIER_CUT`, or without error bars |residual - median| beyond
    :data:`OUTLIER_CUT` robust σ of the event's bin of the true value.

    Returns ``count``, ``fraction``, ``events`` (judged), ``criterion`` and ``per_bin`` counts (all bins).
    """
    res = pred - true
    if std is not None:
        ok = np.isfinite(res) & np.isfinite(std) & (std > 0)
        bad = np.zeros(len(res), bool)
        bad[ok] = np.abs(res[ok] / std[ok]) > OUTLIER_CUT
        criterion = f"|pull| > {OUTLIER_CUT:g} ((pred - true) / σ)"
    else:
        ok = np.isfinite(res)
        bad = np.zeros(len(res), bool)
        for b in np.unique(which[ok]):
            sel = ok & (which == b)
            dev = np.abs(res[sel] - np.median(res[sel]))
            bad[sel] = dev > OUTLIER_CUT * robust_sigma(res[sel])
        criterion = f"|residual - median| > {OUTLIER_CUT:g} robust σ of its bin"
    n = int(ok.sum())
    return {"count": int(bad.sum()), "fraction": float(bad.sum() / n) if n else 0.0, "events": n,
            "criterion": criterion,
            "per_bin": np.bincount(which[bad], minlength=int(which.max(initial=0)) + 1).tolist()}


def worst_bin(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, Any] | None:
    """The bin with the largest model σ relative to the best baseline in it (or the largest σ without one)."""
    if not rows:
        return None
    model = np.array([r[key] for r in rows], dtype=np.float64)
    if rows[0]["baselines"]:
        best = [min(r["baselines"].items(), key=lambda kv: np.nan_to_num(kv[1][key], nan=np.inf)) for r in rows]
        ref = np.array([v[key] for _, v in best], dtype=np.float64)
        ratio = np.where(ref > 0, model / np.where(ref > 0, ref, 1), np.nan)
        i = int(np.nanargmax(ratio)) if np.isfinite(ratio).any() else int(np.nanargmax(model))
        return {"index": i, "range": rows[i]["range"], "value": float(model[i]), "reference": best[i][0],
                "reference_value": float(ref[i]), "ratio": float(ratio[i]),
                "reason": f"largest {_NAMES[key]} relative to the best baseline in the bin"}
    i = int(np.nanargmax(model))
    return {"index": i, "range": rows[i]["range"], "value": float(model[i]), "reason": f"largest {_NAMES[key]}"}


def compare(rows: Sequence[Mapping[str, Any]], label: str, key: str) -> dict[str, Any]:
    """Bin by bin, is the model's σ below the baseline ``label``'s? Counts and the bins where it is not."""
    better = [i for i, r in enumerate(rows) if r[key] < r["baselines"][label][key]]
    worse = [i for i, r in enumerate(rows) if r[key] > r["baselines"][label][key]]
    return {"bins": len(rows), "better": len(better), "worse": len(worse), "worse_bins": worse, "key": key}


def interval_verdict(model: float, model_err: float, base: float, base_err: float) -> str:
    """``better`` when the model's σ ± its error lies wholly below the baseline's σ ± its error, ``worse`` when
    wholly above, else ``not resolved`` (the two are measured on the same events, so treating their errors
    as independent is conservative); ``not comparable`` when either is undefined."""
    if not all(np.isfinite([model, model_err, base, base_err])):
        return "not comparable"
    if model + model_err < base - base_err:
        return "better"
    if model - model_err > base + base_err:
        return "worse"
    return "not resolved"
