"""The trainer: loss goes down, checkpoints, exact resume, early stopping, weights, transfer learning."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import run_config

import physnn
from physnn.errors import ConfigError, InputFileError, OutputError
from physnn.training.checkpoint import load_checkpoint


def test_training_lowers_the_loss_and_writes_a_run_folder(cls_run):
    hist = cls_run.history
    assert hist[-1]["train_loss"] < 0.8 * hist[0]["train_loss"]
    assert cls_run.best["val_auc"] > 0.9  # e/pi from a 4-filter CNN after a few epochs
    names = {p.name for p in cls_run.run_dir.iterdir()}
    assert {"config.yaml", "transform.json", "metrics.csv", "best.pt", "last.pt", "plots"} <= names
    rows = (cls_run.run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,val_loss,val_accuracy,val_auc,lr")
    assert len(rows) == 1 + len(hist)
    assert (cls_run.run_dir / "plots" / "loss.png").stat().st_size > 0


def test_checkpoint_round_trip_is_weights_only_and_predicts_the_same(cls_run, epi_file):
    ckpt = torch.load(cls_run.checkpoint, weights_only=True)  # no pickled code inside
    assert ckpt["physnn"] == physnn.__version__
    assert ckpt["config"]["model"]["name"] == "cnn"
    assert ckpt["transform"]["classes"] == [11, 211]
    loaded = physnn.load_run(cls_run.run_dir, device="cpu")
    data = physnn.load(run_config(epi_file)["data"], transform=loaded.transform)
    batch = data.test[:50]
    cls_run.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(batch), cls_run.model(batch))


def test_a_checkpoint_with_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format": "physnn-checkpoint-1", "x": Evil()}))
    with pytest.raises(InputFileError, match="not a readable physnn checkpoint"):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputFileError, match="not a physnn checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_same_seed_same_metrics(showers_file, tmp_path):
    cfg = run_config(showers_file, epochs=2)
    a = physnn.train(cfg, out=tmp_path / "a", progress=False)
    b = physnn.train(cfg, out=tmp_path / "b", progress=False)
    assert [r["val_loss"] for r in a.history] == [r["val_loss"] for r in b.history]


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_resume_after_a_kill_equals_uninterrupted_training(showers_file, tmp_path, scheduler):
    cfg = run_config(showers_file, epochs=4, scheduler={"name": scheduler})
    physnn.train(cfg, out=tmp_path / "full", progress=False)

    def kill_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        physnn.train(cfg, out=tmp_path / "cut", progress=False, on_epoch_end=kill_after_two)
    assert load_checkpoint(tmp_path / "cut", "last.pt")["epoch"] == 2
    resumed = physnn.train(out=tmp_path / "cut", resume=True, progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    last_full = load_checkpoint(tmp_path / "full", "last.pt")["model"]
    last_cut = load_checkpoint(tmp_path / "cut", "last.pt")["model"]
    for key, value in last_full.items():
        torch.testing.assert_close(last_cut[key], value, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="already finished"):
        physnn.train(out=tmp_path / "cut", resume=True, progress=False)


def test_early_stopping_and_best_checkpoint(showers_file, tmp_path):
    cfg = run_config(showers_file, epochs=30, early_stopping={"patience": 2, "monitor": "val_loss"},
                     optimizer={"lr": 0.05})  # a large step: the validation loss soon stops improving
    res = physnn.train(cfg, out=tmp_path / "r", progress=False)
    assert res.stopped_early
    assert len(res.history) < 30
    best_epoch = min(res.history, key=lambda r: r["val_loss"])["epoch"]
    assert load_checkpoint(tmp_path / "r")["epoch"] == best_epoch == res.best["epoch"]
    assert len(res.history) == best_epoch + 2


def test_class_weights_balanced(showers_file, tmp_path):
    cfg = run_config(showers_file, epochs=1)
    cfg["task"]["class_weight"] = "balanced"
    cfg["data"]["selection"] = "pdgid != 22 && (pdgid == 11 || energy > 50)"  # fewer pions than electrons
    res = physnn.train(cfg, out=tmp_path / "w", progress=False)
    w = res.task.class_weight.numpy()
    counts = np.bincount(physnn.load(cfg["data"]).train.label.numpy())
    np.testing.assert_allclose(w, counts.sum() / (2 * counts), rtol=1e-6)
    assert w[1] > w[0]


def test_existing_run_folder_needs_overwrite(cls_run):
    with pytest.raises(OutputError, match="not empty; pass overwrite=True"):
        physnn.train(run_config("x.root"), out=cls_run.run_dir, progress=False)


def test_bad_train_options_are_config_errors(showers_file, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'train.epoch' \(did you mean 'epochs'"):
        physnn.train(run_config(showers_file), out=tmp_path / "a", overrides=["train.epoch=3"])
    with pytest.raises(ConfigError, match="device 'gpu'"):
        physnn.train(run_config(showers_file), out=tmp_path / "b", overrides=["train.device=gpu"])
    with pytest.raises(ConfigError, match="monitor 'val_auc' is not a metric"):
        physnn.train(run_config(showers_file, task="regression", epochs=1,
                                early_stopping={"monitor": "val_auc"}), out=tmp_path / "c", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            physnn.train(run_config(showers_file), out=tmp_path / "d", device="cuda")


def test_transfer_learning_copies_and_freezes_the_features(cls_run, showers_file, tmp_path):
    cfg = run_config(showers_file, task="regression", epochs=2)
    res = physnn.train(cfg, out=tmp_path / "t", init_from=cls_run.run_dir, freeze="features", progress=False)
    src = load_checkpoint(cls_run.run_dir)["model"]
    new = res.model.state_dict()
    feature_keys = [k for k in new if k.startswith(tuple(res.model.feature_prefixes()))]
    assert feature_keys
    for key in feature_keys:  # frozen: still the source's weights after training
        torch.testing.assert_close(new[key], src[key])
    head = [k for k in new if k.startswith(f"stages.{len(res.model.stages) - 1}.")]
    assert all(new[k].shape != src[k].shape or not torch.equal(new[k], src[k]) for k in head)

    tuned = physnn.train(cfg, out=tmp_path / "f", init_from=cls_run.run_dir, progress=False,
                         overrides=["train.features_lr=0.1"])
    moved = [not torch.equal(tuned.model.state_dict()[k], src[k]) for k in feature_keys]
    assert any(moved)  # fine-tuned, not frozen


def test_transfer_from_a_different_feature_extractor_is_refused(cls_run, showers_file, tmp_path):
    cfg = run_config(showers_file, epochs=1)
    cfg["model"] = {"name": "cnn", "params": {"features": [{"type": "conv", "filters": 8}, {"type": "flatten"}]}}
    with pytest.raises(ConfigError, match=r"--init-from .*shape \[4, 3, 3, 3\] in the source and \[8, 3, 3, 3\]"):
        physnn.train(cfg, out=tmp_path / "x", init_from=cls_run.run_dir, progress=False)
