"""Command-line wording lives in physnn/cli: the layers below answer in Python's terms (``overwrite=True``,
``resume=True``) and carry the options they name; the CLI says ``--overwrite``, ``--resume``."""

from __future__ import annotations

import inspect
import re

import pytest
import typer
from conftest import run_config
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.errors import OutputError, PhysnnError

runner = CliRunner()


def test_the_bottom_layer_speaks_no_command_line_words():
    import physnn.errors

    assert not hasattr(PhysnnError, "command_line")
    assert not re.search(r"--[a-z]", inspect.getsource(physnn.errors))
    err = OutputError("out.root: the output exists; pass overwrite=True to replace it", options=["overwrite"])
    assert err.options == ("overwrite",)
    from physnn.cli.app import command_line

    assert command_line(err) == "out.root: the output exists; pass --overwrite to replace it"


def _interrupt_second_member(calls: dict[str, int]):
    def stop(row):
        calls["n"] += 1
        if calls["n"] == 2:  # the first epoch of member 1
            raise KeyboardInterrupt
    return stop


def test_an_interrupted_ensemble_says_overwrite_in_the_callers_words(showers_file, tmp_path):
    out = tmp_path / "ens"
    with pytest.raises(KeyboardInterrupt) as info:
        physnn.train(run_config(showers_file, task="regression", epochs=1, ensemble=2), out=out, progress=False,
                     on_epoch_end=_interrupt_second_member({"n": 0}))
    text = str(info.value)
    assert "holds no ensemble" in text
    assert "overwrite=True" in text
    assert "--" not in text
    assert info.value.options == ("overwrite",)


def test_a_resumable_interruption_in_python_says_resume_true(showers_file, tmp_path):
    def stop(row):
        raise KeyboardInterrupt

    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt) as info:
        physnn.train(run_config(showers_file, epochs=2), out=out, progress=False, on_epoch_end=stop)
    text = str(info.value)
    assert "resume=True" in text
    assert f"physnn.train(out={str(out)!r}, resume=True)" in text
    assert "--" not in text


def test_cli_exits_survive_a_typer_without_click_exception(monkeypatch, tmp_path):
    """The handler finds typer's usage-error class without relying on a class name; a bad input is still one
    line and exit 2, never a StopIteration traceback."""

    class Bare(ValueError):
        pass

    monkeypatch.setattr(typer, "BadParameter", Bare)
    out = tmp_path / "s.root"
    out.write_text("old")
    result = runner.invoke(app, ["simulate", "events", "-n", "10", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith("error:"), result.output
    assert "--overwrite" in result.output
    assert "StopIteration" not in result.output
