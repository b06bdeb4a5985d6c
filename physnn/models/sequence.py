"""What every sequence model shares: per-particle embedding, masks and readout.

A batch of events arrives padded: ``sequence`` (B, T, F) with zeros beyond
each event's length, ``mask`` (B, T) and ``length`` (B,) (see
:func:`physnn.data.convert.pad_sequences`). Three rules keep the padding from
ever reaching a prediction:

- the batch is trimmed to its longest event (:meth:`SequenceModel.adapt`):
  less work, and the padding length of the data config cannot matter;
- per-particle tensors are multiplied by the mask after every layer that can
  make padded positions non-zero (a bias, a convolution);
- the event's vector is read from real elements only: the true last element
  (``last``) or a masked ``mean``/``max``/``sum``/``attention`` pooling.

An event with no particle is seen as one particle of zeros, so every readout
is defined. A model is built as stages ``[embedding, encoder, scalars, head...,
output]``; the embedding and the encoder are the feature extractor that
transfer learning reuses, and MC dropout caches everything before the first
dropout (the embedding and, without dropout between recurrent layers, the
encoder too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from physnn.config import Strict
from physnn.models.base import JoinScalars, SideInput, StagedModel
from physnn.models.layers import Activation, Dense, Dropout, Layer, StackBuilder, initialize, stack
from physnn.models.registry import ModelIO

#: Layers allowed in the per-particle embedding (applied to each particle alone).
EmbedLayer = Annotated[Dense | Dropout | Activation, Field(discriminator="type")]
Readout = Literal["last", "mean", "max", "sum", "attention"]

DEFAULT_EMBEDDING = [{"type": "dense", "units": 32}]
DEFAULT_HEAD = [{"type": "dense", "units": 64, "kernel_initializer": "he_normal"}, {"type": "dropout", "rate": 0.2}]


def masks(side: Mapping[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mask (B, T) and lengths (B,) of ``x`` (B, T, ...), an empty event counting as one zero particle."""
    b, t = x.shape[0], x.shape[1]
    if "length" in side:
        length = side["length"].clamp(min=1)
    elif "mask" in side:
        length = side["mask"][:, :t].sum(1).clamp(min=1)
    else:  # a bare tensor: every position is real
        length = torch.full((b,), t, dtype=torch.long, device=x.device)
    length = length.clamp(max=t)
    mask = torch.arange(t, device=x.device)[None, :] < length[:, None]
    return mask, length


class ParticleEmbedding(SideInput):
    """Per-particle dense layers, then zeros at padded positions."""

    def __init__(self, layers: nn.Sequential) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor, side: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mask, _ = masks(side, x)
        return self.layers(x) * mask.unsqueeze(-1).to(x.dtype)


