"""Autoencoders: compress an input to a small code and rebuild it.

Two families, both registered for ``task.kind: reconstruction``:

``conv_autoencoder`` (images)
    An encoder of convolutions and pooling (the same layer specs as
    :mod:`physnn.models.cnn`), a dense bottleneck of ``code_size`` numbers
    (or, with ``code_size: null``, the encoder's last feature map as the
    code), and a decoder that by default mirrors the encoder: each pooling
    becomes an upsampling (or a strided transposed convolution), each
    convolution a convolution back to the channels it started from, and the
    last one maps to the input's channels with ``output_activation`` (``relu``,
    with a straight-through gradient: calorimeter cells in GeV are never
    negative; use ``linear`` when the images are standardised). A last crop or zero-pad restores odd grid sizes.
``dense_autoencoder`` (flat features, fixed-length sequences, small images)
    Dense layers down to the code and (mirrored) back up, on the flattened
    input.

The code is the output of the feature extractor (the first ``n_features``
stages), so :meth:`StagedModel.encode` gives it, and the transfer-learning
path reuses the encoder: the same model name trained for a classification
or regression task builds the encoder followed by ``head`` layers
(identification layers in place of the decoder); ``--init-from`` an
autoencoder run copies the encoder and ``--freeze features`` keeps it fixed.

Dropout (``dropout``) sits in the decoder only, so MC dropout caches the
encoder and samples the decoder: the spread of T reconstructions is a
per-cell uncertainty map.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from physnn.config import Strict
from physnn.errors import ConfigError
from physnn.models.base import JoinScalars, StagedModel
from physnn.models.cnn import CNN, DEFAULT_HEAD
from physnn.models.layers import ActivationName, Layer, StackBuilder, activation, initialize, stack
from physnn.models.registry import ModelIO, register

DEFAULT_ENCODER = [
    {"type": "conv", "filters": 16, "kernel_size": 3, "kernel_initializer": "he_normal"},
    {"type": "pool", "mode": "max", "pool_size": 2},
    {"type": "conv", "filters": 32, "kernel_size": 3, "kernel_initializer": "he_normal"},
    {"type": "pool", "mode": "max", "pool_size": 2},
]
MIRRORED = ("conv", "pool", "batchnorm", "activation", "dropout")


class ConvAEParams(Strict):
    """Parameters of the ``conv_autoencoder`` model.

    Attributes
    ----------
    dims
        1, 2 or 3: dimensionality of the convolutions (as for ``cnn``).
    encoder
        Conv, pool, batchnorm and activation layers down to the code.
    code_size
        Size of the dense bottleneck; null keeps the encoder's feature map
        as the code (a convolutional code).
    code_activation
        Activation of the bottleneck layer.
    decoder
        ``mirror`` (the encoder reversed, see the module docs) or a list of
        layer specs; after a list, a kernel-1 convolution to the input's
        channels is added as the output layer.
    upsampling
        How the mirror undoes a pooling: ``upsample`` (nearest-neighbour
        repeat, then the convolution) or ``transpose`` (a strided transposed
        convolution).
    dropout
        Dropout rate after the bottleneck and between decoder blocks (MC
        dropout uncertainty maps); 0 turns it off.
    output_activation
        Activation of the output layer.
    head
        Identification layers used instead of the decoder when the model is
        trained for classification or regression (e.g. on a frozen encoder).
    """

    dims: Literal[1, 2, 3] = 2
    encoder: list[Layer] = Field(default_factory=lambda: list(DEFAULT_ENCODER), validate_default=True)
    code_size: PositiveInt | None = 32
    code_activation: ActivationName = "linear"
    decoder: Literal["mirror"] | list[Layer] = "mirror"
    upsampling: Literal["upsample", "transpose"] = "upsample"
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    output_activation: ActivationName = "relu"
    head: list[Layer] = Field(default_factory=lambda: list(DEFAULT_HEAD), validate_default=True)


class DenseAEParams(Strict):
    """Parameters of the ``dense_autoencoder`` model.

    Attributes
    ----------
    input
        What to encode: ``image`` (flattened), ``sequence`` (the padded
        sequence, flattened; padding is zero) or ``scalars``; ``auto`` takes
        the reconstructed input of the task, else the first present.
    encoder
        Units of the dense layers down to the code.
    code_size
        Size of the code.
    decoder
        ``mirror`` (the encoder's units reversed) or a list of units.
    activation
        Activation of the hidden dense layers.
    code_activation
        Activation of the code layer (``linear``: an unbounded code).
    output_activation
        Activation of the output layer: ``linear`` for standardised inputs,
        ``relu`` for cell energies (a cell's expected readout is >= 0 even
        when a symmetric readout keeps single negative cells).
    batch_norm
        Batch normalisation after each hidden dense layer.
    dropout
        Dropout rate after the code and between decoder layers.
    head
        Identification layers used instead of the decoder for a
        classification or regression task.
    """

    input: Literal["auto", "image", "sequence", "scalars"] = "auto"
    encoder: list[PositiveInt] = Field(default_factory=lambda: [64, 32])
    code_size: PositiveInt = 8
    decoder: Literal["mirror"] | list[PositiveInt] = "mirror"
    activation: ActivationName = "relu"
    code_activation: ActivationName = "linear"
    output_activation: ActivationName = "linear"
    batch_norm: bool = False
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    head: list[Layer] = Field(default_factory=lambda: list(DEFAULT_HEAD), validate_default=True)


class CropOrPad(nn.Module):
    """Centre-crop or zero-pad the spatial axes to ``size`` (restores odd grids after pooling)."""

    def __init__(self, size: tuple[int, ...]) -> None:
        super().__init__()
        self.size = tuple(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for have, want in zip(reversed(x.shape[2:]), reversed(self.size), strict=True):
            diff = want - have
            pads += [diff // 2, diff - diff // 2]
        return F.pad(x, pads) if any(pads) else x


class StraightThroughReLU(nn.Module):
    """ReLU forward, identity backward: exact zeros out, and no dead cells in training.

    With a plain ReLU output, a cell whose pre-activation is negative gets no
    gradient, so a faint truth cell (the low-energy halo of a shower) that
    starts at zero stays at zero and the denoised showers lose energy. Passing
    the gradient through changes nothing for empty cells (their error is
    zero) and pulls faint cells up.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (x.clamp(min=0.0) - x).detach()


def _output_activation(name: str) -> tuple[str, list[nn.Module]]:
    """The activation for the last layer's spec and the modules to add after it."""
    return ("linear", [StraightThroughReLU()]) if name == "relu" else (name, [])


class ConvAutoencoder(CNN):
    """A :class:`ConvAEParams` network (see :func:`build_conv_autoencoder`); images adapt as for the CNN."""


class DenseAutoencoder(StagedModel):
    """A :class:`DenseAEParams` network: the chosen input, flattened, through dense layers."""

    def __init__(self, stages: list[nn.Module], n_features: int, key: str) -> None:
        super().__init__(stages, n_features)
        self.input_key = key

    def adapt(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch[self.input_key]
        if self.input_key == "sequence" and "mask" in batch:
            x = x * batch["mask"][..., None].to(x.dtype)
        return x.flatten(1)


def _mirror(encoder: list[Strict], shapes: list[tuple[int, ...]], params: ConvAEParams) -> list[dict]:
    """Decoder specs mirroring ``encoder``; ``shapes[i]`` is the input shape of ``encoder[i]``."""
    specs: list[dict] = []
    channels_out = shapes[0][0]
    convs = [i for i, s in enumerate(encoder) if s.type == "conv"]  # type: ignore[attr-defined]
    for i in reversed(range(len(encoder))):
        spec = encoder[i]
        kind = spec.type  # type: ignore[attr-defined]
        if kind not in MIRRORED:
            msg = (f"encoder[{i}] ({kind}): decoder: mirror can only reverse {', '.join(MIRRORED)} layers; "
                   "give the decoder as a list of layers")
            raise ConfigError(msg)
        if kind == "pool":
            size = spec.pool_size  # type: ignore[attr-defined]
            if params.upsampling == "transpose":
                specs.append({"type": "conv_transpose", "filters": shapes[i + 1][0], "kernel_size": size,
                              "strides": size, "padding": "valid", "kernel_initializer": "he_normal"})
            else:
                specs.append({"type": "upsample", "size": size})
        elif kind == "conv":
            last = i == convs[0]
            specs.append({"type": "conv", "filters": channels_out if last else shapes[i][0],
                          "kernel_size": spec.kernel_size, "padding": "same",  # type: ignore[attr-defined]
                          "activation": _output_activation(params.output_activation)[0] if last
                          else spec.activation,  # type: ignore[attr-defined]
                          "kernel_initializer": "glorot_uniform" if last else "he_normal"})
            if not last and params.dropout > 0:
                specs.append({"type": "dropout", "rate": params.dropout})
        elif kind in ("batchnorm", "activation"):
            specs.append(spec.model_dump())
    if not convs:
        specs.append({"type": "conv", "filters": channels_out, "kernel_size": 1,
                      "activation": _output_activation(params.output_activation)[0]})
    return specs


@register("conv_autoencoder", ConvAEParams, reconstructs=True)
def build_conv_autoencoder(params: ConvAEParams, io: ModelIO) -> ConvAutoencoder:
    """Convolutional (denoising) autoencoder for images: conv+pool encoder, code, mirrored decoder."""
    from pydantic import TypeAdapter

    if io.image is None:
        msg = "model 'conv_autoencoder' needs image inputs: add images: {branches: [...]} to the data config"
        raise ConfigError(msg)
    shape = tuple(io.image)
    unsqueeze = params.dims == 3 and len(shape) == 3
    if unsqueeze:
        shape = (1, *shape)
    if len(shape) != params.dims + 1:
        msg = (f"model 'conv_autoencoder' with dims={params.dims} expects images of {params.dims + 1} axes, "
               f"the data give {list(io.image)}")
        raise ConfigError(msg)
    builder = StackBuilder(shape, params.dims)
    try:
        shapes = []
        encoder: list[nn.Module] = []
        regs: list[tuple] = []  # (stage, position, l1, l2) of regularised kernels
        for i, spec in enumerate(params.encoder):
            shapes.append(builder.shape)
            mods = builder.build(spec, f"encoder[{i}] ({spec.type})")  # type: ignore[attr-defined]
            regs += [(len(encoder), pos, l1, l2) for pos, l1, l2 in builder.regs]
            encoder.append(nn.Sequential(*mods))
        shapes.append(builder.shape)
        if len(builder.shape) != params.dims + 1:
            msg = "encoder: the encoder must keep the spatial axes (no flatten, dense or global_pool)"
            raise ValueError(msg)
        feature_map = builder.shape
        if params.code_size is not None:
            code = nn.Linear(math.prod(feature_map), params.code_size)
            initialize(code, "glorot_uniform", "zeros")
            encoder.append(nn.Sequential(nn.Flatten(), code, activation(params.code_activation)))
        n_features = len(encoder)
        if io.reconstruct is None:  # identification layers in place of the decoder
            stages = encoder
            if params.code_size is None:
                stages.append(nn.Flatten())
                n_features += 1
            width = params.code_size or math.prod(feature_map)
            builder.shape = (width + io.scalars,)
            head, head_regs = stack(params.head, builder, "head")
            output = nn.Linear(builder.shape[0], io.outputs)
            initialize(output, "glorot_uniform", "zeros")
            regs += [(s + len(stages) + 1, p, l1, l2) for s, p, l1, l2 in head_regs]
            model = ConvAutoencoder([*stages, JoinScalars(), *head, output], n_features, unsqueeze)
            return _regularized(model, regs)
        decoder: list[nn.Module] = []
        if params.code_size is not None:
            expand = nn.Linear(params.code_size, math.prod(feature_map))
            initialize(expand, "he_normal", "zeros")
            decoder.append(nn.Sequential(expand, nn.ReLU(), nn.Unflatten(1, feature_map)))
        if params.dropout > 0:
            decoder.append(nn.Dropout(params.dropout))
        builder.shape = feature_map
        if params.decoder == "mirror":
            specs = TypeAdapter(list[Layer]).validate_python(_mirror(params.encoder, shapes, params))
        else:
            specs = [*params.decoder, TypeAdapter(Layer).validate_python(
                {"type": "conv", "filters": shape[0], "kernel_size": 1,
                 "activation": _output_activation(params.output_activation)[0]})]
        built, decoder_regs = stack(specs, builder, "decoder")
        regs += [(s + len(encoder) + len(decoder), p, l1, l2) for s, p, l1, l2 in decoder_regs]
        decoder += built
        decoder += _output_activation(params.output_activation)[1]
    except ValueError as err:
        msg = f"model 'conv_autoencoder': {err}"
        raise ConfigError(msg) from None
    if builder.shape[0] != shape[0]:
        msg = f"model 'conv_autoencoder': the decoder ends with {builder.shape[0]} channels, the input has {shape[0]}"
        raise ConfigError(msg)
    if builder.shape[1:] != shape[1:]:
        decoder.append(CropOrPad(shape[1:]))
    return _regularized(ConvAutoencoder([*encoder, *decoder], n_features, unsqueeze), regs)


def _regularized(model: StagedModel, regs: list[tuple]) -> StagedModel:
    model.regularized = [(f"stages.{s}.{p}", l1, l2) for s, p, l1, l2 in regs]
    return model


def _dense(width: int, units: int, act: str, batch_norm: bool) -> tuple[nn.Module, int]:
    linear = nn.Linear(width, units, bias=not batch_norm)
    initialize(linear, "glorot_uniform" if act in ("linear", "tanh", "sigmoid") else "he_normal", "zeros")
    mods: list[nn.Module] = [linear]
    if batch_norm:
        mods.append(nn.BatchNorm1d(units, eps=1e-3))
    mods.append(activation(act))
    return nn.Sequential(*mods), units


@register("dense_autoencoder", DenseAEParams, reconstructs=True)
def build_dense_autoencoder(params: DenseAEParams, io: ModelIO) -> DenseAutoencoder:
    """Dense autoencoder for flat features, fixed-length (padded) sequences or small images."""
    present = {"image": io.image, "sequence": io.sequence, "scalars": (io.scalars,) if io.scalars else None}
    key = params.input if params.input != "auto" else (
        io.reconstruct or next((k for k, v in present.items() if v is not None), "scalars"))
    if present[key] is None:
        msg = f"model 'dense_autoencoder': input {key!r} is not in the data config"
        raise ConfigError(msg)
    if io.reconstruct is not None and io.reconstruct != key:
        msg = (f"model 'dense_autoencoder': params.input is {key!r} but the task reconstructs "
               f"{io.reconstruct!r}; make them the same")
        raise ConfigError(msg)
    size = math.prod(present[key])  # type: ignore[arg-type]
    stages: list[nn.Module] = []
    width = size
    for units in params.encoder:
        stage, width = _dense(width, units, params.activation, params.batch_norm)
        stages.append(stage)
    code, width = _dense(width, params.code_size, params.code_activation, False)
    stages.append(code)
    n_features = len(stages)
    if io.reconstruct is None:
        builder = StackBuilder((width + (io.scalars if key != "scalars" else 0),), 1)
        try:
            head, _ = stack(params.head, builder, "head")
        except ValueError as err:
            msg = f"model 'dense_autoencoder': {err}"
            raise ConfigError(msg) from None
        output = nn.Linear(builder.shape[0], io.outputs)
        initialize(output, "glorot_uniform", "zeros")
        join = [JoinScalars()] if key != "scalars" else []
        return DenseAutoencoder([*stages, *join, *head, output], n_features, key)
    if params.dropout > 0:
        stages.append(nn.Dropout(params.dropout))
    decoder = list(reversed(params.encoder)) if params.decoder == "mirror" else params.decoder
    for i, units in enumerate(decoder):
        stage, width = _dense(width, units, params.activation, params.batch_norm)
        stages.append(stage)
        if params.dropout > 0 and i < len(decoder) - 1:
            stages.append(nn.Dropout(params.dropout))
    act, extra = _output_activation(params.output_activation)
    output, _ = _dense(width, size, act, False)
    initialize(output[0], "glorot_uniform", "zeros")
    stages += [output, *extra]
    return DenseAutoencoder(stages, n_features, key)
