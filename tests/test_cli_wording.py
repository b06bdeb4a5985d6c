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


# -- one definition of each option ---------------------------------------------------------------------------------
def test_the_command_line_takes_the_formats_check_format_takes(monkeypatch):
    """``--format`` is checked by check_format (one list of formats), its error worded for the command line."""
    from physnn.cli.app import image_format
    from physnn.errors import ConfigError
    from physnn.evaluation import image_format as formats

    assert image_format("SVG") == "svg"
    with pytest.raises(ConfigError, match=r"^--format 'jpg': expected png, svg or pdf$"):
        image_format("jpg")
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, "eps"))
    assert image_format("EPS") == "eps"


def _params(command: str) -> dict[str, object]:
    import typer.main

    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params}  # type: ignore[attr-defined]


def test_the_baseline_metavar_names_every_registered_baseline():
    """The metavar is a literal: importing the registry (numpy, pydantic) would make ``physnn --version`` slow."""
    from physnn.evaluation.baselines import BASELINES

    assert _params("evaluate")["baseline"].metavar == "<" + "|".join(BASELINES) + ">"


def test_every_command_shares_the_format_and_report_options():
    from physnn.evaluation.image_format import FORMATS

    metavar = "<" + "|".join(FORMATS) + ">"
    for command in ("evaluate", "compare", "train", "demo"):
        assert _params(command)["fmt"].metavar == metavar, command
    assert _params("evaluate")["out"].help == _params("compare")["out"].help
    assert "--overwrite" in _params("evaluate")["out"].help
    assert _params("evaluate")["overwrite"].help == _params("compare")["overwrite"].help
    assert "report" in _params("demo")["overwrite"].help


def _count_checks(monkeypatch) -> dict[str, int]:
    from physnn.evaluation import denoising, fastsim, image_format, judge, plots, report, side_by_side

    calls = {"n": 0}
    original = image_format.check_format

    def counted(value):
        calls["n"] += 1
        return original(value)

    for module in (denoising, fastsim, judge, plots, report, side_by_side):
        if hasattr(module, "check_format"):
            monkeypatch.setattr(module, "check_format", counted)
    return calls


def test_the_image_format_is_checked_once_where_it_enters(monkeypatch, reg_run, showers_file, tmp_path):
    preds = tmp_path / "p.root"
    physnn.predict(reg_run.run_dir, showers_file, out=preds)
    calls = _count_checks(monkeypatch)
    physnn.evaluate(preds, n_boot=0, plots=False, image_format="svg")
    assert calls["n"] == 1
    calls["n"] = 0
    physnn.compare(showers_file, showers_file, out=tmp_path / "cmp", classifier=[], bins=5, energy=None,
                   plots=False, image_format="svg")
    assert calls["n"] == 1


def test_an_ensemble_with_init_from_is_refused_in_the_configs_words(showers_file, tmp_path):
    from physnn.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        physnn.train(run_config(showers_file, task="regression", epochs=1, ensemble=2), out=tmp_path / "e",
                     init_from=tmp_path / "src", progress=False)
    assert "train.init_from" in str(err.value)
    assert "--" not in str(err.value)
