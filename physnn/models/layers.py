"""Keras-style layer specifications (:mod:`physnn.models.layer_specs`, with a YAML example) built into torch modules.

:class:`StackBuilder` tracks the tensor shape so that every module gets its
input size and ``padding: same`` matches Keras exactly, strides included.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from physnn.config import Strict
from physnn.models.layer_specs import (
    Activation,
    ActivationName,
    BatchNorm,
    Conv,
    ConvTranspose,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Initializer,
    IntOrList,
    Layer,
    Pool,
    Regularizer,
    Residual,
    UpSample,
)

__all__ = ["Activation", "ActivationName", "BatchNorm", "Conv", "ConvTranspose", "Dense", "Dropout", "Flatten",
           "GlobalPool", "Initializer", "IntOrList", "Layer", "Pool", "Regularizer", "Residual", "ResidualBlock",
           "StackBuilder", "UpSample",
           "activation", "initialize", "same_padding", "stack"]



def activation(name: str) -> nn.Module:
    """The torch module of an activation name (``linear`` is the identity)."""
    table = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU, "selu": nn.SELU,
             "gelu": nn.GELU, "silu": nn.SiLU, "swish": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
             "softplus": nn.Softplus, "linear": nn.Identity}
    return table[name]()


def initialize(module: nn.Module, kernel: str, bias: str) -> None:
    """Apply a Keras-named initialiser to a layer's weight and bias."""
    weight = module.weight
    if kernel == "glorot_uniform":
        nn.init.xavier_uniform_(weight)
    elif kernel == "glorot_normal":
        nn.init.xavier_normal_(weight)
    elif kernel == "he_uniform":
        nn.init.kaiming_uniform_(weight, nonlinearity="relu")
    elif kernel == "he_normal":
        nn.init.kaiming_normal_(weight, nonlinearity="relu")
    elif kernel == "lecun_normal":
        nn.init.kaiming_normal_(weight, nonlinearity="linear")
    elif kernel == "orthogonal":
        nn.init.orthogonal_(weight)
    elif kernel == "zeros":
        nn.init.zeros_(weight)
    if module.bias is not None and bias == "zeros":
        nn.init.zeros_(module.bias)


