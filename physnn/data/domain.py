"""The domain of a run: what its training inputs looked like, to flag events that lie outside it.

A network answers for any input, and its error bars (MC dropout included) do
not grow where it never saw data: trained on 1-100 GeV showers, the demo's
energy CNN predicts 150-250 GeV showers 29 GeV low with 5 GeV error bars. The
domain of a run is a compact description of its training split, kept in the
checkpoint, against which every predicted event is checked.

Quantities per event, computed from the model's input tensors (after the run's
transform, the same at training and prediction):

- images: the sum of each channel (calorimeter layer) and of all channels;
- sequences: the number of elements, and per feature the smallest and largest
  value over the event's elements;
- scalars: each scalar.

The domain keeps the central interval ``[lo, hi]`` of every quantity that holds
all but a fraction ``tail`` of the training events on each side, with
``tail = false_flags / (2 k)`` for ``k`` quantities, so that about
``false_flags`` (default 0.5%) of fresh events like the training ones are
flagged, however many quantities there are (measured in
``tests/test_domain.py``; with fewer than ``2 k / false_flags`` training events
the intervals are the sample's extremes and the rate is about ``2 k / n``). An
event is **in domain** when every quantity lies within its interval; its
``ood_score`` is its largest excess beyond an interval, in units of that
interval's width (0 inside; 0.5 for an event half an interval's width above
the highest training events). A run also checks its events in the network's
feature space (:mod:`physnn.models.feature_domain`, another 0.5%), so that
about 1% of fresh events are flagged in all (0.5% for runs without a feature
domain: GANs, and denoisers trained on noisy copies of their inputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: Fraction of fresh events like the training ones that are flagged, over all quantities (half of the 1% of a
#: run's whole domain: the feature distance of physnn.models.feature_domain flags the other half).
FALSE_FLAGS = 0.005


def domain_quantities(inputs: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The per-event quantities a domain describes (see the module docs), float64 arrays of length N."""
    out: dict[str, np.ndarray] = {}
    if "image" in inputs:
        image = inputs["image"]  # summed in float64 without a float64 copy of the images
        flat = image.flatten(2) if image.ndim > 2 else image.reshape(len(image), 1, -1)
        per_channel = flat.sum(2, dtype=torch.float64)
        if per_channel.shape[1] > 1:
            for c in range(per_channel.shape[1]):
                out[f"image sum, channel {c}"] = per_channel[:, c].numpy()
        out["image sum"] = per_channel.sum(1).numpy()
    if "sequence" in inputs:
        seq, mask = inputs["sequence"].double(), inputs["mask"].bool()
        out["sequence length"] = mask.sum(1).double().numpy()
        for f in range(seq.shape[2]):
            values = seq[:, :, f]
            low = torch.where(mask, values, torch.full_like(values, np.inf)).amin(1)
            high = torch.where(mask, values, torch.full_like(values, -np.inf)).amax(1)
            empty = ~mask.any(1)  # an event without elements has no range: it sits at 0
            out[f"sequence feature {f} min"] = torch.where(empty, torch.zeros_like(low), low).numpy()
            out[f"sequence feature {f} max"] = torch.where(empty, torch.zeros_like(high), high).numpy()
    if "scalars" in inputs:
        scalars = inputs["scalars"].double()
        for s in range(scalars.shape[1]):
            out[f"scalar {s}"] = scalars[:, s].numpy()
    return out


@dataclass
class Domain:
    """The central interval ``[lo, hi]`` of each input quantity over a run's training split.

    Examples
    --------
    >>> train = {"scalars": torch.linspace(0, 1, 1001)[:, None]}
    >>> domain = Domain.fit(train)
    >>> domain.scores({"scalars": torch.tensor([[0.5], [1.5]])}).round(2).tolist()
    [0.0, 0.51]
    """

    names: list[str]
    lo: list[float]
    hi: list[float]
    tail: float = FALSE_FLAGS / 2
    events: int = 0

    @classmethod
    def fit(cls, inputs: Mapping[str, torch.Tensor], false_flags: float = FALSE_FLAGS) -> Domain:
        """The domain of the training inputs (the run's training split, or a uniform sample of it)."""
        quantities = domain_quantities(inputs)
        names = list(quantities)
        tail = false_flags / (2 * max(len(names), 1))
        lo = [float(np.quantile(quantities[k], tail)) for k in names]
        hi = [float(np.quantile(quantities[k], 1 - tail)) for k in names]
        n = len(next(iter(quantities.values()))) if quantities else 0
        return cls(names, lo, hi, tail, n)

    def scores(self, inputs: Mapping[str, torch.Tensor]) -> np.ndarray:
        """Each event's ``ood_score``: its largest excess beyond an interval, in units of the interval's width."""
        quantities = domain_quantities(inputs)
        n = len(next(iter(quantities.values()))) if quantities else 0
        score = np.zeros(n)
        for name, lo, hi in zip(self.names, self.lo, self.hi, strict=True):
            x = quantities[name]
            width = hi - lo if hi > lo else max(abs(hi), 1e-12)  # a constant quantity: any change is out
            excess = np.maximum(lo - x, x - hi) / width
            score = np.maximum(score, np.where(np.isfinite(x), excess, np.inf))
        return np.maximum(score, 0.0)

    def state(self) -> dict[str, Any]:
        """Plain types for a checkpoint."""
        return {"names": self.names, "lo": self.lo, "hi": self.hi, "tail": self.tail, "events": self.events}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Domain:
        """Rebuild from :meth:`state`."""
        return cls(list(state["names"]), list(state["lo"]), list(state["hi"]), float(state["tail"]),
                   int(state.get("events", 0)))

    def describe(self) -> str:
        """One line: how many quantities, from how many training events."""
        return (f"the central {100 * (1 - 2 * self.tail):.2f}% of {len(self.names)} input quantities over "
                f"{self.events:,} training events")
