"""The ``physnn`` command: parse options, call :mod:`physnn.api`, print results.

No physics or data logic lives here. Errors a user can cause
(:class:`~physnn.errors.PhysnnError`) are printed as one line on stderr and
exit with status 2. Heavy modules (torch, uproot) are imported inside the
commands so that ``physnn --version`` and ``--help`` answer at once.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from physnn._version import __version__
from physnn.evaluation.summary import DASH, summary_rows
from physnn.fmt import num, percent, plural, with_interval

app = typer.Typer(
    name="physnn",
    help="Deep learning for physicists: ROOT files in, trained models and predictions out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
simulate_app = typer.Typer(help="Simulate demo data with the built-in detector simulator.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")

console = Console()
err_console = Console(stderr=True)
#: The width of tables and messages written to a file or a pipe (a terminal gives its own).
LOG_WIDTH = 200

F = TypeVar("F", bound=Callable[..., Any])


def _flags_take_no_value() -> None:
    """Show a flag in ``--help`` as a flag: typer 0.29's rich help prints ``<bool>`` after every boolean option,
    ``--help`` included, as if it took a value (its plain help and click do not)."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "physnn", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    display_type_rich.physnn = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()


def debugging() -> bool:
    """``physnn --debug ...`` or ``PHYSNN_DEBUG=1``: show tracebacks instead of one line."""
    return os.environ.get("PHYSNN_DEBUG", "") not in ("", "0")


