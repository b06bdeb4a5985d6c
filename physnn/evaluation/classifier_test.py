"""The classifier test of a fast simulation (CaloChallenge 2022, Krause et al., arXiv:2410.21611).

A small network is trained to tell reference from candidate showers; its
ROC AUC on a held-out split is 0.5 when it cannot tell them apart and 1 when
it always can.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from physnn.errors import ConfigError


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    return [((x - mean) / std).astype(np.float32) for x in (train, *others)]


def classifier_test(reference: np.ndarray, candidate: np.ndarray, *, seed: int = 0, hidden: Sequence[int] = (256, 256),
                    dropout: float = 0.2, epochs: int = 60, patience: int = 6, batch_size: int = 256,
                    lr: float = 1e-3, n_boot: int = 200) -> dict[str, Any]:
    """Train a network to tell candidate (1) from reference (0) events; its AUC on a held-out split.

    The events of each sample are split 60/20/20 into train, validation
    (early stopping on its loss) and test. Inputs are standardised with the
    training split's mean and width.

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
    import torch
    from torch import nn

    from physnn.evaluation.metrics import roc_with_band

    n = min(len(reference), len(candidate))
    if n < 10:
        msg = f"the classifier test needs at least 10 events of each sample, got {len(reference)} and {len(candidate)}"
        raise ConfigError(msg)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    labels: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label, sample in ((0, reference), (1, candidate)):
        idx = rng.permutation(len(sample))[:n]
        cuts = [int(0.6 * n), int(0.8 * n)]
        for name, part in zip(("train", "val", "test"), np.split(idx, cuts), strict=True):
            parts[name].append(np.nan_to_num(np.asarray(sample[part], dtype=np.float64)))
            labels[name].append(np.full(len(part), label, dtype=np.float32))
    x = {k: np.concatenate(v) for k, v in parts.items()}
    y = {k: torch.from_numpy(np.concatenate(v)) for k, v in labels.items()}
    x_train, x_val, x_test = (torch.from_numpy(a) for a in _standardize(x["train"], x["val"], x["test"]))

    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = x_train.shape[1]
    for h in hidden:
        layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        width = h
    net = nn.Sequential(*layers, nn.Linear(width, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    best, best_state, waited, trained = float("inf"), None, 0, 0
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=gen)
        for lo in range(0, len(order), batch_size):
            batch = order[lo:lo + batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x_train[batch])[:, 0], y["train"][batch]).backward()
            opt.step()
        trained += 1
        net.eval()
        with torch.no_grad():
            val = float(loss_fn(net(x_val)[:, 0], y["val"]))
        if val < best - 1e-4:
            best, waited = val, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    with torch.no_grad():
        score = net(x_test)[:, 0].numpy()
    roc = roc_with_band(y["test"].numpy(), score, n_boot=n_boot, seed=seed)
    return {"auc": roc["auc"], "auc_low": roc.get("auc_low"), "auc_high": roc.get("auc_high"), "epochs": trained,
            "events": {k: len(v) // 2 for k, v in x.items()}, "inputs": int(x_train.shape[1])}
