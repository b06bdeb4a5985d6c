"""Photon identification, network against the experiments' classic: per energy bin, with bootstrap bands.

- :func:`shower_shape_scores`: the baseline the experiments use, a gradient-boosted
  classifier (scikit-learn's ``HistGradientBoostingClassifier``) on the shower-shape
  variables of :mod:`physnn.physics.photon_id`, fitted on the training split;
- :func:`discrimination_by_bin` (from :mod:`physnn.evaluation.discrimination`, where
  ``physnn evaluate --bins-of`` uses it too): per bin of the true energy, the ROC AUC and the
  background rejection 1/ε_B at a fixed signal efficiency, each with a bootstrap
  68% interval (the same resampled events for both).

For photon/π0 the photon is what an analysis keeps: with ``score`` = P(π0) (class 1), the
rejection at 80% photon efficiency is 1 / (the fraction of π0 kept by the loosest cut on
P(photon) = 1 - score that keeps 80% of the photons), :func:`physnn.evaluation.metrics.rejection_at`,
the report's definition.
"""

from __future__ import annotations

import numpy as np

from physnn.errors import ConfigError
from physnn.evaluation.discrimination import discrimination_by_bin
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