def user_errors(func: F) -> F:
    """Turn :class:`PhysnnError` into one line on stderr and exit code 2; anything unforeseen too, with a hint
    (``--debug`` shows the traceback, for a bug report)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import click

        from physnn.errors import PhysnnError

        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.ClickException, typer.Exit):  # a command's own exit
            raise
        except PhysnnError as err:
            if debugging():
                raise
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: no partial output was left behind")
            raise typer.Exit(130) from None
        except Exception as err:
            if debugging():
                raise
            text = str(err).strip().splitlines()[0] if str(err).strip() else ""
            from rich.markup import escape

            err_console.print(f"[bold red]error:[/] {escape(f'unexpected {type(err).__name__}: {text}')} (this may "
                              "be a physnn bug: rerun with physnn --debug to see the traceback, and report it)",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"physnn {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error (or PHYSNN_DEBUG=1).")]
    = False,
) -> None:
    """physnn: train CNN, LSTM/GRU, autoencoder and GAN models on ROOT files."""
    if debug:
        os.environ["PHYSNN_DEBUG"] = "1"
    for stream in (console, err_console):  # a log file has no width: tables and paths are not cut at 80 columns
        log = not stream.is_terminal and "COLUMNS" not in os.environ
        stream.width = LOG_WIDTH if log else None  # type: ignore[assignment]  # None: COLUMNS, else the terminal's


def _range(text: str | None, option: str) -> tuple[float, float] | None:
    from physnn.errors import ConfigError

    if text is None:
        return None
    lo, sep, hi = text.partition(":")
    try:
        low = float(lo)
        high = float(hi) if sep else low
    except ValueError:
        msg = f"{option} {text!r}: expected MIN:MAX (e.g. 1:100) or a single value"
        raise ConfigError(msg) from None
    return low, high


OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output ROOT file (written atomically).")]
EventsOpt = Annotated[int, typer.Option("--events", "-n", help="Number of events.", min=1)]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")]
CompressionOpt = Annotated[str | None, typer.Option(
    help="Compression of the ROOT file: zlib, lz4, zstd, lzma or none, with an optional level, e.g. zstd:5 "
         "(default levels: zlib 1, lz4 4, zstd 5, lzma 9).", metavar="<algorithm[:level]>", show_default="zlib:1")]
#: What --device accepts, for --help.
DEVICES = "<auto|cpu|cuda[:N]|mps>"
DEVICE_HELP = "Where to run: auto takes CUDA, then Apple MPS, then the CPU."
DeviceOpt = Annotated[str, typer.Option(help=DEVICE_HELP, metavar=DEVICES)]
MapOpt = Annotated[list[str] | None, typer.Option("--map", metavar="<old=new>", help="Read the run's branch OLD "
                                                  "from the file's NEW (repeatable or comma separated); predict's "
                                                  "outputs keep the run's names, denoise keeps the file's layout.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML file of simulator settings.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a setting: KEY=VALUE (repeatable).",
                                                  metavar="<key=value>")]


def _run_simulation(kind: str, out: Path, events: int, seed: int, config: Path | None,
                    overrides: list[str], overwrite: bool, compression: str | None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from physnn import api

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task(f"simulating {kind}", total=events)
        result = api.simulate(kind, out, events=events, seed=seed, config=config, overrides=overrides,
                              overwrite=overwrite, compression=compression,
                              progress=lambda n: bar.advance(task, n))
    console.print(f"wrote {plural(result.events, kind[:-1])} to {result.path}:{result.tree} "
                  f"in {num(result.seconds)} s ({num(result.rate)} events/s)")


@simulate_app.command("showers")
@user_errors
def simulate_showers(
    out: OutOpt,
    events: EventsOpt = 1000,
    seed: SeedOpt = 0,
    particles: Annotated[str | None, typer.Option(
        help="Particle types, comma-separated, some of e-, gamma, pi+; an event's label is its type's position in "
             "this list.", metavar="<list>", show_default="e-,gamma,pi+")] = None,
    energy: Annotated[str | None, typer.Option(help="Incident energy in GeV: MIN:MAX or one value.",
                                               metavar="<min:max>", show_default="1:100")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
    compression: CompressionOpt = None,
) -> None:
    """Calorimeter showers: TTree 'showers' with image[L][H][W] (GeV), energy, pdgid, label, x0, y0."""
    overrides = list(set_ or [])
    if particles:
        overrides.append(f"particles=[{', '.join(repr(p.strip()) for p in particles.split(','))}]")
    bounds = _range(energy, "--energy")
    if bounds:
        overrides += [f"energy_min={bounds[0]}", f"energy_max={bounds[1]}"]
    _run_simulation("showers", out, events, seed, config, overrides, overwrite, compression)


@simulate_app.command("events")
@user_errors
def simulate_events(
    out: OutOpt,
    events: EventsOpt = 10000,
    seed: SeedOpt = 0,
    mass: Annotated[str | None, typer.Option(help="Signal resonance mass in GeV: MIN:MAX (uniform) or one value.",
                                             metavar="<min:max>", show_default="50:150")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
    compression: CompressionOpt = None,
) -> None:
    """Particle-list events: TTree 'events' with jagged part_* branches, n_part, label, mass."""
    overrides = list(set_ or [])
    bounds = _range(mass, "--mass")
    if bounds:
        overrides += [f"mass_min={bounds[0]}", f"mass_max={bounds[1]}"]
    _run_simulation("events", out, events, seed, config, overrides, overwrite, compression)


@app.command()
@user_errors
def inspect(
    files: Annotated[list[str], typer.Argument(help="ROOT files or globs.")],
    probe: Annotated[int, typer.Option(help="Entries read to find shapes and lengths.", min=1)] = 10000,
) -> None:
    """List trees/RNTuples, entries, branches, types, and what can serve as image, sequence or scalar."""
    from physnn import api

    for tree in api.inspect(files, probe=probe):
        console.print(f"{tree.file}:{tree.name}  ({tree.kind}, {tree.entries:,} entries)", soft_wrap=True,
                      highlight=False, markup=False)  # a path stays whole on its line
        table = Table()
        for column in ("branch", "type", "role", "shape / lengths", "collection"):
            table.add_column(column)
        for row in tree.branches:
            if row.shape is not None:
                detail = "x".join(str(s) for s in row.shape)
            elif row.lengths:
                detail = (f"median {row.lengths['median']:g}, 95% {row.lengths['q95']:g}, "
                          f"max {row.lengths['max']}")
            else:
                detail = row.note or ""
            table.add_row(row.name, row.type, row.role, detail, row.collection or "")
        console.print(table)
        if tree.probed < tree.entries:
            console.print(f"(shapes and lengths from the first {tree.probed:,} entries)")
        if tree.friends:
            console.print(f"friend trees saved with it: {'; '.join(tree.friends)}", soft_wrap=True)
        if tree.meta:
            meta = tree.meta
            console.print(f"written by physnn {meta.get('physnn')} ({meta.get('command')}) on {meta.get('created')}: "
                          f"config {meta.get('config_hash')}, seed {meta.get('seed')}, "
                          f"inputs {', '.join(meta.get('inputs') or []) or 'none'}", soft_wrap=True)


@app.command()
@user_errors
def scan(
    files: Annotated[list[str], typer.Argument(help="ROOT files or globs.")],
    tree: Annotated[str | None, typer.Option(help="Tree name (default: the only one).")] = None,
    branches: Annotated[str | None, typer.Option(help="Comma-separated branch names or patterns (part_*).")] = None,
    step_size: Annotated[str, typer.Option(help="Partition size per file, e.g. '100 MB' or 50000.")] = "100 MB",
    scheduler: Annotated[str, typer.Option(help="The dask scheduler: threads, processes or synchronous.",
                                           metavar="<scheduler>")] = "threads",
    workers: Annotated[int | None, typer.Option(help="Workers of the dask scheduler.", min=1)] = None,
) -> None:
    """Exact statistics over every entry of many files, in parallel (uproot.dask + dask-awkward)."""
    from physnn import api

    if scheduler not in ("threads", "processes", "synchronous"):
        from physnn.errors import ConfigError

        msg = f"--scheduler {scheduler!r}: expected threads, processes or synchronous"
        raise ConfigError(msg)
    step: str | int = int(step_size) if step_size.isdigit() else step_size
    rows = api.scan(files, tree=tree, branches=branches.split(",") if branches else None, step_size=step,
                    scheduler=scheduler, workers=workers)
    entries = rows[0].entries if rows else 0
    table = Table(title=f"{', '.join(files)}: {entries:,} entries", title_justify="left")
    for column in ("branch", "type", "lengths: median / q95 / q99 / max", "min", "max", "mean", "NaN/inf"):
        table.add_column(column)
    for row in rows:
        lengths = " / ".join(f"{row.lengths[k]:g}" for k in ("median", "q95", "q99", "max")) if row.lengths else ""
        number = lambda v: "" if v is None else num(v)  # noqa: E731
        table.add_row(row.name, row.type, lengths, number(row.minimum), number(row.maximum), number(row.mean),
                      f"{row.nonfinite:,}")
    console.print(table)


def _print_bundle(bundle: Any) -> None:
    table = Table(title="tensors", title_justify="left")
    for column in ("split", "events", "tensors"):
        table.add_column(column)
    for name in ("train", "val", "test"):
        part = getattr(bundle, name)
        shapes = ", ".join(f"{k} {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
                           for k, v in part.tensors().items())
        table.add_row(name, f"{len(part):,}", shapes)
    console.print(table)
    info = bundle.info
    console.print(f"read {info['entries_read']:,} entries, selected {info['selected']:,}, "
                  f"dropped {info['dropped_nonfinite']:,} with NaN/inf")
    if info["max_length"] is not None:
        li = info["length_info"]
        extra = (f"; median length {li['median']:g}, {percent(li['clipped_fraction'])} of events clipped"
                 if "median" in li else "")
        console.print(f"sequences padded to {info['max_length']} ({li.get('source')}){extra}")
    if info["classes"] is not None:
        console.print(f"classes: {', '.join(f'{i}={c}' for i, c in enumerate(info['classes']))}")


@app.command("load")
@user_errors
def load_cmd(
    config: Annotated[Path, typer.Argument(help="Data config YAML (see configs/data/).")],
    set_: SetOpt = None,
) -> None:
    """Read a data config into tensors and report shapes, splits, lengths and classes (a dry run)."""
    from physnn import api

    _print_bundle(api.load(config, overrides=list(set_ or [])))


def _parameter_table(title: str, rows: list[Any]) -> Table:
    """A table of :class:`~physnn.models.describe.ParamRow`: parameter, allowed values, default, description."""
    table = Table(title=title, title_justify="left")
    table.add_column("parameter", no_wrap=True)
    table.add_column("values")
    table.add_column("default")
    table.add_column("description")
    for row in rows:
        table.add_row(row.name, row.values, row.default, row.description)
    return table


@app.command()
@user_errors
def models(
    layers: Annotated[bool, typer.Option("--layers", help="Also list the layer types and their keys.")] = False,
) -> None:
    """List the registered models and their parameters (what model.params in a config accepts)."""
    from physnn import api
    from physnn.models.describe import layer_types, parameter_rows, summary

    for name, entry in api.list_models().items():
        console.print(_parameter_table(f"{name}: {entry.summary}", parameter_rows(entry.params)))
    if layers:
        console.print("layer types: the entries of model.params features, head, encoder, ... "
                      "({type: conv, filters: 32, ...})", highlight=False, markup=False)
        for kind, cls in layer_types().items():
            rows = parameter_rows(cls)
            console.print(_parameter_table(f"{kind}: {summary(cls)}", rows) if rows else
                          f"{kind}: {summary(cls)} (no other keys)", highlight=False, markup=False)


def _print_metrics(row: dict[str, Any], title: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in row.items():
        table.add_row(key, num(value) if isinstance(value, float) else f"{value:,}" if isinstance(value, int)
                      else str(value))
    console.print(table)


@app.command()
@user_errors
def train(
    config: Annotated[Path | None, typer.Argument(help="Run config YAML (data, model, task, train).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (config, checkpoints, metrics, plots).")] = Path(
        "physnn-run"),
    data: Annotated[Path | None, typer.Option(help="Data config YAML (replaces the run config's data).")] = None,
    model: Annotated[Path | None, typer.Option(help="Model config YAML (replaces the run config's model).")] = None,
    train_cfg: Annotated[Path | None, typer.Option("--train", help="Training config YAML (replaces train).")] = None,
    set_: SetOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")] = False,
    init_from: Annotated[str | None, typer.Option("--init-from", help="Checkpoint or run folder whose feature "
                                                  "extractor initialises the model (transfer learning).")] = None,
    freeze: Annotated[str | None, typer.Option(help="'features': freeze the transferred features (default: train "
                                               "them all).", metavar="<features>")] = None,
    device: Annotated[str | None, typer.Option(help=DEVICE_HELP, metavar=DEVICES,
                                               show_default="the run config's train.device, auto")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing run folder.")] = False,
    memory_budget: Annotated[str | None, typer.Option("--memory-budget", help="Peak memory, e.g. '4 GB': stream "
                                                      "the data from the files when they do not fit.")] = None,
) -> None:
    """Train a model (CNN, ...) from ROOT files; writes checkpoints, metrics and loss plots to --out."""
    from physnn import api

    if config is None and not resume and data is None:
        from physnn.errors import ConfigError

        msg = "train: give a run config (physnn train configs/train/epi.yaml) or --data, or --resume"
        raise ConfigError(msg)
    from physnn.training.interrupt import TrainingInterrupted

    sections = {"data": data, "model": model, "train": train_cfg}
    source = config if config is not None else ({} if not resume else None)
    extra = [f"train.memory_budget={memory_budget}"] if memory_budget is not None else []
    say = functools.partial(err_console.print, soft_wrap=True, highlight=False, markup=False)
    try:
        result = api.train(source, out=out, overrides=[*(set_ or []), *extra], sections=sections, resume=resume,
                           init_from=init_from, freeze=freeze, device=device, overwrite=overwrite, progress=True,
                           say=say)
    except TrainingInterrupted as stopped:  # what Ctrl-C left: a resumable run, or nothing
        say(str(stopped))
        raise typer.Exit(130) from None
    from physnn.training.distributed import from_environment

    if not from_environment().main:
        return  # torchrun: rank 0 reports
    stop = "stopped early" if result.stopped_early else "finished"
    console.print(f"{stop} after {plural(len(result.history), 'epoch')}; task: {result.task.describe()}")
    _print_metrics(result.best, "best epoch")
    # soft wrap: long paths stay whole in a log (not wrapped at the width of a terminal there is none of)
    console.print(f"best checkpoint: {result.run_dir / 'best.pt'}", soft_wrap=True, highlight=False, markup=False)
    console.print(f"run folder: {result.run_dir}  (next: {_next_step(result)})", soft_wrap=True, highlight=False,
                  markup=False)


def _next_step(result: Any) -> str:
    """The command that uses a finished run: generate for a GAN, denoise (or encode) for an autoencoder, else
    predict."""
    run, kind = result.run_dir, result.task.kind
    if kind == "generation":
        return f"physnn generate {run} --events 10000 --out fastsim.root"
    if kind == "reconstruction":
        return (f"physnn denoise {run} FILE --out denoised.root" if getattr(result.task, "key", None) == "image"
                else f"physnn encode {run} FILE --out codes.root")
    return f"physnn predict {run} FILE --mc-samples 50 --out preds.root"


@app.command()
@user_errors
def predict(
    run: Annotated[str, typer.Argument(help="Run folder or checkpoint (.pt).")],
    files: Annotated[list[str] | None, typer.Argument(help="Input ROOT files/globs (default: training files).")] = None,
    out: OutOpt = Path("predictions.root"),
    mc_samples: Annotated[int, typer.Option("--mc-samples", "-T", help="MC-dropout passes per event (0: off).",
                                            min=0)] = 0,
    keep_samples: Annotated[bool, typer.Option("--keep-samples", help="Also write all T samples.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the MC-dropout masks.")] = 0,
    tree: Annotated[str | None, typer.Option(help="Input tree (default: the training config's).")] = None,
    selection: Annotated[str | None, typer.Option(help="Cut applied before predicting, in the file's branch names "
                                                  "(default: none); only selected events are written unless "
                                                  "--aligned.")] = None,
    aligned: Annotated[bool, typer.Option("--aligned", help="Write every input entry (a ROOT friend of the input): "
                                          "selected true for those predicted, NaN/-1 elsewhere.")] = False,
    mapping: MapOpt = None,
    batch_size: Annotated[int, typer.Option(help="Events per forward pass.", min=1)] = 1024,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    compression: CompressionOpt = None,
) -> None:
    """Predict every event (optionally with MC-dropout error bars) and write a ROOT tree aligned with the input."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from physnn import api

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("predicting", total=None)
        result = api.predict(run, files or None, out=out, mc_samples=mc_samples, keep_samples=keep_samples,
                             tree=tree, selection=selection, aligned=aligned, mapping=mapping,
                             batch_size=batch_size, device=device, overwrite=overwrite, compression=compression,
                             progress=lambda n: bar.advance(task, n), seed=seed)
    mode = f"MC dropout, T = {mc_samples}" if mc_samples else "deterministic"
    console.print(f"wrote {plural(result.events, 'prediction')} ({mode}) to {result.path}:predictions "
                  f"in {num(result.seconds)} s ({num(result.rate)} events/s)")
    if aligned:
        console.print(f"aligned with the input: {result.entries:,} entries, selected true for the "
                      f"{result.events:,} predicted (friend it: AddFriend(\"nn=predictions\", \"{result.path}\"))",
                      highlight=False)
    console.print(_split_summary(result.counts))
    for note in result.meta.get("notes", []):
        console.print(f"note: {note}", highlight=False)


