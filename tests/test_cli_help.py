"""What the terminal shows: --help of every command, physnn models, counts, figures and the next step."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import typer
from conftest import ae_config
from typer.testing import CliRunner

from physnn.cli import app

runner = CliRunner()
DEVICES = "<auto|cpu|cuda[:N]|mps>"


def commands(group=None, path=()):
    """Every command of the ``physnn`` tree as its argument path, e.g. ("simulate", "showers")."""
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name)


def help_of(*path: str) -> str:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", [(), *commands()], ids=lambda p: " ".join(p) or "physnn")
def test_help_shows_flags_as_flags(path):
    text = help_of(*path)
    assert "<bool>" not in text
    assert "--help" in text


#: What typer prints for a value without a metavar, or an argument on the usage line, in Python's terms.
PYTHON_TYPES = re.compile(r"<(?:str|int|float|bool|bytes|path|list|dict|tuple)\b[^>]*>|\b(?:list|dict|tuple)\[|"
                          r"\{[a-z_]+\}")


def help_at_80(*path: str) -> str:
    # COLUMNS only: typer reads TERMINAL_WIDTH once, at its first rich help, and keeps it for the whole process
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", [(), *commands()], ids=lambda p: " ".join(p) or "physnn")
def test_help_names_values_in_words_at_80_columns(path):
    """Issue 29: no ``<list[str]>``, ``<int range>``, ``<path>`` or ``{run}``: a value says what it is
    (``<file>``, ``<folder>``, ``<integer>``, a metavar of its own), an argument is named like click's ``RUN``."""
    text = help_at_80(*path)
    assert PYTHON_TYPES.findall(text) == [], text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_help_lists_simulate_first_then_the_commands_in_order():
    """Issue 29: the order a user needs them; each command's description fits two lines at 80 columns."""
    from physnn.cli import COMMANDS

    lines = [line[2:] for line in help_at_80().split("Commands")[1].splitlines() if line.startswith("│ ")]
    starts = [i for i, line in enumerate(lines) if line[:1].isalpha()]  # a command's first line: its name
    assert [lines[i].split()[0] for i in starts] == ["simulate", *dict(COMMANDS)]
    assert all(b - a <= 2 for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)), "\n".join(lines)


@pytest.mark.parametrize("group", [(), ("simulate",)], ids=["physnn", "simulate"])
def test_a_command_listing_reads_as_sentences(group):
    """Each command's description in a listing is one sentence reflowed to the width (a docstring's line break
    is not a line break in the listing), at most two lines at 80 columns."""
    lines = [line[2:].rstrip(" │") for line in help_at_80(*group).split("Commands")[1].splitlines()
             if line.startswith("│ ")]
    starts = [i for i, line in enumerate(lines) if line[:1].isalpha()]
    for a, b in zip(starts, [*starts[1:], len(lines)], strict=True):
        assert b - a <= 2, "\n".join(lines[a:b])
        if b - a == 2:  # reflowed: the next word would not have fitted on the first line (76 columns inside the box)
            assert len(lines[a]) + 1 + len(lines[a + 1].split()[0]) > 76, "\n".join(lines[a:b])


def test_help_lists_the_choices():
    for command in ("train", "predict", "denoise", "encode", "generate"):
        assert DEVICES in help_of(command), command
    for command, choices in (("evaluate", "<auto|all|train|val|test>"), ("scan", "threads, processes or synchronous"),
                             ("compare", "<low,high|low|high|none>"), ("export", "<onnx|torchscript>"),
                             ("generate", "<uniform|log-uniform>"), ("train", "<features>"),
                             ("predict", "zlib, lz4, zstd, lzma or none")):
        assert choices in help_of(command), (command, choices)


def test_simulate_help_shows_the_simulators_defaults():
    from physnn.simulation.events import EventConfig
    from physnn.simulation.showers import ShowerConfig

    showers, events = ShowerConfig(), EventConfig()
    text = " ".join(help_of("simulate", "showers").split())
    assert f"[default: ({','.join(showers.particles)})]" in text
    assert f"[default: ({showers.energy_min:g}:{showers.energy_max:g})]" in text
    assert "[default: (zlib:1)]" in text
    text = " ".join(help_of("simulate", "events").split())
    assert f"[default: ({events.mass_min:g}:{events.mass_max:g})]" in text


def test_a_bad_choice_is_still_one_line_and_exit_2():
    result = runner.invoke(app, ["scan", "x.root", "--scheduler", "slurm"])
    assert result.exit_code == 2
    assert "--scheduler 'slurm': expected threads, processes or synchronous" in result.output