class MaskedReadout(nn.Module):
    """From per-particle outputs (B, T, W) to one vector per event (B, W), ignoring padding.

    Parameters
    ----------
    mode
        ``last``: the output at each event's true last element (for a
        bidirectional RNN, the forward half there and the backward half at
        the first element, i.e. both final states); ``mean``, ``max``,
        ``sum``: masked pooling; ``attention``: a learnt masked softmax
        weighting of the elements.
    width
        W, the width of the per-particle outputs.
    bidirectional
        Whether the outputs are [forward, backward] halves.
    """

    def __init__(self, mode: str, width: int, bidirectional: bool = False) -> None:
        super().__init__()
        self.mode = mode
        self.bidirectional = bidirectional
        self.score = nn.Linear(width, 1) if mode == "attention" else None

    def forward(self, out: torch.Tensor, mask: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        if self.mode == "last":
            last = out[torch.arange(out.shape[0], device=out.device), length - 1]
            if self.bidirectional:
                half = out.shape[-1] // 2
                return torch.cat([last[:, :half], out[:, 0, half:]], dim=-1)
            return last
        keep = mask.unsqueeze(-1)
        if self.mode == "max":
            return out.masked_fill(~keep, float("-inf")).amax(dim=1)
        if self.mode == "attention":
            assert self.score is not None
            logits = self.score(out).masked_fill(~keep, float("-inf"))
            return (torch.softmax(logits, dim=1) * out).sum(dim=1)
        total = (out * keep.to(out.dtype)).sum(dim=1)
        return total / length.unsqueeze(-1).to(out.dtype) if self.mode == "mean" else total


class SequenceModel(StagedModel):
    """A registry model on padded sequences; trims each batch to its longest event."""

    input_key = "sequence"

    def adapt(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The sequence trimmed to the batch's longest event, with zeros wherever the mask is off."""
        x = batch["sequence"]
        if "length" in batch and x.shape[1] > 1:
            longest = max(int(batch["length"].max()), 1) if batch["length"].numel() else 1
            x = x[:, :longest]
        if "mask" in batch:
            x = x * batch["mask"][:, : x.shape[1], None].to(x.dtype)
        return x


class SequenceParams(Strict):
    """Parameters every sequence model shares (the embedding, the readout and the head).

    Attributes
    ----------
    embedding
        Per-particle layers (dense, dropout, activation) applied to each
        particle's features before the encoder; ``[]`` feeds the
        standardised features directly.
    readout
        How the event vector is read from the per-particle outputs: ``last``
        (the true last element), ``mean``, ``max``, ``sum`` or ``attention``
        over the real elements.
    head
        Dense and dropout layers after the readout (and the scalars); the
        output layer is added for the task.
    """

    embedding: list[EmbedLayer] = Field(default_factory=lambda: list(DEFAULT_EMBEDDING), validate_default=True)
    readout: Readout = "last"
    head: list[Layer] = Field(default_factory=lambda: list(DEFAULT_HEAD), validate_default=True)


def build_sequence_model(name: str, params: SequenceParams, io: ModelIO,
                         encoder: Callable[[int], tuple[SideInput, int]],
                         particles: Callable[[nn.Sequential], SideInput] = ParticleEmbedding) -> SequenceModel:
    """Assemble ``[embedding, encoder, scalars, head..., output]`` for a sequence model.

    Parameters
    ----------
    name
        The registry name (for messages).
    params
        The model's parameters.
    io
        Input/output shapes; ``io.sequence`` must be set.
    encoder
        Called with the embedding width; returns the encoder stage and the
        width of the event vector it produces.
    particles
        Wraps the embedding layers into the first stage (default
        :class:`ParticleEmbedding`); the stage keeps them as ``.layers``.
    """
    from physnn.errors import ConfigError

    if io.sequence is None:
        msg = f"model {name!r} needs a sequence input: add sequence: {{features: [...]}} to the data config"
        raise ConfigError(msg)
    for i, spec in enumerate(params.embedding):
        if getattr(spec, "batch_norm", False) or getattr(spec, "spatial", False):
            what = "batch_norm" if getattr(spec, "batch_norm", False) else "spatial dropout"
            msg = (f"model {name!r}: embedding[{i}] ({spec.type}): {what} is not supported on per-particle "
                   "layers (padded particles would enter it); use it in the head")
            raise ConfigError(msg)
    builder = StackBuilder((io.sequence[1],), 1)
    try:
        embed, embed_regs = stack(params.embedding, builder, "embedding")
        enc, width = encoder(builder.shape[0])
        builder.shape = (width + io.scalars,)
        head, head_regs = stack(params.head, builder, "head")
    except ValueError as err:
        msg = f"model {name!r}: {err}"
        raise ConfigError(msg) from None
    output = nn.Linear(builder.shape[0], io.outputs)
    initialize(output, "glorot_uniform", "zeros")
    stages = [particles(nn.Sequential(*embed)), enc, JoinScalars(), *head, output]
    model = SequenceModel(stages, n_features=2)
    model.regularized = [(f"stages.0.layers.{s}.{p}", l1, l2) for s, p, l1, l2 in embed_regs]
    model.regularized += [(f"stages.{s + 3}.{p}", l1, l2) for s, p, l1, l2 in head_regs]
    return model
