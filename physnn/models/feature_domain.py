"""The domain of a run in the network's own feature space: a Mahalanobis distance.

The input domain (:mod:`physnn.data.domain`) checks each input quantity on its
own: an event whose layer energies are each ordinary but whose shower looks
like nothing in training (a noisier detector: many small cells, the same sums)
passes it. The feature extractor's output (``model.encode``, the convolutions of
a CNN, the recurrent layer of an LSTM, an autoencoder's code) sees the whole
event. Following Lee et al. 2018 ("A simple unified framework for detecting
out-of-distribution samples") a Gaussian is fitted to the training events'
features (mean and a Ledoit-Wolf shrunk covariance, scikit-learn), and an
event's squared Mahalanobis distance ``d²`` to it is its score.

The cut is set on the **validation** split, where the network's features are
those of fresh events (on the training events they are tighter): ``d²`` above
the validation events' ``ceil((n + 1)(1 - false_flags))``-th smallest is out
of the domain, so that at most ``false_flags`` of events like the validation
ones are flagged, on average over validation samples (split conformal, as
:mod:`physnn.models.conformal`; below ``1 / false_flags`` validation events
the cut is their largest distance, and the rate is about ``1 / (n + 1)``);
with a few hundred validation events the realised rate scatters by about as
much again. ``predict``,
``denoise`` and ``encode`` write ``feature_score = d² / cut`` (1 at the cut).
Feature maps are averaged over their positions (one number per channel), and
features wider than :data:`MAX_DIMENSIONS` are first projected on their
leading principal components. A run trained on altered inputs (a denoiser fed
noisy copies) gets no feature domain: the files' events are not what its
network saw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from physnn.data.dataset import TRUTH
from physnn.models.base import StagedModel
from physnn.models.mc_dropout import set_dropout

__all__ = ["FEATURE_FALSE_FLAGS", "FeatureDomain", "features"]

#: The fraction of events like the validation ones that the feature distance flags.
FEATURE_FALSE_FLAGS = 0.005
#: Features wider than this are projected on this many principal components (fitted on a subset) first.
MAX_DIMENSIONS = 256
#: The training events the Gaussian is fitted on, and the validation events the cut is set on, at most.
MAX_EVENTS = 20_000


@torch.no_grad()
def features(model: StagedModel, batches: Iterable[Mapping[str, torch.Tensor]], device: torch.device,
             limit: int | None = None) -> np.ndarray:
    """The feature extractor's output of every event of ``batches`` (dropout off), (N, D) float32.

    A feature map (a CNN's convolutions, a convolutional autoencoder's code) is averaged over its positions,
    one number per channel (as Lee et al. do): the domain is then about what the network saw, not where,
    and a map of 32 x 24 x 24 numbers per event is 32 numbers, not 18,432."""
    set_dropout(model, False)
    out, n = [], 0
    for batch in batches:
        inputs = {k: v.to(device) for k, v in batch.items() if k not in TRUTH}
        x = model.run(model.adapt(inputs), model.side(inputs), 0, model.n_features)
        x = x.flatten(2).mean(2) if x.dim() > 2 else x
        out.append(x.float().cpu().numpy())
        n += len(out[-1])
        if limit is not None and n >= limit:
            break
    return np.concatenate(out)[:limit]


def _conformal_cut(distances: np.ndarray, false_flags: float) -> float:
    """The ``ceil((n + 1)(1 - false_flags))``-th smallest of ``n`` validation distances: a fresh event like them
    lies above it with probability at most ``false_flags`` (split conformal; the largest when n is small)."""
    ordered = np.sort(distances)
    rank = min(math.ceil((len(ordered) + 1) * (1 - false_flags)), len(ordered))
    return float(ordered[rank - 1])


@dataclass
class FeatureDomain:
    """A Gaussian of the training features: ``d² = |(f - center) @ whiten|²``, out of the domain above ``cut``."""

    center: torch.Tensor  # (D,)
    whiten: torch.Tensor  # (D, K)
    cut: float
    false_flags: float = FEATURE_FALSE_FLAGS
    events: int = 0

    @classmethod
    def fit(cls, train: np.ndarray, val: np.ndarray, false_flags: float = FEATURE_FALSE_FLAGS) -> FeatureDomain:
        """Fit on training features (N, D), set the cut on validation features (M, D).

        Features constant over the training events (a dead unit) are left out; wider than
        :data:`MAX_DIMENSIONS`, the features are projected on their leading principal components (of at most
        5,000 training events). Raises ``ValueError`` when nothing is left to fit (no varying feature, or
        non-finite features)."""
        from sklearn.covariance import LedoitWolf

        train, val = train.astype(np.float64), val.astype(np.float64)
        if not (np.isfinite(train).all() and np.isfinite(val).all()):
            raise ValueError("non-finite features")
        center = train.mean(0)
        basis = np.eye(train.shape[1])[:, train.std(0) > 1e-12 * (1 + np.abs(center))]
        if basis.shape[1] == 0:
            raise ValueError("no feature varies over the training events")
        if basis.shape[1] > MAX_DIMENSIONS:  # the leading principal components
            _, _, vt = np.linalg.svd((train - center)[:5000] @ basis, full_matrices=False)
            basis = basis @ vt[:MAX_DIMENSIONS].T
        precision = LedoitWolf().fit((train - center) @ basis).precision_
        factor = np.linalg.cholesky((precision + precision.T) / 2)  # precision = L L^T: d² = |x L|²
        domain = cls(torch.from_numpy(center), torch.from_numpy(basis @ factor), 0.0, false_flags, len(train))
        domain.cut = _conformal_cut(domain.distances(val), false_flags)
        return domain

    def distances(self, feats: np.ndarray) -> np.ndarray:
        """The squared Mahalanobis distances of features (N, D)."""
        z = (torch.as_tensor(feats, dtype=torch.float64) - self.center) @ self.whiten
        return z.pow(2).sum(1).numpy()

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """``feature_score`` = d² / cut (> 1: outside; NaN features: inf)."""
        d2 = self.distances(feats) / max(self.cut, 1e-300)
        return np.where(np.isfinite(d2), d2, np.inf)

    def describe(self) -> str:
        """One phrase for the terminal."""
        return (f"a Mahalanobis distance of {self.center.numel()} features, cut at the validation events' "
                f"{1 - self.false_flags:.1%} quantile")

    def state(self) -> dict[str, Any]:
        """Tensors and plain types for a checkpoint (``weights_only``-safe)."""
        return {"center": self.center, "whiten": self.whiten, "cut": self.cut, "false_flags": self.false_flags,
                "events": self.events}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureDomain:
        """Rebuild from :meth:`state`."""
        return cls(state["center"].double(), state["whiten"].double(), float(state["cut"]),
                   float(state["false_flags"]), int(state["events"]))