class SumPool(nn.Module):
    """Sum pooling: average pooling times the window size."""

    def __init__(self, dims: int, kernel: tuple[int, ...], stride: tuple[int, ...]) -> None:
        super().__init__()
        self.pool = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[dims - 1](kernel, stride)
        self.factor = float(math.prod(kernel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x) * self.factor


class GlobalPooling(nn.Module):
    """Reduce all spatial axes with mean, max or sum."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        if self.mode == "max":
            return flat.amax(dim=2)
        return flat.sum(dim=2) if self.mode == "sum" else flat.mean(dim=2)


class ResidualBlock(nn.Module):
    """``activation(body(x) + shortcut(x))``: a ResNet basic block (see :class:`Residual`)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def _tuple(value: IntOrList, dims: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    if len(value) != dims:
        msg = f"{name}: expected {dims} values for a {dims}D layer, got {value}"
        raise ValueError(msg)
    return tuple(value)


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                 dilation: tuple[int, ...]) -> tuple[int, ...]:
    """Keras ``padding='same'``: output ``ceil(in / stride)``, extra padding at the end.

    Returns the ``F.pad`` argument (last axis first).
    """
    pads: list[int] = []
    for n, k, s, d in zip(reversed(size), reversed(kernel), reversed(stride), reversed(dilation), strict=True):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class StackBuilder:
    """Build layer specs into modules, tracking the per-event shape ``(C, ...)``.

    Parameters
    ----------
    shape
        The per-event input shape, channels first.
    dims
        Spatial dimensionality of conv/pool layers (1, 2 or 3).
    """

    def __init__(self, shape: tuple[int, ...], dims: int) -> None:
        self.shape = tuple(shape)
        self.dims = dims
        #: (position in the modules of the last built spec, l1, l2) of regularised kernels
        self.regs: list[tuple[int, float, float]] = []

    def _spatial(self, what: str) -> tuple[int, ...]:
        if len(self.shape) != self.dims + 1:
            msg = (f"{what}: expects a {self.dims}D input (channels + {self.dims} axes), "
                   f"but the tensor here has shape {list(self.shape)}")
            raise ValueError(msg)
        return self.shape[1:]

    def build(self, spec: Strict, where: str) -> list[nn.Module]:
        """Modules of one spec; updates the tracked shape."""
        self.regs = []
        method = getattr(self, f"_build_{spec.type}")  # type: ignore[attr-defined]
        return method(spec, where)

    def _output_shape(self, modules: list[nn.Module], where: str) -> tuple[int, ...]:
        try:
            with torch.no_grad():
                probe = torch.zeros((2, *self.shape))
                for m in modules:
                    probe = m.eval()(probe)
        except RuntimeError:
            probe = torch.zeros(0)
        if probe.numel() == 0 or 0 in probe.shape:
            msg = f"{where}: the output would be empty for input shape {list(self.shape)}"
            raise ValueError(msg)
        return tuple(probe.shape[1:])

    def _build_conv(self, spec: Conv, where: str, transpose: bool = False) -> list[nn.Module]:
        size = self._spatial(where)
        d = self.dims
        k, s, dil = (_tuple(spec.kernel_size, d, f"{where}.kernel_size"), _tuple(spec.strides, d, f"{where}.strides"),
                     _tuple(spec.dilation_rate, d, f"{where}.dilation_rate"))
        mods: list[nn.Module] = []
        if transpose:
            cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[d - 1]
            # Keras 'same' for a transposed conv: output = input * stride
            pad = tuple((kk - 1) * dd // 2 for kk, dd in zip(k, dil, strict=True)) if spec.padding == "same" else 0
            out_pad = tuple(max(n * ss - ((n - 1) * ss - 2 * p + (kk - 1) * dd + 1), 0)
                            for n, ss, p, kk, dd in zip(size, s, pad, k, dil, strict=True)) \
                if spec.padding == "same" else 0
            conv = cls(self.shape[0], spec.filters, k, s, padding=pad, output_padding=out_pad, dilation=dil,
                       bias=spec.use_bias and not spec.batch_norm)
        else:
            cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[d - 1]
            if spec.padding == "same":
                pads = same_padding(size, k, s, dil)
                if any(pads):
                    mods.append(nn.ZeroPad1d(pads) if d == 1 else
                                nn.ZeroPad2d(pads) if d == 2 else nn.ZeroPad3d(pads))
            conv = cls(self.shape[0], spec.filters, k, s, dilation=dil, bias=spec.use_bias and not spec.batch_norm)
        initialize(conv, spec.kernel_initializer, spec.bias_initializer)
        mods.append(conv)
        if spec.kernel_regularizer is not None:
            self.regs.append((len(mods) - 1, spec.kernel_regularizer.l1, spec.kernel_regularizer.l2))
        if spec.batch_norm:
            mods.append((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[d - 1](spec.filters, eps=1e-3, momentum=0.1))
        mods.append(activation(spec.activation))
        self.shape = self._output_shape(mods, where)
        return mods

    def _build_conv_transpose(self, spec: ConvTranspose, where: str) -> list[nn.Module]:
        return self._build_conv(spec, where, transpose=True)

    def _build_residual(self, spec: Residual, where: str) -> list[nn.Module]:
        start = self.shape
        self._spatial(where)
        conv = {"type": "conv", "filters": spec.filters, "kernel_initializer": spec.kernel_initializer,
                "batch_norm": spec.batch_norm}
        first = self._build_conv(Conv(**conv, kernel_size=spec.kernel_size, strides=spec.strides,
                                      activation=spec.activation), where)
        second = self._build_conv(Conv(**conv, kernel_size=spec.kernel_size, activation="linear"), where)
        shortcut: nn.Module = nn.Identity()
        if start[0] != spec.filters or set(_tuple(spec.strides, self.dims, f"{where}.strides")) != {1}:
            projection = StackBuilder(start, self.dims)
            shortcut = nn.Sequential(*projection._build_conv(
                Conv(**conv, kernel_size=1, strides=spec.strides, activation="linear"), where))
        self.regs = []
        return [ResidualBlock(nn.Sequential(*first, *second), shortcut, activation(spec.activation))]

    def _build_pool(self, spec: Pool, where: str) -> list[nn.Module]:
        size = self._spatial(where)
        d = self.dims
        k = _tuple(spec.pool_size, d, f"{where}.pool_size")
        s = k if spec.strides is None else _tuple(spec.strides, d, f"{where}.strides")
        mods: list[nn.Module] = []
        if spec.padding == "same":
            pads = same_padding(size, k, s, (1,) * d)
            if any(pads):
                value = -math.inf if spec.mode == "max" else 0.0
                mods.append(_Pad(pads, value))
        if spec.mode == "max":
            mods.append((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[d - 1](k, s))
        elif spec.mode == "average":
            mods.append((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[d - 1](k, s))
        else:
            mods.append(SumPool(d, k, s))
        self.shape = self._output_shape(mods, where)
        return mods

    def _build_global_pool(self, spec: GlobalPool, where: str) -> list[nn.Module]:
        self._spatial(where)
        self.shape = (self.shape[0],)
        return [GlobalPooling(spec.mode)]

    def _build_upsample(self, spec: UpSample, where: str) -> list[nn.Module]:
        self._spatial(where)
        size = _tuple(spec.size, self.dims, f"{where}.size")
        mode = spec.interpolation
        if mode == "bilinear":
            mode = ("linear", "bilinear", "trilinear")[self.dims - 1]
        mods: list[nn.Module] = [nn.Upsample(scale_factor=tuple(float(x) for x in size), mode=mode)]
        self.shape = self._output_shape(mods, where)
        return mods

    def _build_batchnorm(self, spec: BatchNorm, where: str) -> list[nn.Module]:
        n = len(self.shape)
        cls = nn.BatchNorm1d if n <= 2 else (nn.BatchNorm2d if n == 3 else nn.BatchNorm3d)
        return [cls(self.shape[0], eps=spec.epsilon, momentum=spec.momentum)]

    def _build_dropout(self, spec: Dropout, where: str) -> list[nn.Module]:
        if spec.spatial:
            self._spatial(where)
            return [(nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)[self.dims - 1](spec.rate)]
        return [nn.Dropout(spec.rate)]

    def _build_flatten(self, spec: Flatten, where: str) -> list[nn.Module]:
        self.shape = (math.prod(self.shape),)
        return [nn.Flatten()]

    def _build_activation(self, spec: Activation, where: str) -> list[nn.Module]:
        return [activation(spec.activation)]

    def _build_dense(self, spec: Dense, where: str) -> list[nn.Module]:
        if len(self.shape) != 1:
            msg = (f"{where}: a dense layer needs flat features; add {{type: flatten}} before it "
                   f"(shape {list(self.shape)})")
            raise ValueError(msg)
        linear = nn.Linear(self.shape[0], spec.units, bias=spec.use_bias and not spec.batch_norm)
        initialize(linear, spec.kernel_initializer, spec.bias_initializer)
        mods: list[nn.Module] = [linear]
        if spec.kernel_regularizer is not None:
            self.regs.append((0, spec.kernel_regularizer.l1, spec.kernel_regularizer.l2))
        if spec.batch_norm:
            mods.append(nn.BatchNorm1d(spec.units, eps=1e-3, momentum=0.1))
        mods.append(activation(spec.activation))
        self.shape = (spec.units,)
        return mods


def stack(specs: list[Strict], builder: StackBuilder, section: str) -> tuple[list[nn.Module], list[tuple]]:
    """Build specs into one ``nn.Sequential`` stage each, with their regularised kernels."""
    stages: list[nn.Module] = []
    regs: list[tuple] = []
    for i, spec in enumerate(specs):
        mods = builder.build(spec, f"{section}[{i}] ({spec.type})")  # type: ignore[attr-defined]
        regs += [(len(stages), pos, l1, l2) for pos, l1, l2 in builder.regs]
        stages.append(nn.Sequential(*mods))
    return stages, regs


class _Pad(nn.Module):
    def __init__(self, pads: tuple[int, ...], value: float) -> None:
        super().__init__()
        self.pads = pads
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads, value=self.value)
