"""The shape every physnn model shares: an input adapter, then stages in order.

``forward(batch) = stages[-1](... stages[0](adapt(batch)))``

Writing a network as a flat list of stages buys two things every family uses:

- **MC dropout with prefix caching** (:mod:`physnn.models.mc_dropout`):
  the stages before the first dropout are deterministic, so they run once per
  event and only the rest runs T times.
- **Transfer learning** (:mod:`physnn.training.transfer`): the first
  ``n_features`` stages (plus the adapter) are the feature extractor that can
  be copied into a new model, frozen or fine-tuned; the rest is the head.

Stages that need more than the running tensor (scalars joined after the
feature extractor, the mask and lengths of a padded sequence) subclass
:class:`SideInput` and also receive the batch's side inputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn

#: Batch entries passed to :class:`SideInput` stages next to the running tensor (``baseline``: the targets'
#: baselines, :mod:`physnn.models.target_maps`).
SIDE_KEYS = ("scalars", "mask", "length", "kinematics", "baseline")
DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


class SideInput(nn.Module):
    """A stage that also sees the batch's side inputs (e.g. ``scalars``)."""

    def forward(self, x: torch.Tensor, side: Mapping[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class JoinScalars(SideInput):
    """Concatenate the event's scalar inputs to the flat features."""

    def forward(self, x: torch.Tensor, side: Mapping[str, torch.Tensor]) -> torch.Tensor:
        scalars = side.get("scalars")
        if scalars is None or scalars.shape[-1] == 0:
            return x
        return torch.cat([x, scalars.to(x.dtype)], dim=-1)


#: whether :func:`dropout_always` draws masks (off inside :func:`undrawn_dropout`)
_DRAWING = {"on": True}


@contextlib.contextmanager
def undrawn_dropout() -> Iterator[None]:
    """:func:`dropout_always` is the identity until exit: the deterministic pass, the central value, of an
    exported MC-dropout graph (:class:`~physnn.models.graph.PhysicsModel`; a Python switch read while tracing)."""
    _DRAWING["on"] = False
    try:
        yield
    finally:
        _DRAWING["on"] = True


def dropout_always(x: torch.Tensor, p: float, *, channels: bool = False) -> torch.Tensor:
    """Dropout whatever the mode, the mask drawn with ``rand_like``: MC dropout inside an exported graph.

    ``channels`` drops whole feature maps (``Dropout1d/2d/3d``).
    """
    if not _DRAWING["on"]:
        return x
    like = x[(slice(None), slice(None)) + (slice(0, 1),) * (x.dim() - 2)] if channels else x
    keep = torch.rand_like(like) >= p
    return x * keep.to(x.dtype) / (1.0 - p)


def is_stochastic(module: nn.Module) -> bool:
    """True when ``module`` holds a dropout layer (or an RNN with dropout between layers)."""
    for m in module.modules():
        if isinstance(m, DROPOUT_TYPES):
            return True
        if isinstance(m, nn.RNNBase) and m.dropout > 0:
            return True
    return False


class StagedModel(nn.Module):
    """Base class of registry models.

    Parameters
    ----------
    stages
        The network after the adapter, in order.
    n_features
        How many leading stages form the feature extractor.
    adapter
        Optional module applied inside :meth:`adapt` (e.g. an embedding and a
        recurrent layer); it belongs to the feature extractor.
    """

    input_key = "image"

    def __init__(self, stages: list[nn.Module], n_features: int, adapter: nn.Module | None = None) -> None:
        super().__init__()
        self.adapter = adapter
        self.stages = nn.ModuleList(stages)
        self.n_features = n_features
        self.regularized: list[tuple[str, float, float]] = []

    # -- the forward pass, split in parts ---------------------------------
    def adapt(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Turn the batch's input tensors into the tensor the first stage takes."""
        return batch[self.input_key]

    @staticmethod
    def side(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The side inputs that :class:`SideInput` stages read (scalars; a sequence's mask and lengths)."""
        return {k: batch[k] for k in SIDE_KEYS if k in batch}

    def run(self, x: torch.Tensor, side: Mapping[str, torch.Tensor], start: int = 0,
            stop: int | None = None) -> torch.Tensor:
        """Apply stages ``start:stop`` to ``x``."""
        for stage in self.stages[start:stop]:
            x = stage(x, side) if isinstance(stage, SideInput) else stage(x)
        return x

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.run(self.adapt(batch), self.side(batch))

    def encode(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The feature extractor's output, flattened to (N, D): an autoencoder's code."""
        return self.run(self.adapt(batch), self.side(batch), 0, self.n_features).flatten(1)

    # -- what MC dropout and transfer learning need ------------------------
    def first_stochastic_stage(self) -> int:
        """Index of the first stage holding dropout; -1 if the adapter is stochastic.

        Returns ``len(stages)`` when the model has no dropout at all.
        """
        if self.adapter is not None and is_stochastic(self.adapter):
            return -1
        for i, stage in enumerate(self.stages):
            if is_stochastic(stage):
                return i
        return len(self.stages)

    def feature_modules(self) -> list[nn.Module]:
        """The modules of the feature extractor (adapter + first ``n_features`` stages)."""
        mods = [] if self.adapter is None else [self.adapter]
        return mods + list(self.stages[: self.n_features])

    def feature_prefixes(self) -> list[str]:
        """State-dict key prefixes of the feature extractor."""
        prefixes = [] if self.adapter is None else ["adapter."]
        return prefixes + [f"stages.{i}." for i in range(self.n_features)]

    def penalty(self) -> torch.Tensor | float:
        """The L1/L2 regularisation term of the layers that asked for one."""
        total: torch.Tensor | float = 0.0
        for name, l1, l2 in self.regularized:
            weight = self.get_submodule(name).weight
            if l1:
                total = total + l1 * weight.abs().sum()
            if l2:
                total = total + l2 * weight.pow(2).sum()
        return total
