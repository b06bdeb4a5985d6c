"""Commands on data: ``simulate``, ``inspect``, ``scan``, ``load``, ``models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from physnn.cli.app import (
    CompressionOpt,
    ConfigOpt,
    EventsOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    SetOpt,
    _range,
    console,
    err_console,
    simulate_app,
    user_errors,
)
from physnn.fmt import num, percent, plural


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
        help="Particle types, comma-separated, some of e-, gamma, pi0 (decays to two photons), pi+; an event's "
             "label is its type's position in this list.", metavar="<name,...>", show_default="e-,gamma,pi+")] = None,
    energy: Annotated[str | None, typer.Option(help="Incident energy in GeV: MIN:MAX or one value.",
                                               metavar="<min:max>", show_default="1:100")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
    compression: CompressionOpt = None,
) -> None:
    """Calorimeter showers: TTree 'showers' with image[L][H][W] (GeV), energy, pdgid, label, x0, y0.

    With pi0 it gains opening_angle; with a strip layer (--config configs/simulate/strips.yaml), strips[H*eta][W*phi].
    """
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
            # text, not markup: a bitset's type is "[var * bool, parameters=...]"
            table.add_row(*(Text(cell) for cell in (row.name, row.type, row.role, detail, row.collection or "")))
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
            from physnn.io.metadata import readout_line, readout_of

            readout = readout_of(meta)
            if readout is not None:
                console.print(readout_line(readout), soft_wrap=True)


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
        table.add_row(Text(row.name), Text(row.type), lengths, number(row.minimum), number(row.maximum),
                      number(row.mean), f"{row.nonfinite:,}")
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
        names = bundle.config.class_labels() or []  # classes: {22: photon, 111: pi0} names them
        listed = ", ".join(f"{i}={c}" + (f" ({names[i]})" if i < len(names) else "")
                           for i, c in enumerate(info["classes"]))
        signal = f"; signal: {bundle.config.signal}" if bundle.config.signal is not None else ""
        console.print(f"classes: {listed}{signal}")


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