def _split_summary(counts: dict[str, int]) -> str:
    """One line: events per training split, from other files, and outside the training selection."""
    text = (f"split: {counts['train']:,} train, {counts['val']:,} val, {counts['test']:,} test, "
            f"{counts['unknown']:,} from files not used in training (split -1)")
    if counts.get("outside_selection"):
        text += f"; {counts['outside_selection']:,} outside the training selection (in_selection 0)"
    return text


@app.command()
@user_errors
def denoise(
    run: Annotated[str, typer.Argument(help="Autoencoder run folder or checkpoint (.pt).")],
    files: Annotated[list[str] | None, typer.Argument(help="Input ROOT files/globs (default: training files).")] = None,
    out: OutOpt = Path("denoised.root"),
    mc_samples: Annotated[int, typer.Option("--mc-samples", "-T", help="MC-dropout passes: adds <image>_std.",
                                            min=0)] = 0,
    add_noise: Annotated[bool, typer.Option("--add-noise", help="Apply the run's training noise first (seeded); "
                                            "keeps <image>_noisy.")] = False,
    seed: SeedOpt = 0,
    tree: Annotated[str | None, typer.Option(help="Input tree (default: the training config's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Events per forward pass.", min=1)] = 256,
    device: DeviceOpt = "auto",
    mapping: MapOpt = None,
    overwrite: OverwriteOpt = False,
    compression: CompressionOpt = None,
) -> None:
    """Write denoised images in the input's layout: same tree, same branches, images replaced."""
    from physnn import api

    def skipped(why: dict[str, str]) -> None:  # said before the work
        err_console.print("not copied: " + "; ".join(f"{name}: {reason}" for name, reason in why.items()),
                          markup=False, highlight=False)

    result = api.denoise(run, files or None, out=out, mc_samples=mc_samples, add_noise=add_noise, seed=seed,
                         tree=tree, batch_size=batch_size, device=device, overwrite=overwrite,
                         compression=compression, on_skipped=skipped, mapping=mapping)
    console.print(f"wrote {plural(result.events, 'denoised event')} to {result.path}:{result.meta['tree']} "
                  f"in {num(result.seconds)} s ({num(result.rate)} events/s)")


