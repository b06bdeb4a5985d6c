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

__all__ = ["ShowerShapeBDT", "discrimination_by_bin", "shower_shape_scores"]


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
    train = np.asarray(train, dtype=bool)
    variables = _variables(images, strips)
    return ShowerShapeBDT(variables[train], np.asarray(labels)[train], seed=seed).scores_of(variables)


class ShowerShapeBDT:
    """The experiments' baseline: scikit-learn's ``HistGradientBoostingClassifier`` on shower-shape variables.

    Fit it on the showers of one sample and score those of another (an independent test sample) with
    :meth:`scores`; :func:`shower_shape_scores` does both on one sample.

    Parameters
    ----------
    variables
        (N, V) shower-shape variables of the training showers (:meth:`fit` computes them from cells).
    labels
        0/1 truth per training shower.
    seed
        Seeds the classifier's validation split (early stopping on 10% of the showers).
    """

    def __init__(self, variables: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        if len(labels) < 20 or len(np.unique(labels)) < 2:
            msg = "the shower-shape baseline needs training events of both classes (at least 20 events)"
            raise ConfigError(msg)
        self.model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, early_stopping=True,
                                                    validation_fraction=0.1, n_iter_no_change=20, random_state=seed)
        self.model.fit(variables, labels)

    @classmethod
    def fit(cls, images: np.ndarray, labels: np.ndarray, *, seed: int = 0,
            strips: np.ndarray | None = None) -> ShowerShapeBDT:
        """Fit on the cells (and strips) of the training showers."""
        return cls(_variables(images, strips), np.asarray(labels), seed=seed)

    def scores(self, images: np.ndarray, strips: np.ndarray | None = None) -> np.ndarray:
        """P(class 1) of each shower from its cells (and strips, if the fit had them)."""
        return self.scores_of(_variables(images, strips))

    def scores_of(self, variables: np.ndarray) -> np.ndarray:
        """P(class 1) of each shower from its shower-shape variables."""
        return self.model.predict_proba(variables)[:, 1]


def _variables(images: np.ndarray, strips: np.ndarray | None) -> np.ndarray:
    """(N, V) shower-shape variables, in the order of their sorted names."""
    variables = photon_id_variables(images, strips)
    return np.stack([variables[k] for k in sorted(variables)], axis=1)
