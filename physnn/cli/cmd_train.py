"""``physnn train`` and ``physnn demo``."""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from physnn.cli.app import (
    DEVICE_HELP,
    DEVICES,
    FormatOpt,
    SeedOpt,
    SetOpt,
    command_line,
    console,
    err_console,
    format_option,
    image_format,
    overwrite_option,
    user_errors,
)
from physnn.cli.show import _print_evaluation, _print_metrics
from physnn.fmt import plural

CurvesFormatOpt = format_option("File format of the loss curves (and a GAN's samples): png, or vector svg or pdf.")
RunOverwriteOpt = overwrite_option("Replace an existing run folder.")
DemoOverwriteOpt = overwrite_option("Replace an earlier demo's simulated files, runs, predictions and reports in "
                                    "--out.")


@user_errors
def train(
    config: Annotated[Path | None, typer.Argument(help="Run config YAML (data, model, task, train).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (config, checkpoints, metrics, plots).",
                                      metavar="<folder>")] = Path(
        "physnn-run"),
    data: Annotated[Path | None, typer.Option(help="Data config YAML (replaces the run config's data).",
                                                          metavar="<file>")] = None,
    model: Annotated[Path | None, typer.Option(help="Model config YAML (replaces the run config's model).",
                                                           metavar="<file>")] = None,
    train_cfg: Annotated[Path | None, typer.Option("--train", help="Training config YAML (replaces train).",
                                                               metavar="<file>")] = None,
    set_: SetOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")] = False,
    init_from: Annotated[str | None, typer.Option("--init-from", help="Checkpoint or run folder whose feature "
                                                  "extractor initialises the model (transfer learning).")] = None,
    freeze: Annotated[str | None, typer.Option(help="'features': freeze the transferred features (default: train "
                                               "them all).", metavar="<features>")] = None,
    device: Annotated[str | None, typer.Option(help=DEVICE_HELP, metavar=DEVICES,
                                               show_default="the run config's train.device, auto")] = None,
    overwrite: RunOverwriteOpt = False,
    memory_budget: Annotated[str | None, typer.Option("--memory-budget", help="Peak memory, e.g. '4 GB': stream "
                                                      "the data from the files when they do not fit.")] = None,
    ensemble: Annotated[int | None, typer.Option("--ensemble", help="Train N members with seeds seed, seed+1, ... "
                                                 "into one run folder (a deep ensemble).", min=2)] = None,
    fmt: CurvesFormatOpt = "png",
) -> None:
    """Train a model (CNN, ...) from ROOT files; writes checkpoints, metrics and loss plots to --out."""
    from physnn import api

    fmt = image_format(fmt)
    if config is None and not resume and data is None:
        from physnn.errors import ConfigError

        msg = "train: give a run config (physnn train configs/train/epi.yaml) or --data, or --resume"
        raise ConfigError(msg)
    from physnn.training.interrupt import TrainingInterrupted

    sections = {"data": data, "model": model, "train": train_cfg}
    source = config if config is not None else ({} if not resume else None)
    extra = [f"train.memory_budget={memory_budget}"] if memory_budget is not None else []
    extra += [f"train.ensemble={ensemble}"] if ensemble is not None else []
    say = functools.partial(err_console.print, soft_wrap=True, highlight=False, markup=False)
    try:
        result = api.train(source, out=out, overrides=[*(set_ or []), *extra], sections=sections, resume=resume,
                           init_from=init_from, freeze=freeze, device=device, overwrite=overwrite, progress=True,
                           say=say, image_format=fmt)
    except TrainingInterrupted as stopped:  # what Ctrl-C left: a resumable run, or nothing
        say(_interrupted(stopped))
        raise typer.Exit(130) from None
    from physnn.training.distributed import from_environment

    if not from_environment().main:
        return  # torchrun: rank 0 reports
    if result.members:
        _print_members(result)
    else:
        stop = "stopped early" if result.stopped_early else "finished"
        console.print(f"{stop} after {plural(len(result.history), 'epoch')}; task: {result.task.describe()}")
        _print_metrics(result.best, "best epoch")
    # soft wrap: long paths stay whole in a log (not wrapped at the width of a terminal there is none of)
    console.print(f"best checkpoint: {result.run_dir / 'best.pt'}", soft_wrap=True, highlight=False, markup=False)
    console.print(f"run folder: {result.run_dir}  (next: {_next_step(result)})", soft_wrap=True, highlight=False,
                  markup=False)