@app.command()
@user_errors
def encode(
    run: Annotated[str, typer.Argument(help="Run folder or checkpoint (.pt): an autoencoder or any model.")],
    files: Annotated[list[str] | None, typer.Argument(help="Input ROOT files/globs (default: training files).")] = None,
    out: OutOpt = Path("codes.root"),
    clusters: Annotated[int, typer.Option(help="k-means clusters on the codes -> branch 'cluster' (0: off).",
                                          min=0)] = 0,
    seed: SeedOpt = 0,
    tree: Annotated[str | None, typer.Option(help="Input tree (default: the training config's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Events per forward pass.", min=1)] = 1024,
    device: DeviceOpt = "auto",
    mapping: MapOpt = None,
    overwrite: OverwriteOpt = False,
    compression: CompressionOpt = None,
) -> None:
    """Write each event's code (code_0 ... code_{D-1}), optionally a k-means cluster id, aligned with the input."""
    from physnn import api

    result = api.encode(run, files or None, out=out, clusters=clusters, seed=seed, tree=tree,
                        batch_size=batch_size, device=device, overwrite=overwrite, compression=compression,
                        mapping=mapping)
    width = result.meta.get("code_size")
    each = f" ({plural(width, 'number')} each)" if width else ""
    groups = f", {plural(clusters, 'k-means cluster')}" if clusters else ""
    console.print(f"wrote codes of {plural(result.events, 'event')} to {result.path}:codes{each}{groups} "
                  f"in {num(result.seconds)} s")


