"""Photon identification, network against the experiments' classic: per energy bin, with bootstrap bands.

- :func:`shower_shape_scores`: the baseline the experiments use, a gradient-boosted
  classifier (scikit-learn's ``HistGradientBoostingClassifier``) on the shower-shape
  variables of :mod:`physnn.physics.photon_id`, fitted on the training split;
- :func:`discrimination_by_bin`: per bin of the true energy, the ROC AUC and the
  background rejection 1/ε_B at a fixed signal efficiency, each with a bootstrap
  68% interval (the same resampled events for both).

For photon/π0 the photon is what an analysis keeps: with ``score`` = P(π0) (class 1), the
rejection at 80% photon efficiency is 1 / (the fraction of π0 kept by the loosest cut on
P(photon) = 1 - score that keeps 80% of the photons), :func:`physnn.evaluation.metrics.rejection_at`,
the report's definition.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from physnn.errors import ConfigError
from physnn.evaluation.metrics import rejection_at
from physnn.physics.photon_id import photon_id_variables

__all__ = ["discrimination_by_bin", "shower_shape_scores"]


def shower_shape_scores(images: np.ndarray, labels: np.ndarray, train: np.ndarray, *,
                        seed: int = 0, strips: np.ndarray | None = None) -> np.ndarray:
    """P(class 1) of every event from a gradient-boosted classifier on its shower shapes.

    Parameters
    ----------
    images
        (N, layers, H, W) cell energies.
    labels
        0/1 truth per event (used for the ``train`` events only).
    train
        Boolean mask of the events to fit on (the training split); the scores of the others are honest.
    seed
        Seeds the classifier's validation split (early stopping on 10% of ``train``).
    strips
        (N, rows, cols) cells of a strip layer, if the detector has one: its variables join the others.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    train = np.asarray(train, dtype=bool)
    if train.sum() < 20 or len(np.unique(labels[train])) < 2:
        msg = "the shower-shape baseline needs training events of both classes (at least 20 events)"
        raise ConfigError(msg)
    variables = photon_id_variables(images, strips)
    x = np.stack([variables[k] for k in sorted(variables)], axis=1)
    model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, early_stopping=True,
                                           validation_fraction=0.1, n_iter_no_change=20, random_state=seed)
    model.fit(x[train], np.asarray(labels)[train])
    return model.predict_proba(x)[:, 1]


def _background_efficiency(y: np.ndarray, score: np.ndarray, efficiency: float) -> float:
    """ε_B of the cut that keeps ``efficiency`` of the photons (class 0), ``score`` being P(π0) (class 1):
    :func:`physnn.evaluation.metrics.rejection_at` on P(photon) = 1 - ``score``, as the report judges it."""
    return rejection_at(y, 1 - np.asarray(score), efficiency, signal=0)["background_efficiency"]


def _bootstrap(y: np.ndarray, score: np.ndarray, efficiency: float, n_boot: int,
               rng: np.random.Generator) -> dict[str, float]:
    """68% intervals of the AUC and of the rejection (from those of ε_B, so that a resample that rejects
    every background event gives an infinite upper bound, not a NaN)."""
    from sklearn.metrics import roc_auc_score

    aucs, kept = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        aucs.append(roc_auc_score(y[idx], score[idx]))
        kept.append(_background_efficiency(y[idx], score[idx], efficiency))
    if not aucs:  # no resample (n_boot 0), or none with both classes: no interval
        return {}
    lo, hi = np.percentile(aucs, [16, 84])
    e_lo, e_hi = np.percentile(kept, [16, 84])
    return {"auc_low": float(lo), "auc_high": float(hi), "rejection_low": float(1 / e_hi) if e_hi > 0 else np.inf,
            "rejection_high": float(1 / e_lo) if e_lo > 0 else np.inf}


def discrimination_by_bin(y: np.ndarray, scores: dict[str, np.ndarray], energy: np.ndarray, edges: Sequence[float],
                          *, efficiency: float = 0.8, n_boot: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """AUC and rejection at ``efficiency`` of class 0 per energy bin, for each named score.

    Parameters
    ----------
    y
        0/1 truth (class 1: the background to reject, e.g. π0).
    scores
        Name -> P(class 1) per event, e.g. ``{"CNN": ..., "shower shapes + BDT": ...}``.
    energy
        The binning variable per event (true energy).
    edges
        Bin edges; events outside are left out.
    efficiency
        The class-0 (photon) efficiency at which the rejection is quoted.
    n_boot
        Bootstrap resamples for the 68% intervals (the same events for every score).

    Returns
    -------
    list of dict
        Per bin and score: ``low``, ``high``, ``score``, ``n_signal`` (class 0), ``n_background``, ``auc``,
        ``rejection`` (inf when every class-1 event is rejected), and their ``_low``/``_high`` bounds (left
        out without resamples).
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(int)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        inside = (energy >= lo) & (energy < hi)
        if len(np.unique(y[inside])) < 2:
            continue
        for name, score in scores.items():
            rng = np.random.default_rng(seed)  # the same resamples for every score
            s = np.asarray(score)[inside]
            passed = _background_efficiency(y[inside], s, efficiency)
            row = {"low": float(lo), "high": float(hi), "score": name, "n_signal": int(np.sum(y[inside] == 0)),
                   "n_background": int(np.sum(y[inside] == 1)), "auc": float(roc_auc_score(y[inside], s)),
                   "rejection": float(1 / passed) if passed > 0 else float("inf")}
            rows.append({**row, **_bootstrap(y[inside], s, efficiency, n_boot, rng)})
    return rows
