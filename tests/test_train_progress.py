"""``physnn.train`` from Python shows its progress as the command does, unless told not to."""

from __future__ import annotations

import pytest
from conftest import run_config

import physnn


@pytest.fixture(scope="module")
def small_showers(tmp_path_factory):
    path = tmp_path_factory.mktemp("progress") / "showers.root"
    physnn.simulate("showers", path, events=300, seed=5)
    return path


def test_python_training_shows_its_epochs_by_default(small_showers, tmp_path, capsys):
    physnn.train(run_config(small_showers, epochs=2), out=tmp_path / "run")
    shown = capsys.readouterr()
    text = shown.err + shown.out
    assert "epoch   1" in text
    assert "epoch   2" in text
    assert "train_loss" in text


def test_progress_false_is_silent(small_showers, tmp_path, capsys):
    physnn.train(run_config(small_showers, epochs=2), out=tmp_path / "run", progress=False)
    shown = capsys.readouterr()
    assert shown.err == ""
    assert shown.out == ""


def test_python_training_says_its_notes(small_showers, tmp_path, capsys):
    """What the command says as a run starts (here: what --init-from transferred) is said in Python too."""
    first = physnn.train(run_config(small_showers, epochs=1), out=tmp_path / "a", progress=False)
    physnn.train(run_config(small_showers, epochs=1), out=tmp_path / "b", init_from=first.run_dir)
    assert "features" in capsys.readouterr().err


def test_the_bar_shows_exactly_where_interactive_says(monkeypatch):
    """One test decides terminal-or-notebook: make_progress draws a bar where interactive() is true, lines
    elsewhere."""
    from physnn.training import progress

    monkeypatch.setattr(progress, "interactive", lambda console=None: True)
    assert type(progress.make_progress(True)) is progress.Bar
    monkeypatch.setattr(progress, "interactive", lambda console=None: False)
    assert type(progress.make_progress(True)) is progress.Lines
    assert type(progress.make_progress(False)) is progress.Silent
