"""The model registry and the Keras-style CNN: shapes for every option, errors, regularisation."""

from __future__ import annotations

import math

import pytest
import torch

import physnn
from physnn.errors import ConfigError
from physnn.models.base import StagedModel
from physnn.models.registry import ModelConfig, ModelIO, build_model


def cnn(features, head=(), dims=2, image=(3, 24, 24), scalars=0, outputs=1) -> StagedModel:
    cfg = ModelConfig(name="cnn", params={"dims": dims, "features": list(features), "head": list(head)})
    return build_model(cfg, ModelIO(image=image, scalars=scalars, outputs=outputs))


def feature_shape(model: StagedModel, image: tuple[int, ...]) -> tuple[int, ...]:
    x = model.adapt({"image": torch.zeros(2, *image)})
    return tuple(model.run(x, {}, 0, model.n_features - 1).shape[1:])  # before the final flatten


def test_registry_lists_cnn_with_typed_params():
    models = physnn.list_models()
    assert "cnn" in models
    assert "features" in models["cnn"].params.model_fields


def test_unknown_model_and_param_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"model 'cnm' is not in the registry.*did you mean 'cnn'"):
        physnn.load_run_config({"data": {"files": "x.root", "scalars": ["a"]}, "model": {"name": "cnm"}})
    with pytest.raises(ConfigError, match=r"unknown key 'features.0.filterz' \(did you mean 'filters'\?\)"):
        physnn.load_run_config({"data": {"files": "x.root", "scalars": ["a"]},
                                "model": {"name": "cnn", "params": {"features": [{"type": "conv", "filterz": 3}]}}})


@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "expected"), [
    (24, 3, 1, "same", 24), (24, 3, 2, "same", 12), (25, 3, 2, "same", 13), (24, 5, 3, "same", 8),
    (24, 3, 1, "valid", 22), (25, 3, 2, "valid", 12),
])
def test_conv_output_sizes_follow_keras(size, kernel, stride, padding, expected):
    model = cnn([{"type": "conv", "filters": 5, "kernel_size": kernel, "strides": stride, "padding": padding}],
                image=(2, size, size))
    assert feature_shape(model, (2, size, size)) == (5, expected, expected)


@pytest.mark.parametrize("mode", ["max", "average", "sum"])
@pytest.mark.parametrize(("padding", "expected"), [("valid", 4), ("same", 5)])
def test_pooling_modes_and_padding(mode, padding, expected):
    model = cnn([{"type": "pool", "mode": mode, "pool_size": 2, "padding": padding}], image=(1, 9, 9))
    assert feature_shape(model, (1, 9, 9)) == (1, expected, expected)


def test_sum_pooling_keeps_the_total_energy():
    model = cnn([{"type": "pool", "mode": "sum", "pool_size": 2}], image=(3, 8, 8))
    x = torch.rand(4, 3, 8, 8)
    pooled = model.run(x, {}, 0, 1)
    torch.testing.assert_close(pooled.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))


def test_dims_1_2_3_and_layered_calorimeter_as_depth():
    m1 = cnn([{"type": "conv", "filters": 4}, {"type": "pool"}], dims=1, image=(2, 16))
    assert feature_shape(m1, (2, 16)) == (4, 8)
    m3 = cnn([{"type": "conv", "filters": 4, "kernel_size": [3, 3, 3]}, {"type": "pool", "pool_size": [1, 2, 2]}],
             dims=3, image=(3, 24, 24))
    assert feature_shape(m3, (3, 24, 24)) == (4, 3, 12, 12)  # layers became a depth axis
    assert m3({"image": torch.zeros(2, 3, 24, 24)}).shape == (2, 1)


def test_upsample_transpose_global_pool_batchnorm_spatial_dropout():
    model = cnn([{"type": "conv", "filters": 4, "batch_norm": True},
                 {"type": "upsample", "size": 2},
                 {"type": "conv_transpose", "filters": 3, "strides": 2},
                 {"type": "batchnorm"},
                 {"type": "dropout", "rate": 0.2, "spatial": True},
                 {"type": "activation", "activation": "tanh"},
                 {"type": "global_pool", "mode": "max"}],
                head=[{"type": "dense", "units": 7, "activation": "gelu", "batch_norm": True}],
                image=(1, 6, 6), outputs=3)
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"Upsample", "ConvTranspose2d", "BatchNorm2d", "Dropout2d", "Tanh", "GELU", "BatchNorm1d"} <= kinds
    x = model.adapt({"image": torch.zeros(2, 1, 6, 6)})
    assert tuple(model.run(x, {}, 0, 3).shape[1:]) == (3, 24, 24)  # 6 -> upsample 12 -> transposed stride 2: 24
    assert model({"image": torch.zeros(2, 1, 6, 6)}).shape == (2, 3)


def test_scalars_join_the_flat_features():
    model = cnn([{"type": "conv", "filters": 2}, {"type": "flatten"}], head=[{"type": "dense", "units": 4}],
                image=(1, 4, 4), scalars=3)
    assert model.stages[model.n_features + 1][0].in_features == 2 * 16 + 3
    out = model({"image": torch.zeros(5, 1, 4, 4), "scalars": torch.ones(5, 3)})
    assert out.shape == (5, 1)


