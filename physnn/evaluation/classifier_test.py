"""The classifier test of a fast simulation (CaloChallenge 2022, Krause et al., arXiv:2410.21611).

A small network (scikit-learn's MLP) is trained to tell reference from
candidate showers; its ROC AUC on a held-out split is 0.5 when it cannot tell
them apart and 1 when it always can.
"""

from __future__ import annotations

import copy
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
    events of each sample are split 60/20/20 into train, validation and test; training stops when the
    validation log-loss has not improved for ``patience`` epochs, and the epoch with the lowest one is kept
    (a loss, not the accuracy: near AUC 0.5 the accuracy is too coarse to pick an epoch by).

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
    from sklearn.preprocessing import StandardScaler

    from physnn.evaluation.metrics import roc_with_band

    n = min(len(reference), len(candidate))
    if n < 10:
        msg = f"the classifier test needs at least 10 events of each sample, got {len(reference)} and {len(candidate)}"
        raise ConfigError(msg)
    x, y = _split(reference, candidate, n, np.random.default_rng(seed))
    scaler = StandardScaler().fit(x["train"])
    x = {name: scaler.transform(part) for name, part in x.items()}
    mlp, trained = _fit(x, y, hidden=hidden, alpha=alpha, epochs=epochs, patience=patience,
                        batch_size=min(batch_size, len(y["train"])), lr=lr, seed=seed)
    roc = roc_with_band(y["test"], mlp.predict_proba(x["test"])[:, 1], n_boot=n_boot, seed=seed)
    return {"auc": roc["auc"], "auc_low": roc.get("auc_low"), "auc_high": roc.get("auc_high"), "epochs": trained,
            "events": {name: len(part) // 2 for name, part in y.items()}, "inputs": int(x["train"].shape[1])}


def _split(reference: np.ndarray, candidate: np.ndarray, n: int, rng: np.random.Generator
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``n`` events of each sample, 60/20/20 into train, val and test (inputs float32, NaN -> 0; labels)."""
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    labels: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label, sample in ((0, reference), (1, candidate)):
        idx = rng.permutation(len(sample))[:n]
        for name, part in zip(parts, np.split(idx, [int(0.6 * n), int(0.8 * n)]), strict=True):
            parts[name].append(np.nan_to_num(np.asarray(sample[part], dtype=np.float32)))
            labels[name].append(np.full(len(part), label))
    return ({k: np.concatenate(v) for k, v in parts.items()}, {k: np.concatenate(v) for k, v in labels.items()})


def _fit(x: dict[str, np.ndarray], y: dict[str, np.ndarray], *, hidden: Sequence[int], alpha: float, epochs: int,
         patience: int, batch_size: int, lr: float, seed: int) -> tuple[Any, int]:
    """The MLP trained epoch by epoch (``partial_fit``), the epoch of lowest validation log-loss kept."""
    from sklearn.metrics import log_loss
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(hidden_layer_sizes=tuple(hidden), alpha=alpha, batch_size=batch_size,
                        learning_rate_init=lr, random_state=seed)
    best, best_model, waited, trained = np.inf, None, 0, 0
    for _ in range(epochs):
        mlp.partial_fit(x["train"], y["train"], classes=np.array([0, 1]))
        trained += 1
        loss = log_loss(y["val"], mlp.predict_proba(x["val"]), labels=[0, 1])
        if loss < best - 1e-4:
            best, best_model, waited = loss, copy.deepcopy(mlp), 0
        else:
            waited += 1
            if waited >= patience:
                break
    return (best_model if best_model is not None else mlp), trained
