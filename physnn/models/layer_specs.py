"""Layer specifications in the words of Keras: pydantic models with a ``type`` tag.

A YAML list such as::

    - {type: conv, filters: 32, kernel_size: 3, padding: same, activation: relu}
    - {type: residual, filters: 32, kernel_size: 3}
    - {type: pool, mode: max, pool_size: 2}
    - {type: dropout, rate: 0.2, spatial: true}
    - {type: flatten}
    - {type: dense, units: 64, kernel_regularizer: {l2: 1.0e-4}}

is validated into these (unknown keys are errors) and built into torch
modules by :class:`physnn.models.layers.StackBuilder`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from physnn.config import Strict

ActivationName = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "tanh", "sigmoid",
                         "softplus", "linear"]
Initializer = Literal["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal",
                      "orthogonal", "zeros", "torch_default"]
IntOrList = int | list[int]


class Regularizer(Strict):
    """L1 and L2 penalties on a layer's kernel, added to the training loss.

    Attributes
    ----------
    l1
        Weight of the sum of the kernel's absolute values.
    l2
        Weight of the sum of the kernel's squares.
    """

    l1: float = Field(default=0.0, ge=0.0)
    l2: float = Field(default=0.0, ge=0.0)


class Conv(Strict):
    """Convolution (``Conv1D``/``Conv2D``/``Conv3D`` by the model's ``dims``).

    Attributes
    ----------
    filters
        Output channels (feature maps).
    kernel_size
        Window size: one number for every spatial axis, or one per axis.
    strides
        Step of the window: one number, or one per axis.
    padding
        ``same`` pads with zeros so that the output has ceil(input / stride)
        cells per axis (as Keras); ``valid`` does not pad.
    dilation_rate
        Spacing between the window's cells (1: adjacent cells).
    activation
        Activation applied to the output.
    use_bias
        Add a learnt bias per filter (left out under ``batch_norm``).
    kernel_initializer
        Initialisation of the weights, in Keras' names.
    bias_initializer
        Initialisation of the bias: ``zeros`` (Keras) or torch's default.
    kernel_regularizer
        L1/L2 penalties on the weights, e.g. ``{l2: 1.0e-4}``; null for none.
    batch_norm
        Batch normalisation between the convolution and the activation.
    """

    type: Literal["conv"]
    filters: int = Field(gt=0)
    kernel_size: IntOrList = 3
    strides: IntOrList = 1
    padding: Literal["same", "valid"] = "same"
    dilation_rate: IntOrList = 1
    activation: ActivationName = "relu"
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Literal["zeros", "torch_default"] = "zeros"
    kernel_regularizer: Regularizer | None = None
    batch_norm: bool = False


class ConvTranspose(Conv):
    """Transposed convolution (``Conv2DTranspose``), for decoders and generators.

    Attributes
    ----------
    padding
        ``same``: the output has input x stride cells per axis (as Keras);
        ``valid`` does not crop.
    """

    type: Literal["conv_transpose"]  # type: ignore[assignment]


class Residual(Strict):
    """Residual block (ResNet's basic block): two convolutions, and a shortcut added before the last activation.

    The block is post-activation, as in He et al. (2015): ``conv -> [batch norm] -> activation -> conv ->
    [batch norm]``, plus the shortcut, then the activation. The shortcut is the input itself, or a 1x1
    convolution (with batch norm when ``batch_norm``) when the block changes the channel count or strides.
    Convolutions pad ``same``, so the output has ceil(input / stride) cells per axis (1D, 2D or 3D by the
    model's ``dims``).

    Attributes
    ----------
    filters
        Output channels of both convolutions (and of the shortcut's projection).
    kernel_size
        Window size of both convolutions: one number for every spatial axis, or one per axis.
    strides
        Step of the first convolution and of the shortcut (2 halves every axis, as the first block of a ResNet
        stage does); 1 keeps the size.
    activation
        Activation after the first convolution and after the sum.
    kernel_initializer
        Initialisation of the convolutions' weights, in Keras' names.
    batch_norm
        Batch normalisation after each convolution (and the projection).
    """

    type: Literal["residual"]
    filters: int = Field(gt=0)
    kernel_size: IntOrList = 3
    strides: IntOrList = 1
    activation: ActivationName = "relu"
    kernel_initializer: Initializer = "he_normal"
    batch_norm: bool = True


class Pool(Strict):
    """Pooling: ``max``, ``average`` or ``sum`` (the classic calorimeter choice).

    Attributes
    ----------
    mode
        How a window is reduced: its maximum, mean or sum (sum keeps the
        energy of a calorimeter image).
    pool_size
        Window size: one number for every spatial axis, or one per axis.
    strides
        Step of the window; null: the window size (windows do not overlap).
    padding
        ``same`` pads so that no cell is dropped at the edges; ``valid``
        drops the cells that do not fill a window.
    """

    type: Literal["pool"]
    mode: Literal["max", "average", "sum"] = "max"
    pool_size: IntOrList = 2
    strides: IntOrList | None = None
    padding: Literal["same", "valid"] = "valid"


class GlobalPool(Strict):
    """Pool over all spatial positions: (N, C, ...) -> (N, C).

    Attributes
    ----------
    mode
        How each feature map is reduced to one number: its maximum, mean or sum.
    """

    type: Literal["global_pool"]
    mode: Literal["max", "average", "sum"] = "average"


class UpSample(Strict):
    """``UpSampling2D``: repeat (nearest) or interpolate each spatial axis by ``size``.

    Attributes
    ----------
    size
        Factor per spatial axis: one number for all, or one per axis.
    interpolation
        ``nearest`` repeats each cell; ``bilinear`` interpolates (linear or
        trilinear in 1D or 3D).
    """

    type: Literal["upsample"]
    size: IntOrList = 2
    interpolation: Literal["nearest", "bilinear"] = "nearest"


class BatchNorm(Strict):
    """Batch normalisation; ``momentum`` is torch's (0.1 = Keras' 0.9: quick to settle on small data).

    Attributes
    ----------
    momentum
        Weight of the latest batch in the running mean and variance (torch's
        convention: 0.1 here is Keras' 0.9).
    epsilon
        Added to the variance before dividing, for stability.
    """

    type: Literal["batchnorm"]
    momentum: float = Field(default=0.1, gt=0.0, lt=1.0)
    epsilon: float = Field(default=1e-3, gt=0.0)


class Dropout(Strict):
    """Dropout; ``spatial: true`` drops whole feature maps (``SpatialDropout2D``).

    Attributes
    ----------
    rate
        Fraction of the values set to zero in training (and in MC-dropout
        prediction).
    spatial
        Drop whole feature maps instead of single values (after convolutions).
    """

    type: Literal["dropout"]
    rate: float = Field(ge=0.0, lt=1.0)
    spatial: bool = False


class Flatten(Strict):
    """Flatten all but the batch axis."""

    type: Literal["flatten"]


class Activation(Strict):
    """A stand-alone activation.

    Attributes
    ----------
    activation
        The activation function applied to every value.
    """

    type: Literal["activation"]
    activation: ActivationName


class Dense(Strict):
    """Fully connected layer.

    Attributes
    ----------
    units
        Number of outputs.
    activation
        Activation applied to the output.
    use_bias
        Add a learnt bias per unit (left out under ``batch_norm``).
    kernel_initializer
        Initialisation of the weights, in Keras' names.
    bias_initializer
        Initialisation of the bias: ``zeros`` (Keras) or torch's default.
    kernel_regularizer
        L1/L2 penalties on the weights, e.g. ``{l2: 1.0e-4}``; null for none.
    batch_norm
        Batch normalisation between the dense layer and the activation.
    """

    type: Literal["dense"]
    units: int = Field(gt=0)
    activation: ActivationName = "relu"
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Literal["zeros", "torch_default"] = "zeros"
    kernel_regularizer: Regularizer | None = None
    batch_norm: bool = False


Layer = Annotated[
    Conv | ConvTranspose | Residual | Pool | GlobalPool | UpSample | BatchNorm | Dropout | Flatten | Activation | Dense,
    Field(discriminator="type"),
]