@app.command()
@user_errors
def evaluate(
    predictions: Annotated[Path, typer.Argument(help="Predictions ROOT file from physnn predict, or an "
                                                "autoencoder or GAN run folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for metrics.json and the plots.")] = Path(
        "physnn-report"),
    run: Annotated[Path | None, typer.Option(help="Run folder for the training curves.")] = None,
    split: Annotated[str, typer.Option(help="Events evaluated: auto is the test split of the training files (all "
                                       "events of other files).", metavar="<auto|all|train|val|test>")] = "auto",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for AUC intervals.", min=0)] = 200,
    mc_samples: Annotated[int, typer.Option("--mc-samples", "-T", help="Autoencoders: MC-dropout passes.",
                                            min=0)] = 0,
    seed: SeedOpt = 0,
) -> None:
    """ROC/AUC, calibration, MC-dropout certainty; resolution, pulls, coverage; denoising gain; GAN vs test split."""
    from physnn import api

    if predictions.is_dir():  # a run folder: a GAN judged on held-out showers, an autoencoder on its clean truth
        from physnn.training.checkpoint import load_checkpoint

        if load_checkpoint(predictions)["task"]["kind"] == "generation":
            compared = api.evaluate_generator(predictions, out=out, split="test" if split == "auto" else split,
                                              seed=seed)
            _print_comparison(compared)
            console.print(f"wrote {plural(len(compared.files), 'file')} to {out}/ (metrics.json, separation.csv, "
                          "histograms)")
            _print_page(compared.files)
            return
        result = api.evaluate_denoising(predictions, out=out, split=split, seed=seed, mc_samples=mc_samples)
        _print_denoising(result.figures)
    else:
        result = api.evaluate(predictions, out=out, run=run, split=split, n_boot=bootstrap)
        _print_evaluation(result.figures)
    console.print(f"wrote {plural(len(result.files), 'file')} to {out}/ (metrics.json and plots)")
    _print_page(result.files)


