"""LSTM and GRU networks for variable-length sequences (particles or hits per event).

``[per-particle embedding] -> LSTM/GRU -> readout -> [scalars] -> head -> output``

Two ways to run the recurrent layers over a padded batch, with the same
weights (``packing`` only changes the call, so it can be switched on a
trained model):

- ``padded``: the batch, trimmed to its longest event, goes through the RNN
  as one tensor. A forward-running RNN's output at the true last element
  depends only on the real elements before it, so this is exact; the
  readout then ignores padded positions.
- ``packed``: ``torch.nn.utils.rnn.pack_padded_sequence`` skips padded steps
  entirely. Needed for bidirectional RNNs, whose backward direction would
  otherwise start in the padding.

- ``layerwise`` (set by :meth:`RecurrentEncoder.use_layerwise` for export):
  one-direction, one-layer RNNs with the trained weights, layer by layer;
  a bidirectional layer's backward direction runs on every sequence
  reversed within its own length, so it starts at the true last element.
  Exact like ``packed``, but plain tensor ops (gather, one-direction RNNs)
  that ONNX and TorchScript can trace; with ``mc_dropout`` the dropout
  between layers is drawn in the graph (MC dropout in an exported model).

``auto`` takes ``packed`` for a bidirectional RNN; for a forward RNN it
takes ``padded`` while training and ``packed`` for predictions (no
gradients), the faster choice of each on CPU as measured by ``bench/run``
(e.g. a GRU of 64 trains 1.1x faster padded and predicts 1.7x faster packed).
Both give the same outputs (tested).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from physnn.models.base import SideInput, dropout_always
from physnn.models.registry import ModelIO, register
from physnn.models.sequence import MaskedReadout, SequenceModel, SequenceParams, build_sequence_model, masks


class RecurrentParams(SequenceParams):
    """Parameters of the ``lstm`` and ``gru`` models.

    Attributes
    ----------
    embedding
        Per-particle layers (dense, dropout, activation) before the RNN; ``[]``
        feeds the standardised features directly.
    hidden_size
        Width of the recurrent state (per direction).
    layers
        Number of stacked recurrent layers.
    bidirectional
        Also run the sequence backwards (then ``packing`` is ``packed``).
    dropout
        Dropout between stacked recurrent layers (needs ``layers >= 2``); it
        is kept on by MC-dropout prediction like the head's dropout.
    readout
        How the event vector is read: ``last`` (the true last element),
        ``mean``, ``max``, ``sum`` or ``attention`` over the real elements.
    packing
        ``auto``, ``padded`` or ``packed`` (see the module docs).
    head
        Dense and dropout layers after the readout (and the scalars).
    """

    hidden_size: int = Field(default=64, gt=0)
    layers: int = Field(default=1, ge=1)
    bidirectional: bool = False
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    packing: Literal["auto", "padded", "packed"] = "auto"

    @model_validator(mode="after")
    def _consistent(self) -> RecurrentParams:
        if self.dropout > 0 and self.layers < 2:
            msg = (f"dropout ({self.dropout}) acts between stacked recurrent layers and needs layers >= 2; "
                   "with one layer put a dropout layer in the head")
            raise ValueError(msg)
        if self.bidirectional and self.packing == "padded":
            msg = ("packing 'padded' is wrong for a bidirectional RNN (its backward pass would start in the "
                   "padding); use packed or auto")
            raise ValueError(msg)
        return self


class RecurrentEncoder(SideInput):
    """An ``nn.LSTM``/``nn.GRU`` over the embedded particles, read out to one vector per event."""

    def __init__(self, cell: str, input_size: int, params: RecurrentParams) -> None:
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(input_size, params.hidden_size, num_layers=params.layers, batch_first=True,
                       bidirectional=params.bidirectional, dropout=params.dropout)
        self.width = params.hidden_size * (2 if params.bidirectional else 1)
        self.readout = MaskedReadout(params.readout, self.width, params.bidirectional)
        self.packing = "packed" if params.bidirectional and params.packing == "auto" else params.packing

    def use_layerwise(self, *, mc_dropout: bool = False) -> None:
        """Run the RNN layer by layer without packing (exact; for export): see the module docs."""
        self.layerwise_rnn = LayerwiseRNN(self.rnn, mc_dropout=mc_dropout)
        self.packing = "layerwise"

    @contextlib.contextmanager
    def exporting(self, *, mc_dropout: bool) -> Iterator[None]:
        """Calls without packing while a graph is traced (:class:`~physnn.models.graph.ExportSwitch`), both
        exact: ``padded`` for a forward RNN, ``layerwise`` for a bidirectional one and, with MC dropout, for
        one with dropout between its layers (drawn in the graph). The trained call is back on exit."""
        packing, layerwise = self.packing, getattr(self, "layerwise_rnn", None)
        if self.rnn.bidirectional or (mc_dropout and self.rnn.dropout > 0):
            self.use_layerwise(mc_dropout=mc_dropout)
        else:
            self.packing = "padded"
        try:
            yield
        finally:
            self.packing = packing
            if layerwise is not None:
                self.layerwise_rnn = layerwise
            elif hasattr(self, "layerwise_rnn"):
                del self.layerwise_rnn

    def forward(self, x: torch.Tensor, side: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mask, length = masks(side, x)
        packed_call = self.packing == "packed" or (self.packing == "auto" and not torch.is_grad_enabled())
        if self.packing == "layerwise":
            out = self.layerwise_rnn(x, length)
        elif packed_call:
            packed = pack_padded_sequence(x, length.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            out, _ = self.rnn(x)
        return self.readout(out, mask, length)


class LayerwiseRNN(nn.Module):
    """An ``nn.LSTM``/``nn.GRU`` computed layer by layer on a padded batch, without packing.

    Each layer's forward direction runs on the batch as it is (exact for the
    real elements, which precede the padding); a bidirectional layer's
    backward direction runs as a one-direction RNN, with the trained
    ``*_reverse`` weights, on each sequence reversed within its own length,
    and its outputs are put back in order by the same gather. The outputs at
    real elements equal those of the packed call (tested); at padded
    positions they are junk, which the masked readout ignores.

    Parameters
    ----------
    rnn
        The trained RNN (its weights are copied).
    mc_dropout
        Apply the RNN's dropout between layers in any mode, with masks drawn
        in the graph: MC dropout in an exported model.
    """

    def __init__(self, rnn: nn.RNNBase, *, mc_dropout: bool = False) -> None:
        super().__init__()
        cell = type(rnn)
        directions = ("", "_reverse") if rnn.bidirectional else ("",)
        self.p = float(rnn.dropout) if mc_dropout else 0.0
        self.layers = nn.ModuleList()
        for k in range(rnn.num_layers):
            size = rnn.input_size if k == 0 else len(directions) * rnn.hidden_size
            group = nn.ModuleList()
            for suffix in directions:
                one = cell(size, rnn.hidden_size, num_layers=1, batch_first=True, bias=rnn.bias)
                with torch.no_grad():
                    for name, _ in one.named_parameters():
                        getattr(one, name).copy_(getattr(rnn, name.replace("_l0", f"_l{k}{suffix}")))
                group.append(one)
            self.layers.append(group)

    def forward(self, x: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(x.shape[1], device=x.device)[None, :]
        last = length.to(x.device)[:, None] - 1
        # position t of the reversed sequence holds element length-1-t; the padding stays where it is
        index = torch.where(steps <= last, last - steps, steps)

        def flip(t: torch.Tensor) -> torch.Tensor:
            return t.gather(1, index[..., None].expand(-1, -1, t.shape[2]))

        for k, group in enumerate(self.layers):
            if k > 0 and self.p > 0:  # nn.LSTM/GRU's dropout on the outputs of every layer but the last
                x = dropout_always(x, self.p)
            outs = [group[0](x)[0]]
            if len(group) == 2:
                outs.append(flip(group[1](flip(x))[0]))
            x = torch.cat(outs, dim=-1) if len(outs) == 2 else outs[0]
        return x


def _build(cell: str, params: RecurrentParams, io: ModelIO) -> SequenceModel:
    def encoder(width: int) -> tuple[SideInput, int]:
        enc = RecurrentEncoder(cell, width, params)
        return enc, enc.width

    return build_sequence_model(cell, params, io, encoder)


@register("lstm", RecurrentParams)
def build_lstm(params: RecurrentParams, io: ModelIO) -> SequenceModel:
    """LSTM over variable-length sequences: embedding, LSTM layers, masked readout, dense head."""
    return _build("lstm", params, io)


@register("gru", RecurrentParams)
def build_gru(params: RecurrentParams, io: ModelIO) -> SequenceModel:
    """GRU over variable-length sequences: embedding, GRU layers, masked readout, dense head."""
    return _build("gru", params, io)
