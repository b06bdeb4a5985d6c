"""The ``physnn`` command: parse options, call :mod:`physnn.api`, print results.

No physics or data logic lives here. Errors a user can cause
(:class:`~physnn.errors.PhysnnError`) are printed as one line on stderr and
exit with status 2. Heavy modules (torch, uproot) are imported inside the
commands so that ``physnn --version`` and ``--help`` answer at once.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from physnn._version import __version__

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

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn :class:`PhysnnError` into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from physnn.errors import PhysnnError

        try:
            return func(*args, **kwargs)
        except PhysnnError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: no partial output was left behind")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"physnn {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """physnn: train CNN, LSTM/GRU, autoencoder and GAN models on ROOT files."""


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
CompressionOpt = Annotated[str | None, typer.Option(help="zlib[:L] (default zlib:1), lz4, zstd, lzma or none.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML file of simulator settings.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a setting: KEY=VALUE (repeatable).")]


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
    console.print(f"wrote {result.events} {kind} to {result.path}:{result.tree} "
                  f"in {result.seconds:.2f} s ({result.rate:,.0f} events/s)")


@simulate_app.command("showers")
@user_errors
def simulate_showers(
    out: OutOpt,
    events: EventsOpt = 1000,
    seed: SeedOpt = 0,
    particles: Annotated[str | None, typer.Option(help="Comma-separated: e-,gamma,pi+ (label = position).")] = None,
    energy: Annotated[str | None, typer.Option(help="Incident energy range in GeV, MIN:MAX.")] = None,
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
    mass: Annotated[str | None, typer.Option(help="Signal resonance mass in GeV: M or MIN:MAX.")] = None,
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
        table = Table(title=f"{tree.file}:{tree.name}  ({tree.kind}, {tree.entries:,} entries)",
                      title_justify="left")
        for column in ("branch", "type", "role", "shape / lengths", "collection"):
            table.add_column(column)
        for row in tree.branches:
            if row.shape is not None:
                detail = "x".join(str(s) for s in row.shape)
            elif row.lengths:
                detail = (f"median {row.lengths['median']:g}, 95% {row.lengths['q95']:g}, "
                          f"max {row.lengths['max']}")
            else:
                detail = ""
            table.add_row(row.name, row.type, row.role, detail, row.collection or "")
        console.print(table)
        if tree.probed < tree.entries:
            console.print(f"(shapes and lengths from the first {tree.probed:,} entries)")


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
        extra = (f"; median length {li['median']:g}, {100 * li['clipped_fraction']:.1f}% of events clipped"
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


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo outputs.")] = Path("physnn-demo"),
    events: Annotated[int, typer.Option("--events", "-n", help="Showers to simulate.", min=100)] = 4000,
    seed: SeedOpt = 1,
) -> None:
    """The main job on built-in demo data: simulate showers and events, load them as tensors."""
    from physnn import api

    out.mkdir(parents=True, exist_ok=True)
    showers = out / "showers.root"
    evts = out / "events.root"
    for kind, path, n in (("showers", showers, events), ("events", evts, 5 * events)):
        res = api.simulate(kind, path, events=n, seed=seed, overwrite=True)
        console.print(f"[bold]simulated[/] {res.events:,} {kind} -> {res.path} ({res.rate:,.0f} events/s)")
    console.rule("showers as images (e-/gamma/pi+ classification, energy regression)")
    _print_bundle(api.load({"files": str(showers), "images": {"branches": ["image"]}, "label": "label",
                            "targets": ["energy"], "observers": ["pdgid"]}))
    console.rule("events as sequences (signal/background, resonance mass)")
    _print_bundle(api.load({"files": str(evts), "label": "label", "targets": ["mass"],
                            "sequence": {"features": ["part_pt", "part_eta", "part_phi", "part_e",
                                                      "part_charge"], "sort_by": "part_pt"}}))
    console.print(f"outputs in {out}/ ; try: physnn inspect {showers}")


def main() -> None:
    """Entry point of the ``physnn`` console script."""
    app(prog_name="physnn")
    sys.exit(0)