@app.command("export")
@user_errors
def export_(
    run: Annotated[str, typer.Argument(help="Run folder or checkpoint (.pt).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (default: RUN/model.onnx or "
                                             "RUN/model.pt).")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="ONNX (ONNX Runtime) or TorchScript (LibTorch).",
                                        metavar="<onnx|torchscript>")] = "onnx",
    mc_samples: Annotated[int, typer.Option("--mc-samples", "-T", help="MC dropout inside the graph: T stochastic "
                                            "passes per event, the spread as extra outputs (0: off).",
                                            show_default=True)] = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Export a trained run for C++ (ONNX Runtime, LibTorch): physical inputs and outputs, dynamic batch and length."""
    from physnn import api

    result = api.export(run, out, format=format, mc_samples=mc_samples, overwrite=overwrite)
    shapes = lambda d: ", ".join(f"{k} ({' x '.join(map(str, v))})" for k, v in d.items())  # noqa: E731
    console.print(f"wrote {result.path} ({result.format})", soft_wrap=True)
    console.print(f"  inputs:  {shapes(result.inputs)}", soft_wrap=True)
    console.print(f"  outputs: {shapes(result.outputs)}", soft_wrap=True)


@app.command()
@user_errors
def generate(
    run: Annotated[str, typer.Argument(help="GAN run folder or checkpoint (.pt).")],
    out: OutOpt = Path("fastsim.root"),
    events: EventsOpt = 10000,
    energy: Annotated[str | None, typer.Option(help="Incident energy in GeV: E or MIN:MAX (default: like the "
                                               "training showers).")] = None,
    spectrum: Annotated[str, typer.Option(help="Sampling of an --energy range.",
                                          metavar="<uniform|log-uniform>")] = "uniform",
    pdgid: Annotated[str | None, typer.Option("--pdgid", "--class", help="Particle type(s), comma-separated "
                                              "values of the run's label (e.g. 11 or 11,22); default: the "
                                              "training mix.")] = None,
    condition: Annotated[list[str] | None, typer.Option(help="Fix another condition: NAME=VALUE or "
                                                        "NAME=MIN:MAX (repeatable), e.g. x0=0.",
                                                        metavar="<name=value>")] = None,
    seed: SeedOpt = 0,
    batch_size: Annotated[int, typer.Option(help="Showers per forward pass.", min=1)] = 2048,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    compression: CompressionOpt = None,
) -> None:
    """Generate showers with a trained GAN; writes the training data's tree and branches (image, energy, ...)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from physnn import api
    from physnn.errors import ConfigError

    fixed: dict[str, Any] = {}
    for item in condition or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            msg = f"--condition {item!r}: expected NAME=VALUE or NAME=MIN:MAX"
            raise ConfigError(msg)
        bounds = _range(value, f"--condition {name}")
        assert bounds is not None
        fixed[name.strip()] = bounds[0] if bounds[0] == bounds[1] else bounds
    e_range = _range(energy, "--energy")
    e_spec = None if e_range is None else (e_range[0] if e_range[0] == e_range[1] else e_range)
    classes = None
    if pdgid:
        classes = [int(v) if v.strip().lstrip("-").isdigit() else v.strip() for v in pdgid.split(",")]
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("generating", total=events)
        result = api.generate(run, out, events=events, energy=e_spec, spectrum=spectrum, classes=classes,
                              conditions=fixed, seed=seed, batch_size=batch_size, device=device,
                              overwrite=overwrite, compression=compression, progress=lambda n: bar.advance(task, n))
    console.print(f"wrote {plural(result.events, 'shower')} to {result.path}:{result.tree} in "
                  f"{num(result.seconds)} s: {num(result.rate)} showers/s with ROOT writing, "
                  f"{num(result.forward_rate)} showers/s "
                  f"for the generator alone ({result.meta['device']})")