def _interrupted(stopped: Any) -> str:
    """What an interrupted training left, in the command line's words: the ``physnn train`` line that
    continues it (``physnn.train(out=..., resume=True)`` in Python), ``--overwrite`` for ``overwrite=True``."""
    if not stopped.retry:
        return command_line(stopped)
    flags = [f"--{name.replace('_', '-')}" if value is True else f"--{name.replace('_', '-')} {shlex.quote(str(value))}"
             for name, value in stopped.retry.items()]
    return f"{stopped.message}; continue with: physnn train {' '.join(flags)}"


def _print_members(result: Any) -> None:
    """An ensemble: one line per member, then the mean of their best metrics."""
    console.print(f"ensemble of {len(result.members)} members; task: {result.task.describe()}")
    for index, member in enumerate(result.members):
        console.print(f"member {index}: best epoch {member.best.get('epoch', '?')} of {len(member.history)}, "
                      f"{member.run_dir}", soft_wrap=True, highlight=False, markup=False)
    _print_metrics(result.best, "members' mean at their best epochs")


def _next_step(result: Any) -> str:
    """The command that uses a finished run: generate for a GAN, denoise (or encode) for an autoencoder, else
    predict."""
    return result.task.next_command(result.run_dir)


@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo outputs.",
                                      metavar="<folder>")] = Path("physnn-demo"),
    events: Annotated[int, typer.Option("--events", "-n", help="Showers (and collision events) to simulate.",
                                        min=200)] = 10000,
    seed: SeedOpt = 1,
    epochs: Annotated[int | None, typer.Option(help="Epochs per model (default: the demo configs').", min=1)] = None,
    mc_samples: Annotated[int, typer.Option("--mc-samples", "-T", help="MC-dropout passes.", min=2)] = 50,
    overwrite: DemoOverwriteOpt = False,
    fmt: FormatOpt = "png",
) -> None:
    """The main job on built-in demo data: simulate, train, predict with error bars, evaluate.

    Simulates showers and collision events, trains CNN (photon/pi0, energy) and particle-flow network
    (signal/background, resonance mass) models, predicts with MC-dropout error bars, evaluates, and says where the
    outputs are."""
    from physnn.demo import run

    fmt = image_format(fmt)
    results = run(out, events=events, seed=seed, epochs=epochs, mc_samples=mc_samples, overwrite=overwrite,
                  say=lambda text: console.print(text, highlight=False), image_format=fmt)
    jobs = (("photon", "photon/pi0 classifier (CNN)"), ("energy", "energy regressor (CNN)"),
            ("events_cls", "signal/background classifier (PFN)"), ("events_mass", "mass regressor (PFN)"))
    for name, _ in jobs:
        _print_evaluation(results[name]["figures"])
    for name, target in (("energy", "energy"), ("events_mass", "mass")):
        fig = results[name]["figures"]["regression"][target]
        for base_name, base in fig["baselines"].items():
            console.print(f"{target} network vs {base_name} (test split): {base['comparison']['summary']}",
                          highlight=False)
    table = Table(title="outputs", title_justify="left")
    table.add_column("what")
    table.add_column("where")
    table.add_row("simulated showers (ROOT)", str(results["showers"]))
    table.add_row("simulated photons and pi0s (ROOT)", str(results["gamma_pi0"]))
    table.add_row("simulated collision events (ROOT)", str(results["events"]))
    for name, label in jobs:
        table.add_row(f"{label}: run (checkpoints, metrics)", str(results[name]["run"]))
        table.add_row(f"{label}: predictions (ROOT)", str(results[name]["predictions"]))
        table.add_row(f"{label}: report page (figures, plots, config)",
                      str(results[name].get("page") or results[name]["report"]))
    console.print(table)


