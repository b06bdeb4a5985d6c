"""Issue 15: the numbers training produces can be trusted (dropout trains, best epochs, directions)."""

from __future__ import annotations

import copy

import pytest
from conftest import TINY_CNN, run_config

import physnn


def _with_feature_dropout(rate: float) -> dict:
    model = copy.deepcopy(TINY_CNN)
    model["params"]["features"].insert(1, {"type": "dropout", "rate": rate, "spatial": True})
    model["params"]["head"] = [{"type": "dense", "units": 16}]
    return model


def test_dropout_among_the_convolutions_is_on_while_training(showers_file, tmp_path):
    """Item 1: a parameter-free dropout layer in `features` is not "frozen" (it was off in training before)."""
    losses = {}
    for rate in (0.0, 0.5):
        cfg = run_config(showers_file, epochs=1)
        cfg["model"] = _with_feature_dropout(rate)
        losses[rate] = physnn.train(cfg, out=tmp_path / f"r{rate}", progress=False).history[0]["train_loss"]
    assert losses[0.5] != pytest.approx(losses[0.0], rel=1e-6)


def test_transfer_freezing_keeps_batch_norm_statistics_but_not_dropout(showers_file, tmp_path):
    """Item 1: what transfer learning froze (weights and batch-norm statistics) stays; dropout still trains."""
    import torch

    from physnn.training.trainer import frozen_norms

    model = _with_feature_dropout(0.5)
    model["params"]["features"][0]["batch_norm"] = True
    cfg = run_config(showers_file, epochs=1)
    cfg["model"] = model
    src = physnn.train(cfg, out=tmp_path / "src", progress=False)
    dst = physnn.train(cfg, out=tmp_path / "dst", progress=False, init_from=tmp_path / "src", freeze="features")
    norms = frozen_norms(dst.model)
    assert len(norms) == 1
    dropouts = [m for m in dst.model.modules() if isinstance(m, torch.nn.Dropout2d)]
    assert dropouts, "the spatial dropout layer is in the model"
    for a, b in zip(src.model.feature_modules(), dst.model.feature_modules(), strict=True):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(x, y), name  # weights and running statistics as transferred
