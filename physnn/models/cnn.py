"""Convolutional networks for detector images (1D, 2D or 3D).

A layered calorimeter image ``(layers, H, W)`` can be seen two ways:

- ``dims: 2``: the layers are the input channels of 2D convolutions (the
  usual choice; cheap, and the first convolution mixes the layers);
- ``dims: 3``: the layers are a depth axis of 3D convolutions over
  ``(1, layers, H, W)``, so kernels share weights along the depth.

``dims: 1`` takes ``(C, L)`` inputs (e.g. a fixed-length readout strip).
The feature extractor is the ``features`` list (flattened at its end when
needed); scalar inputs, if any, are joined to the flat features; the
``head`` list and a final linear layer sized by the task follow.

``sums: total`` or ``sums: per_layer`` joins the input image's cell sums to
the flat features too (:class:`JoinCellSums`): the sum a calorimeter's
energy starts from, exactly, and per layer the longitudinal shape that tells
an electromagnetic shower from a hadronic one, without the network having to
learn a linear map it could only approximate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from physnn.config import Strict
from physnn.models.base import JoinScalars, SideInput, StagedModel
from physnn.models.layers import Flatten, Layer, StackBuilder, initialize, stack
from physnn.models.registry import ModelIO, register

DEFAULT_FEATURES = [
    {"type": "conv", "filters": 16, "kernel_size": 3, "kernel_initializer": "he_normal"},
    {"type": "pool", "mode": "max", "pool_size": 2},
    {"type": "conv", "filters": 32, "kernel_size": 3, "kernel_initializer": "he_normal"},
    {"type": "pool", "mode": "max", "pool_size": 2},
    {"type": "flatten"},
]
DEFAULT_HEAD = [
    {"type": "dense", "units": 64, "kernel_initializer": "he_normal"},
    {"type": "dropout", "rate": 0.3},
]


class CNNParams(Strict):
    """Parameters of the ``cnn`` model.

    Attributes
    ----------
    dims
        1, 2 or 3: the dimensionality of the convolutions (see module docs).
    features
        The feature extractor: conv, conv_transpose, residual, pool, global_pool,
        upsample, batchnorm, dropout, activation, flatten layers.
    head
        Dense and dropout layers after the (flattened) features; the output
        layer is added for the task.
    sums
        Join the input image's cell sums to the flat features (next to the
        scalars): ``total``: log(1 + S), S the sum of all cells; ``per_layer``:
        also each layer's (channel's) fraction S_l / sum_k |S_k| (S_l / S when the sums are positive);
        ``none``: nothing.
        The sums are of the image as the model receives it (in GeV unless
        ``standardize: {images: true}``).
    """

    dims: Literal[1, 2, 3] = 2
    sums: Literal["none", "total", "per_layer"] = Field(default="none", exclude_if=lambda v: v == "none")
    features: list[Layer] = Field(default_factory=lambda: list(DEFAULT_FEATURES), validate_default=True)
    head: list[Layer] = Field(default_factory=lambda: list(DEFAULT_HEAD), validate_default=True)


class JoinCellSums(SideInput):
    """Concatenate the input image's cell sums to the flat features: log(1 + S) of the total S, and with
    ``per_layer`` each layer's fraction S_l / sum_k |S_k| (the side input ``cell_sums``, (N, layers), of
    :meth:`CNN.side`): S_l / S for the usual positive sums, and within [-1, 1] when the layers' noise of
    both signs sums to almost nothing."""

    def __init__(self, per_layer: bool) -> None:
        super().__init__()
        self.per_layer = per_layer

    @staticmethod
    def width(mode: str, layers: int) -> int:
        """How many values ``sums: mode`` joins for images of ``layers`` layers."""
        return {"none": 0, "total": 1, "per_layer": 1 + layers}[mode]

    def forward(self, x: torch.Tensor, side: Mapping[str, torch.Tensor]) -> torch.Tensor:
        sums = side["cell_sums"].to(x.dtype)
        total = sums.sum(dim=-1, keepdim=True)
        parts = [torch.log1p(total.clamp(min=0))]
        if self.per_layer:
            parts.append(sums / sums.abs().sum(dim=-1, keepdim=True).clamp(min=1e-6))
        return torch.cat([x, *parts], dim=-1)


class CNN(StagedModel):
    """A CNN built from :class:`CNNParams` (see :func:`build_cnn`)."""

    def __init__(self, stages: list[nn.Module], n_features: int, unsqueeze: bool, sums: bool = False) -> None:
        super().__init__(stages, n_features)
        self.unsqueeze = unsqueeze
        self.sums = sums

    def adapt(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = batch["image"]
        return x.unsqueeze(1) if self.unsqueeze else x

    def side(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """The side inputs, and with ``sums`` the image's sum per layer (channel), ``cell_sums`` (N, layers)."""
        side = StagedModel.side(batch)
        if self.sums:
            side["cell_sums"] = batch["image"].flatten(2).sum(dim=-1)
        return side


@register("cnn", CNNParams)
def build_cnn(params: CNNParams, io: ModelIO) -> CNN:
    """Convolutional network for images: conv/pool/upsample/batchnorm/dropout stacks and a dense head."""
    from physnn.errors import ConfigError

    if io.image is None:
        msg = "model 'cnn' needs image inputs: add images: {branches: [...]} to the data config"
        raise ConfigError(msg)
    shape = tuple(io.image)
    unsqueeze = False
    if params.dims == 3 and len(shape) == 3:  # (layers, H, W) -> (1, layers, H, W)
        shape, unsqueeze = (1, *shape), True
    if len(shape) != params.dims + 1:
        msg = (f"model 'cnn' with dims={params.dims} expects images of {params.dims + 1} axes (channels first), "
               f"the data give {list(io.image)}")
        raise ConfigError(msg)
    builder = StackBuilder(shape, params.dims)
    try:
        features, regs = stack(params.features, builder, "features")
        if len(builder.shape) != 1:
            more, _ = stack([Flatten(type="flatten")], builder, "features")
            features += more
        n_features = len(features)
        builder.shape = (builder.shape[0] + io.scalars + JoinCellSums.width(params.sums, io.image[0]),)
        head, head_regs = stack(params.head, builder, "head")
    except ValueError as err:
        msg = f"model 'cnn': {err}"
        raise ConfigError(msg) from None
    output = nn.Linear(builder.shape[0], io.outputs)
    initialize(output, "glorot_uniform", "zeros")
    sums = [JoinCellSums(params.sums == "per_layer")] if params.sums != "none" else []
    stages = [*features, JoinScalars(), *sums, *head, output]
    model = CNN(stages, n_features, unsqueeze, bool(sums))
    offset = n_features + 1 + len(sums)
    model.regularized = [(f"stages.{s}.{p}", l1, l2) for s, p, l1, l2 in regs]
    model.regularized += [(f"stages.{s + offset}.{p}", l1, l2) for s, p, l1, l2 in head_regs]
    return model