@pytest.mark.parametrize("init", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal",
                                  "orthogonal", "zeros"])
def test_initialisers(init):
    torch.manual_seed(0)
    model = cnn([{"type": "flatten"}], head=[{"type": "dense", "units": 64, "kernel_initializer": init}],
                image=(1, 16, 16))
    weight = model.stages[model.n_features + 1][0].weight
    if init == "zeros":
        assert weight.abs().sum() == 0
    else:
        std = float(weight.detach().std())
        expected = {"glorot_uniform": math.sqrt(2 / (256 + 64)), "glorot_normal": math.sqrt(2 / (256 + 64)),
                    "he_uniform": math.sqrt(2 / 256), "he_normal": math.sqrt(2 / 256),
                    "lecun_normal": math.sqrt(1 / 256), "orthogonal": 1 / math.sqrt(256)}[init]
        assert std == pytest.approx(expected, rel=0.15)
    assert model.stages[model.n_features + 1][0].bias.abs().sum() == 0


def test_l1_l2_regularisation_enters_the_penalty():
    reg = {"l1": 0.01, "l2": 0.1}
    model = cnn([{"type": "conv", "filters": 2, "kernel_regularizer": reg}, {"type": "flatten"}],
                head=[{"type": "dense", "units": 3, "kernel_regularizer": {"l2": 0.5}}], image=(1, 4, 4))
    conv = model.stages[0][1]
    dense = model.stages[model.n_features + 1][0]
    expected = 0.01 * conv.weight.abs().sum() + 0.1 * conv.weight.pow(2).sum() + 0.5 * dense.weight.pow(2).sum()
    torch.testing.assert_close(model.penalty(), expected)
    assert cnn([{"type": "flatten"}], image=(1, 4, 4)).penalty() == 0.0


def test_shape_errors_are_one_line_config_errors():
    with pytest.raises(ConfigError, match=r"dims=3 expects images of 4 axes.*\[1, 8\]"):
        cnn([{"type": "conv", "filters": 2}], dims=3, image=(1, 8))
    with pytest.raises(ConfigError, match=r"features\[1\] \(pool\).*would be empty"):
        cnn([{"type": "pool", "pool_size": 4}, {"type": "pool", "pool_size": 4}], image=(1, 8, 8))
    with pytest.raises(ConfigError, match="needs image inputs"):
        build_model(ModelConfig(name="cnn"), ModelIO(scalars=3))


def test_first_stochastic_stage_and_feature_split():
    model = cnn([{"type": "conv", "filters": 2}, {"type": "flatten"}],
                head=[{"type": "dense", "units": 4}, {"type": "dropout", "rate": 0.5}], image=(1, 4, 4))
    assert model.n_features == 2
    assert model.first_stochastic_stage() == model.n_features + 2  # conv, flatten, join, dense | dropout
    assert model.feature_prefixes() == ["stages.0.", "stages.1."]


@pytest.mark.parametrize(("dims", "image", "expected"), [
    (1, (2, 16), [(8, 16), (8, 16), (4, 8)]),
    (2, (3, 24, 24), [(8, 24, 24), (8, 24, 24), (4, 12, 12)]),
    (2, (3, 25, 25), [(8, 25, 25), (8, 25, 25), (4, 13, 13)]),
    (3, (3, 24, 24), [(8, 3, 24, 24), (8, 3, 24, 24), (4, 2, 12, 12)]),
])
def test_residual_block_shapes_1d_2d_3d(dims, image, expected):
    blocks = [{"type": "residual", "filters": 8}, {"type": "residual", "filters": 8, "batch_norm": False},
              {"type": "residual", "filters": 4, "strides": 2}]
    model = cnn(blocks, dims=dims, image=image).eval()
    x = model.adapt({"image": torch.randn(2, *image)})
    for i, shape in enumerate(expected):
        x = model.stages[i](x)
        assert tuple(x.shape[1:]) == shape
    assert model({"image": torch.randn(2, *image)}).shape == (2, 1)
    first, same, strided = (model.stages[i][0] for i in range(3))
    assert isinstance(first.shortcut[0], (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))  # 3 or 2 -> 8 channels
    assert first.shortcut[0].kernel_size == (1,) * dims
    assert isinstance(same.shortcut, torch.nn.Identity)  # 8 -> 8, stride 1: the input itself
    assert strided.shortcut[0].stride == (2,) * dims  # 8 -> 4 and halved: a strided 1x1 projection


def test_residual_block_adds_its_input_before_the_activation():
    model = cnn([{"type": "residual", "filters": 2, "batch_norm": False}], image=(2, 5, 5)).eval()
    block = model.stages[0][0]
    for p in block.body.parameters():
        torch.nn.init.zeros_(p)  # the body gives 0: the block is relu(x)
    x = torch.randn(3, 2, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(x))