@app.command()
@user_errors
def compare(
    reference: Annotated[Path, typer.Argument(help="Reference showers ROOT file (e.g. full simulation).")],
    candidate: Annotated[Path, typer.Argument(help="Candidate showers ROOT file (e.g. physnn generate output).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder: metrics.json, separation.csv, "
                                      "histograms.")] = Path("physnn-compare"),
    tree: Annotated[str | None, typer.Option(help="Tree name (default: the file's only tree).")] = None,
    image: Annotated[str | None, typer.Option(help="Image branch (default: the first 2D/3D array branch).")] = None,
    energy: Annotated[str, typer.Option(help="Incident-energy branch; 'none' for none.")] = "auto",
    classifier: Annotated[str, typer.Option(help="Classifier tests, comma-separated: low (on the cells), high (on "
                                            "the shower features) or none.",
                                            metavar="<low,high|low|high|none>")] = "low,high",
    max_events: Annotated[int, typer.Option(help="Showers per sample for the classifier test.", min=10)] = 20000,
    bins: Annotated[int, typer.Option(help="Histogram bins per feature.", min=2)] = 50,
    seed: SeedOpt = 0,
    match: Annotated[bool, typer.Option("--match", help="Keep only the reference showers within the candidate's "
                                        "conditions: its particle types, incident-energy and impact-point "
                                        "ranges.")] = False,
) -> None:
    """Judge a fast simulation against a reference like the CaloChallenge: features, separation power, AUC.

    The conditions (particle types, incident energy, impact point) are compared first, with a warning if they differ.
    """
    from physnn import api

    kinds = [] if classifier.strip().lower() == "none" else [c.strip() for c in classifier.split(",") if c.strip()]
    result = api.compare(reference, candidate, out=out, tree=tree, image=image,
                         energy=None if energy.lower() == "none" else energy, classifier=kinds,
                         max_events=max_events, bins=bins, seed=seed, match=match)
    _print_comparison(result)
    console.print(f"wrote {plural(len(result.files), 'file')} to {out}/")
    _print_page(result.files)


def _print_page(files: list[Path]) -> None:
    """The report page among ``files``, on a line of its own (not wrapped: a path to open or copy)."""
    page = next((f for f in files if f.name == "report.html"), None)
    if page is not None:
        console.print(f"report: {page}", soft_wrap=True, highlight=False, markup=False)


def _say(text: str, first: str = "", rest: str = "  ") -> None:
    """Print ``text`` wrapped to the terminal, with a hanging indent."""
    import textwrap

    width = max(console.width, 40)
    console.print(textwrap.fill(text, width=width, initial_indent=first, subsequent_indent=rest,
                                break_on_hyphens=False), soft_wrap=True, highlight=False, markup=False)


def _print_conditions(cond: dict[str, Any]) -> None:
    """The conditions check of :func:`physnn.compare`: what --match kept, and a warning where they differ."""
    match = cond.get("match")
    if match is not None:
        _say(f"--match: kept {match['kept']:,} of {match['of']:,} reference showers within the candidate's "
             f"conditions ({match['within']})")
    if cond["matched"] is None:
        _say("conditions not compared (neither particle type, incident energy nor impact point in both files)")
    elif cond["matched"]:
        _say(f"conditions match ({', '.join(cond['checked'])} compared)")
    else:
        why = (" even after --match (it keeps the candidate's types and ranges but does not reweight)"
               if match is not None else "")
        advice = "" if match is not None else "; rerun with --match to compare like with like"
        _say(f"warning: the samples were made under different conditions{why}, so the separation powers and "
             f"the AUC below measure that too{advice}:")
        for line in cond["differences"]:
            _say(line, first="  - ", rest="    ")
    if cond["checked"] and cond["unchecked"]:
        for line in cond["unchecked"]:
            _say(f"not compared: {line}", first="  ")


def _print_comparison(result: Any) -> None:
    cond = result.conditions
    if cond is not None:
        _print_conditions(cond)
    console.print(f"separation power ({result.events['reference']:,} reference vs "
                  f"{result.events['candidate']:,} candidate showers; 0 = identical):")
    table = Table()
    table.add_column("feature")
    table.add_column("separation", justify="right")
    for name, value in result.separation.items():
        table.add_row(name, num(value))
    console.print(table)
    figures = result.figures()
    console.print(f"mean separation power: {num(figures['separation_power_mean'])}")
    for kind, test in result.classifier.items():
        what = "cells" if kind == "low" else "high-level features"
        auc, band = num(test["auc"]), ""
        if test.get("auc_low") is not None:
            auc, low, high = with_interval(test["auc"], test["auc_low"], test["auc_high"])
            band = f"68% bootstrap interval {low}{DASH}{high}; "
        console.print(f"classifier AUC on {what}: {auc} ({band}{test['events']['test']:,} + "
                      f"{test['events']['test']:,} test showers; 0.5 = indistinguishable)")
    if cond is not None and cond["matched"] is False:
        _say("warning: the samples' conditions differ (see above), so these figures compare unlike samples")
    timing = result.timing
    for who in ("reference", "candidate"):
        if f"{who}_showers_per_s" in timing:
            console.print(f"{who}: {timing[f'{who}_showers_per_s']:,.0f} showers/s ({timing[f'{who}_by']})")
    if "speedup" in timing:
        console.print(f"speed-up: {num(timing['speedup'], 2)}×")


