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

    from physnn.training.steps import frozen_norms

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


def test_best_gan_epoch_is_the_lowest_separation_power(showers_file, tmp_path):
    """Item 3: a separation power is minimised (the old name rule maximised every non-"loss" metric)."""
    import torch
    from conftest import gan_config

    cfg = gan_config(showers_file, epochs=3)
    cfg["train"]["early_stopping"]["monitor"] = "val_sep_energy"
    result = physnn.train(cfg, out=tmp_path / "gan", progress=False)
    values = [row["val_sep_energy"] for row in result.history]
    assert len(set(values)) > 1, "the test needs epochs that differ"
    assert result.best["val_sep_energy"] == min(values)
    best = torch.load(tmp_path / "gan" / "best.pt", weights_only=True)
    assert best["epoch"] == 1 + values.index(min(values))


def test_monitor_goals_come_from_the_task():
    """Item 3: directions are declared per metric; a coverage is best at its nominal value; mode overrides."""
    from physnn.models.tasks import ONE_SIGMA, Task
    from physnn.training.monitor import TRAIN_GOALS, Monitor

    reg = Task("regression", "gaussian", targets=["energy"])
    cov = Monitor.resolve("val_coverage_1sigma", "auto", reg.metric_goals(), TRAIN_GOALS)
    assert cov.score(0.70) < cov.score(0.60) < cov.score(0.80)
    assert cov.score(ONE_SIGMA) == 0.0
    assert Monitor.resolve("val_rmse_energy", "auto", reg.metric_goals(), TRAIN_GOALS).goal == "min"
    assert Monitor.resolve("val_coverage_1sigma", "max", reg.metric_goals(), TRAIN_GOALS).score(0.9) == -0.9
    binary = Task("binary", "cross_entropy", classes=[0, 1])
    assert Monitor.resolve("val_auc", "auto", binary.metric_goals(), TRAIN_GOALS).goal == "max"


def test_unknown_monitor_is_refused_before_training_and_lists_the_metrics(showers_file, tmp_path):
    """Item 3: an unknown monitor is a config error naming the metrics that exist, before any epoch runs."""
    from physnn.errors import ConfigError

    cfg = run_config(showers_file, epochs=1)
    cfg["train"]["early_stopping"]["monitor"] = "val_acu"
    epochs = []
    with pytest.raises(ConfigError, match=r"'val_acu' is not a metric.*val_accuracy, val_auc"):
        physnn.train(cfg, out=tmp_path / "r", progress=False, on_epoch_end=epochs.append)
    assert epochs == []
