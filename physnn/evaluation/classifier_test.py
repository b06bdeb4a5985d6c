"""The classifier test of a fast simulation (CaloChallenge 2022, Krause et al., arXiv:2410.21611).

A small network (scikit-learn's MLP) is trained to tell reference from
candidate showers; its ROC AUC on a held-out split is 0.5 when it cannot tell
them apart and 1 when it always can.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from physnn.errors import ConfigError


def classifier_test(reference: np.ndarray, candidate: np.ndarray, *, seed: int = 0, hidden: Sequence[int] = (256, 256),
                    alpha: float = 1e-4, epochs: int = 60, patience: int = 6, batch_size: int = 256,
                    lr: float = 1e-3, n_boot: int = 200) -> dict[str, Any]:
    """Train a network to tell candidate (1) from reference (0) events; its AUC on a held-out split.

    The network is scikit-learn's :class:`~sklearn.neural_network.MLPClassifier` (ReLU layers of ``hidden``
    widths, Adam, L2 penalty ``alpha``), on inputs standardised with the training split's mean and width. The
    events of each sample are split 60/20/20 into train, validation (early stopping: training ends when the
    validation accuracy has not improved for ``patience`` epochs) and test.

    Parameters
    ----------
    reference, candidate
        ``(N, features)`` inputs of each sample (NaNs are set to 0).
    seed
        Seeds the split, the weights and the batches.

    Returns
    -------
    dict
        ``auc`` on the test split with its bootstrap 68 % interval
        (``auc_low``, ``auc_high``), ``epochs`` trained, ``events``
        (train/val/test per sample), ``inputs``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from physnn.evaluation.metrics import roc_with_band

    n = min(len(reference), len(candidate))
    if n < 10:
        msg = f"the classifier test needs at least 10 events of each sample, got {len(reference)} and {len(candidate)}"
        raise ConfigError(msg)
    rng = np.random.default_rng(seed)
    fit_x, fit_y, test_x, test_y = [], [], [], []
    for label, sample in ((0, reference), (1, candidate)):
        idx = rng.permutation(len(sample))[:n]
        fit, test = np.split(idx, [int(0.8 * n)])
        fit_x.append(np.nan_to_num(np.asarray(sample[fit], dtype=np.float32)))
        test_x.append(np.nan_to_num(np.asarray(sample[test], dtype=np.float32)))
        fit_y.append(np.full(len(fit), label))
        test_y.append(np.full(len(test), label))
    mlp = MLPClassifier(hidden_layer_sizes=tuple(hidden), alpha=alpha, batch_size=min(batch_size, n),
                        learning_rate_init=lr, max_iter=epochs, early_stopping=True, validation_fraction=0.25,
                        n_iter_no_change=patience, random_state=seed)
    model = make_pipeline(StandardScaler(), mlp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: the epochs asked for are done
        model.fit(np.concatenate(fit_x), np.concatenate(fit_y))
    score = model.predict_proba(np.concatenate(test_x))[:, 1]
    roc = roc_with_band(np.concatenate(test_y), score, n_boot=n_boot, seed=seed)
    n_fit, n_test = len(fit_y[0]), len(test_y[0])
    n_val = int(np.ceil(0.25 * 2 * n_fit)) // 2  # scikit-learn's stratified validation share, per sample
    return {"auc": roc["auc"], "auc_low": roc.get("auc_low"), "auc_high": roc.get("auc_high"),
            "epochs": int(mlp.n_iter_), "events": {"train": n_fit - n_val, "val": n_val, "test": n_test},
            "inputs": int(fit_x[0].shape[1])}