def _print_denoising(figures: dict[str, Any]) -> None:
    table = Table(title=f"denoising, {plural(figures['events'], 'event')} ({figures['split']})", title_justify="left")
    table.add_column("figure")
    table.add_column("noisy input", justify="right")
    table.add_column("denoised", justify="right")
    table.add_row("RMS difference per cell", num(figures["rmse_input"]), num(figures["rmse_output"]))
    e = figures["total_energy"]
    signed = lambda v: num(v) if v < 0 else f"+{num(v)}"  # noqa: E731
    table.add_row("total energy: median E/E_true - 1", signed(e["input"]["median"]), signed(e["output"]["median"]))
    table.add_row("total energy: spread", num(e["input"]["spread"]), num(e["output"]["spread"]))
    for row in figures.get("layers", []):
        table.add_row(f"layer {row['layer']}: centroid shift x (cells)", num(row["input_centroid_shift_x"]),
                      num(row["output_centroid_shift_x"]))
        table.add_row(f"layer {row['layer']}: width / true width (x)", num(row["input_width_ratio_x"]),
                      num(row["output_width_ratio_x"]))
    console.print(table)
    console.print(f"denoising gain (RMS input / RMS output): {num(figures['gain'])}")


def _print_bins(name: str, r: dict[str, Any]) -> None:
    """The resolution of one regression target per bin of its true value, model next to every baseline."""
    from physnn.evaluation.summary import bin_table

    columns, rows = bin_table(name, r)
    what = "; σ/E: the same of (pred - true) / true" if r.get("kind") == "energy" else ""
    table = Table(title=f"{name}: resolution per bin of the true value", title_justify="left",
                  caption=f"bias: median of pred - true; σ: half the 16-84% interval of pred - true{what}; "
                          f"outliers: {r['outliers']['criterion']}", caption_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i in (0, len(columns) - 1) else "right")
    for cells in rows:
        table.add_row(*cells, style="bold red" if cells[-1].startswith("worst") else
                      "yellow" if cells[-1] else None)
    console.print(table)


def _print_evaluation(figures: dict[str, Any]) -> None:
    table = Table(title=f"evaluation of {figures['predictions']}", title_justify="left")
    table.add_column("figure")
    table.add_column("value", overflow="fold")
    for name, value in summary_rows(figures):
        table.add_row(name, value)
    console.print(table)
    for name, r in (figures.get("regression") or {}).items():
        _print_bins(name, r)


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo outputs.")] = Path("physnn-demo"),
    events: Annotated[int, typer.Option("--events", "-n", help="Showers (and collision events) to simulate.",
                                        min=200)] = 10000,
    seed: SeedOpt = 1,
    epochs: Annotated[int | None, typer.Option(help="Epochs per model (default: the demo configs').", min=1)] = None,
    mc_samples: Annotated[int, typer.Option("--mc-samples", "-T", help="MC-dropout passes.", min=2)] = 50,
) -> None:
    """The main job on built-in demo data: simulate showers and collision events, train CNN (e/pi, energy) and
    GRU (signal/background, resonance mass) models, predict with MC-dropout error bars, evaluate, and say where
    the outputs are."""
    from physnn.demo import run

    results = run(out, events=events, seed=seed, epochs=epochs, mc_samples=mc_samples,
                  say=lambda text: console.print(text, highlight=False))
    jobs = (("epi", "e/pi classifier (CNN)"), ("energy", "energy regressor (CNN)"),
            ("events_cls", "signal/background classifier (GRU)"), ("events_mass", "mass regressor (GRU)"))
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
    table.add_row("simulated collision events (ROOT)", str(results["events"]))
    for name, label in jobs:
        table.add_row(f"{label}: run (checkpoints, metrics)", str(results[name]["run"]))
        table.add_row(f"{label}: predictions (ROOT)", str(results[name]["predictions"]))
        table.add_row(f"{label}: report page (figures, plots, config)",
                      str(results[name].get("page") or results[name]["report"]))
    console.print(table)


def main() -> None:
    """Entry point of the ``physnn`` console script."""
    app(prog_name="physnn")
    sys.exit(0)
