"""Workflows users expect of ``physnn train``: extend a finished run, Ctrl-C, transfer summary, progress in logs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import yaml
from conftest import run_config
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.errors import ConfigError
from physnn.training.checkpoint import load_checkpoint
from physnn.training.steps import SupervisedStep

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def epochs_in(run: Path) -> list[int]:
    with (run / "metrics.csv").open() as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def interrupt_in_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Ctrl-C in the training pass of ``epoch`` (1-based)."""
    calls = {"n": 0}
    original = SupervisedStep.train_epoch

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == epoch:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SupervisedStep, "train_epoch", step)


def write_config(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# -- 1. extend a finished run ------------------------------------------------------------------------------------
def test_a_finished_run_is_extended_to_more_epochs_with_a_stretched_cosine(showers_file, tmp_path):
    run = tmp_path / "run"
    physnn.train(run_config(showers_file, epochs=2, scheduler={"name": "cosine"}), out=run, progress=False)
    result = invoke("train", "--out", run, "--resume", "--set", "train.epochs=3")
    assert result.exit_code == 0, result.output
    assert "extending" in result.output
    assert "from 2 to 3 epochs" in result.output
    assert "cosine" in result.output
    assert "stretched to 3 epochs" in result.output
    assert epochs_in(run) == [1, 2, 3]
    last = load_checkpoint(run, "last.pt")
    assert last["epoch"] == 3
    assert last["config"]["train"]["epochs"] == 3
    assert physnn.load_run_config(run / "config.yaml").train.epochs == 3
    lr3 = last["history"][2]["lr"]  # epoch 3 runs where a 3-epoch cosine is after epoch 2
    assert lr3 == pytest.approx(1e-3 * (1 + math.cos(math.pi * 2 / 3)) / 2)
    result = invoke("train", "--out", run, "--resume")
    assert result.exit_code == 2
    assert "already finished (3 epochs)" in result.output
    assert "--set train.epochs=" in result.output


def test_resume_refuses_settings_that_would_change_the_run(showers_file, tmp_path):
    run = tmp_path / "run"
    physnn.train(run_config(showers_file, epochs=1), out=run, progress=False)
    for args, words in ((["--set", "train.batch_size=64"], "train.batch_size"),
                        (["--set", "model.params.head=[]"], "model.params.head"),
                        (["--memory-budget", "1 GB"], "train.memory_budget"),
                        (["--init-from", run], "--init-from"),
                        (["--data", tmp_path / "d.yaml"], "--data")):
        result = invoke("train", "--out", run, "--resume", *args)
        assert result.exit_code == 2, result.output
        assert words in result.output
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    with pytest.raises(ConfigError, match="already done 1 epoch;"):
        physnn.train(out=run, resume=True, overrides=["train.epochs=1"], progress=False)
    assert epochs_in(run) == [1]


def test_an_early_stopped_run_continues_when_the_patience_is_raised(showers_file, tmp_path):
    run = tmp_path / "run"
    cfg = run_config(showers_file, epochs=30, early_stopping={"patience": 1, "monitor": "val_loss"},
                     optimizer={"lr": 0.05})
    first = physnn.train(cfg, out=run, progress=False)
    assert first.stopped_early
    done = len(first.history)
    with pytest.raises(ConfigError, match=r"stopped early.*train\.early_stopping\.patience"):
        physnn.train(out=run, resume=True, overrides=["train.epochs=40"], progress=False)
    more = physnn.train(out=run, resume=True, progress=False,
                        overrides=["train.early_stopping.patience=null", f"train.epochs={done + 1}"])
    assert len(more.history) == done + 1
    assert not more.stopped_early


# -- 2. Ctrl-C ----------------------------------------------------------------------------------------------------
def test_ctrl_c_after_two_epochs_says_how_to_continue(showers_file, tmp_path, monkeypatch):
    run = tmp_path / "run"
    cfg = write_config(tmp_path, run_config(showers_file, epochs=3))
    interrupt_in_epoch(monkeypatch, 3)
    result = invoke("train", cfg, "--out", run)
    assert result.exit_code == 130, result.output
    assert "interrupted in epoch 3 of 3" in result.output
    assert f"{run} holds a resumable run (last finished epoch 2)" in result.output
    assert f"physnn train --out {run} --resume" in result.output
    assert "no partial output" not in result.output
    monkeypatch.undo()
    result = invoke("train", "--out", run, "--resume")
    assert result.exit_code == 0, result.output
    assert epochs_in(run) == [1, 2, 3]


def test_ctrl_c_in_the_first_epoch_leaves_no_folder(showers_file, tmp_path, monkeypatch):
    run = tmp_path / "run"
    cfg = write_config(tmp_path, run_config(showers_file, epochs=1))
    interrupt_in_epoch(monkeypatch, 1)
    result = invoke("train", cfg, "--out", run)
    assert result.exit_code == 130, result.output
    assert "interrupted in epoch 1 of 1, before any epoch finished" in result.output
    assert not run.exists()
    monkeypatch.undo()
    result = invoke("train", cfg, "--out", run)  # the same command again: no --overwrite needed
    assert result.exit_code == 0, result.output


def test_ctrl_c_from_python_is_a_keyboard_interrupt_with_the_state(showers_file, tmp_path):
    from physnn.training.interrupt import TrainingInterrupted

    def stop(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        physnn.train(run_config(showers_file, epochs=2), out=tmp_path / "r", progress=False, on_epoch_end=stop)
    assert isinstance(info.value, TrainingInterrupted)
    assert info.value.finished == 1
    assert info.value.resumable
    assert "last finished epoch 1" in str(info.value)


# -- 3. transfer learning ------------------------------------------------------------------------------------------
def test_init_from_reports_what_was_transferred_and_frozen(showers_file, tmp_path):
    src = tmp_path / "src"
    physnn.train(run_config(showers_file, epochs=1), out=src, progress=False)
    cfg = write_config(tmp_path, run_config(showers_file, task="regression", epochs=1))
    result = invoke("train", cfg, "--out", tmp_path / "t", "--init-from", src, "--freeze", "features")
    assert result.exit_code == 0, result.output
    # TINY_CNN's features: a 3x3 convolution of 3 layers into 4 filters = 2 tensors, 4*3*3*3 + 4 = 112 values
    assert f"init from {src / 'best.pt'}: 2 tensors transferred (stages.0.*)" in result.output
    assert "frozen: features (1 layer, 112 parameters)" in result.output
    res = physnn.train(run_config(showers_file, task="regression", epochs=1), out=tmp_path / "f", init_from=src,
                       overrides=["train.features_lr=0.1"], progress=False)
    assert any("fine-tuned: features (1 layer, 112 parameters) at 0.1 x the learning rate" in n for n in res.notes)


# -- 4. progress and paths in logs -----------------------------------------------------------------------------------
def test_progress_lines_when_the_output_is_not_a_terminal(showers_file, tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSNN_PROGRESS_INTERVAL", "0")
    run = tmp_path / ("long-folder-name-" * 8) / ("another-long-name-" * 8) / "run"
    assert len(str(run)) > 300  # longer than the test terminal (COLUMNS=300)
    cfg = write_config(tmp_path, run_config(showers_file, epochs=2))
    result = invoke("train", cfg, "--out", run)
    assert result.exit_code == 0, result.output
    assert "epoch 1/2  batch 1/" in result.output
    assert "epoch 2/2  batch 1/" in result.output
    assert " loss " in result.output
    assert " s\n" in result.output
    assert str(run) in result.output  # the run folder in full, not cut or wrapped
    assert str(run / "best.pt") in result.output


def test_gan_epochs_print_progress_lines_too(showers_file, tmp_path, monkeypatch, capsys):
    from conftest import gan_config

    monkeypatch.setenv("PHYSNN_PROGRESS_INTERVAL", "0")
    physnn.train(gan_config(showers_file, epochs=1, samples_every=0), out=tmp_path / "g", progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1  batch 1/" in err
    assert "loss" in err


def test_a_bad_progress_interval_is_one_line(showers_file, tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSNN_PROGRESS_INTERVAL", "often")
    result = invoke("train", write_config(tmp_path, run_config(showers_file, epochs=1)), "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert "PHYSNN_PROGRESS_INTERVAL" in result.output
    assert len(result.output.strip().splitlines()) == 1
