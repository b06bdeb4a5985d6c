"""A 1D-convolution baseline over padded sequences.

``[per-particle embedding] -> masked Conv1d stack -> masked pooling -> head``

Each convolution sees a window of neighbouring particles (in the configured
order, e.g. by decreasing pt). Positions beyond an event's length are set to
zero after every convolution, so the zero padding of the next convolution at
the event's end is the same whatever the padded length: predictions do not
depend on padding. The readout pools over real particles only (``mean`` by
default; ``last`` takes the true last particle).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from pydantic import Field, PositiveInt, field_validator
from torch import nn

from physnn.models.base import SideInput
from physnn.models.layers import ActivationName, activation, initialize
from physnn.models.registry import ModelIO, register
from physnn.models.sequence import MaskedReadout, Readout, SequenceModel, SequenceParams, build_sequence_model, masks


class SeqConvParams(SequenceParams):
    """Parameters of the ``seq_conv`` model.

    Attributes
    ----------
    filters
        Output channels of each convolution.
    kernel_size
        Window of particles each convolution sees (odd, centred).
    dilation
        Dilation of every convolution (1: adjacent particles).
    activation
        Activation after every convolution.
    readout
        Masked pooling of the last convolution's outputs.
    """

    filters: list[PositiveInt] = Field(default_factory=lambda: [64, 64], min_length=1)
    kernel_size: int = Field(default=3, gt=0)
    dilation: int = Field(default=1, gt=0)
    activation: ActivationName = "relu"
    readout: Readout = "mean"

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            msg = f"kernel_size must be odd (a window centred on each particle), got {v}"
            raise ValueError(msg)
        return v


class ConvEncoder(SideInput):
    """Masked ``Conv1d`` layers along the particle axis, then a masked readout."""

    def __init__(self, input_size: int, params: SeqConvParams) -> None:
        super().__init__()
        convs = []
        for filters in params.filters:
            conv = nn.Conv1d(input_size, filters, params.kernel_size, dilation=params.dilation,
                             padding=(params.kernel_size // 2) * params.dilation)
            initialize(conv, "he_normal", "zeros")
            convs.append(conv)
            input_size = filters
        self.convs = nn.ModuleList(convs)
        self.activation = activation(params.activation)
        self.width = input_size
        self.readout = MaskedReadout(params.readout, self.width)

    def forward(self, x: torch.Tensor, side: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mask, length = masks(side, x)
        keep = mask.unsqueeze(1).to(x.dtype)  # (B, 1, T)
        h = x.transpose(1, 2) * keep
        for conv in self.convs:
            h = self.activation(conv(h)) * keep
        return self.readout(h.transpose(1, 2), mask, length)


@register("seq_conv", SeqConvParams)
def build_seq_conv(params: SeqConvParams, io: ModelIO) -> SequenceModel:
    """1D convolutions along the padded sequence with masking and masked pooling (a baseline)."""

    def encoder(width: int) -> tuple[SideInput, int]:
        enc = ConvEncoder(width, params)
        return enc, enc.width

    return build_sequence_model("seq_conv", params, io, encoder)