def parse_tables(text: str) -> list[tuple[str, list[list[str]]]]:
    """The rich tables of ``text``: (title, rows of cells), a wrapped row's continuation lines joined."""
    tables: list[tuple[str, list[list[str]]]] = []
    title: list[str] = []
    rows: list[list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("┏"):  # the title: from its last line that begins "name: "
            starts = [i for i, t in enumerate(title) if re.match(r"[a-z_]+: ", t)]
            rows = []
            tables.append((" ".join(title[starts[-1]:] if starts else title), rows))
        elif line.startswith("└"):
            rows, title = None, []
        elif rows is None:
            title.append(line.strip())
        elif line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            if cells[0] or not rows:
                rows.append(cells)
            else:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    return tables


def test_models_shows_values_and_a_description_for_every_parameter():
    result = runner.invoke(app, ["models", "--layers"])
    assert result.exit_code == 0, result.output
    for word in ("Literal[", "Optional", "Union", "NoneType", "typing", "annotated", "<class"):
        assert word not in result.output, word
    tables = parse_tables(result.output)
    titles = [title.split(":")[0] for title, _ in tables]
    for name in ("cnn", "gru", "seq_conv", "dense_autoencoder", "gan", "conv", "pool", "dense", "dropout"):
        assert name in titles, name
    for title, rows in tables:
        assert rows, title
        descriptions: dict[str, str] = {}
        for name, values, default, description in rows:
            assert values, (title, name)
            assert default, (title, name)
            assert description, (title, name)
            assert description not in descriptions.values(), (title, name, description)
            descriptions[name] = description
    rows = {title.split(":")[0]: {r[0]: r for r in rows} for title, rows in tables}
    assert rows["pool"]["mode"][1] == "one of: max, average, sum"
    assert rows["pool"]["strides"][1:3] == ["int or list of int or null", "null"]
    assert rows["conv_autoencoder"]["code_size"][1] == "int > 0 or null"
    assert rows["gru"]["dropout"][1] == "float >= 0, < 1"
    assert rows["dense"]["kernel_regularizer"][1] == "mapping: l1, l2 or null"
    assert rows["gru"]["embedding"][1] == "list of layers (dense, dropout, activation)"


def test_counts_and_figures_read_alike():
    from physnn.fmt import num, percent, plural

    assert [plural(1, "epoch"), plural(2, "epoch"), plural(12500, "event")] == ["1 epoch", "2 epochs", "12,500 events"]
    assert [num(0.97312), num(12345.6), num(3.1234e-6), percent(0.01234)] == ["0.973", "12,346", "3.12e-06", "1.23%"]


def test_a_figure_just_below_one_is_never_rounded_up_to_one():
    """An AUC of 0.9996 printed as 1.000 reads as a perfect classifier: the digits grow until 1 - value shows."""
    from physnn.evaluation.summary import summary_rows
    from physnn.fmt import num

    assert [num(0.9996), num(0.99995), num(0.99996), num(0.9995), num(0.994)] == [
        "0.9996", "0.99995", "0.99996", "0.9995", "0.994"]
    assert num(-0.9996) == "-0.9996"
    figures = {"events": 1517, "split": "test", "classification": {
        "auc": 0.9996, "accuracy": 0.99962, "ece": 0.0126, "roc": {"auc_low": 0.9992, "auc_high": 0.99999}}}
    rows = dict(summary_rows(figures))
    assert rows["AUC"] == "0.99960 (68% bootstrap interval 0.99920\N{EN DASH}0.99999)"  # one set of decimals
    assert rows["accuracy"] == "0.9996"


def test_next_step_after_training_fits_the_task(tmp_path):
    """Each task says which command uses its run (no kind strings in the command line)."""
    from physnn.cli import _next_step
    from physnn.models.generation import GenerationTask
    from physnn.models.reconstruction import ReconstructionTask
    from physnn.models.tasks import Task

    def result(cls, key=None):
        task = object.__new__(cls)  # the command depends on the task's class and what it reconstructs only
        task.key = key
        return SimpleNamespace(run_dir=tmp_path, task=task)

    assert _next_step(result(Task)) == f"physnn predict {tmp_path} FILE --mc-samples 50 --out preds.root"
    assert _next_step(result(GenerationTask)).startswith(f"physnn generate {tmp_path} ")
    assert _next_step(result(ReconstructionTask, "image")).startswith("physnn denoise")
    assert _next_step(result(ReconstructionTask, "scalars")).startswith("physnn encode")


def test_a_one_epoch_autoencoder_run_says_1_epoch_and_points_to_denoise(showers_file, tmp_path):
    import yaml

    cfg = tmp_path / "ae.yaml"
    cfg.write_text(yaml.safe_dump(ae_config(showers_file, epochs=1)))
    result = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "ae")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert re.search(r"finished after 1 epoch;", text), text
    assert f"physnn denoise {tmp_path / 'ae'}" in text
    assert "physnn predict" not in text
