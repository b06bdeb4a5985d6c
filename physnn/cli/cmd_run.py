"""Commands that run a trained model: ``predict``, ``denoise``, ``encode``, ``export``, ``generate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from physnn.cli.app import (
    CompressionOpt,
    DeviceOpt,
    MapOpt,
    OutOpt,
    OverwriteOpt,
    SeedOpt,
    _range,
    console,
    err_console,
    user_errors,
)
from physnn.fmt import num, percent, plural


@user_errors
def predict(
    run: Annotated[str, typer.Argument(help="Run folder or checkpoint (.pt).")],
    files: Annotated[list[str] | None, typer.Argument(help="Input ROOT files/globs (default: training files).")] = None,
    out: OutOpt = Path("predictions.root"),
    mc_samples: Annotated[int, typer.Option("--mc-samples", "-T", help="MC-dropout passes per event (0: off).",
                                            min=0)] = 0,
    keep_samples: Annotated[bool, typer.Option("--keep-samples", help="Also write all T samples.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the MC-dropout masks.")] = 0,
    conformal: Annotated[float | None, typer.Option(help="Regression: also write t_low and t_high, the split-"
                                                    "conformal interval at this coverage (0.6827, 0.8, 0.9, 0.95 "
                                                    "or 0.99), fitted on the validation split.")] = None,
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
                             progress=lambda n: bar.advance(task, n), seed=seed, conformal=conformal)
    mode = f"MC dropout, T = {mc_samples}" if mc_samples else "deterministic"
    if result.meta.get("members", 1) > 1:
        mode = f"ensemble of {result.meta['members']}, " + mode
    console.print(f"wrote {plural(result.events, 'prediction')} ({mode}) to {result.path}:predictions "
                  f"in {num(result.seconds)} s ({num(result.rate)} events/s)")
    if aligned:
        console.print(f"aligned with the input: {result.entries:,} entries, selected true for the "
                      f"{result.events:,} predicted (friend it: AddFriend(\"nn=predictions\", \"{result.path}\"))",
                      highlight=False)
    console.print(_split_summary(result.counts))
    if "score_of" in result.meta:
        console.print(f"score: P({result.meta['score_of']}), the probability of class {result.meta['score_index']} "
                      f"of {result.meta.get('label') or 'the label'}", highlight=False)
    _domain_lines(result.events, result.counts, result.meta)
    for note in result.meta.get("notes", []):
        console.print(f"note: {note}", highlight=False)


#: The fraction of events outside the training domain above which predict, denoise and encode warn.
DOMAIN_WARNING = 0.05


def _domain_lines(events: int, counts: dict[str, int], meta: dict) -> None:
    """How many events lie outside the run's training domain, and a warning when many do."""
    if "domain" not in meta:
        return
    outside = counts.get("out_of_domain", 0)
    console.print(f"domain: {outside:,} of {events:,} events outside the training domain (in_domain 0)",
                  highlight=False)
    console.print(f"  inputs: {meta['domain']['description']} (ood_score > 0)", highlight=False)
    if "feature_domain" in meta:
        console.print(f"  features: {counts.get('out_of_feature_domain', 0):,} events beyond "
                      f"{meta['feature_domain']['description']} (feature_score > 1)", highlight=False)
    if events and outside >= DOMAIN_WARNING * events:
        console.print(f"warning: {percent(outside / events)} of the events lie outside the training domain: their "
                      "outputs are extrapolations (see ood_score, feature_score)", highlight=False)


def _split_summary(counts: dict[str, int]) -> str:
    """One line: events per training split, from other files, and outside the training selection."""
    text = (f"split: {counts['train']:,} train, {counts['val']:,} val, {counts['test']:,} test, "
            f"{counts['unknown']:,} from files not used in training (split -1)")
    if counts.get("outside_selection"):
        text += f"; {counts['outside_selection']:,} outside the training selection (in_selection 0)"
    return text


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
    _domain_lines(result.events, result.meta["counts"], result.meta)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


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
    _domain_lines(result.events, result.meta["counts"], result.meta)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


@user_errors
def export_(
    run: Annotated[str, typer.Argument(help="Run folder or checkpoint (.pt).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (default: RUN/model.onnx or "
                                             "RUN/model.pt).", metavar="<file>")] = None,
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


@user_errors
def generate(
    run: Annotated[str, typer.Argument(help="GAN run folder or checkpoint (.pt).")],
    out: OutOpt = Path("fastsim.root"),
    events: Annotated[int | None, typer.Option("--events", "-n", help="Number of showers (default: 10000, or "
                                               "one per entry of the --conditions file).", min=1)] = None,
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
    conditions: Annotated[str | None, typer.Option(
        "--conditions", help="ROOT file of conditions per event, FILE or FILE:TREE: the run's conditioning "
        "branches (e.g. energy, x0, y0, pdgid); one shower per entry, in the file's order.",
        metavar="<file[:tree]>")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the production.", min=0)] = 0,
    job_index: Annotated[int, typer.Option(
        "--job-index", help="This job's index K among the production's jobs: its random stream is derived from "
        "(--seed, K), so every job gives other showers, the same (--seed, K) the same file, and the file's "
        "identity is unique to both.", min=0)] = 0,
    batch_size: Annotated[int, typer.Option(help="Showers per forward pass.", min=1)] = 2048,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
    compression: CompressionOpt = None,
) -> None:
    """Generate showers with a trained GAN; writes the training data's tree and branches (image, energy, ...).

    Jobs of one production share --seed, each with its own --job-index; --conditions generates a sample's spectrum.
    """
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
    file, tree = _file_and_tree(conditions) if conditions else (None, None)
    if file is None and events is None:
        events = 10000
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("generating", total=events)
        result = api.generate(run, out, events=events, energy=e_spec, spectrum=spectrum, classes=classes,
                              conditions=fixed, seed=seed, job_index=job_index, conditions_file=file,
                              conditions_tree=tree, batch_size=batch_size, device=device, overwrite=overwrite,
                              compression=compression, progress=lambda n: bar.advance(task, n))
    console.print(f"wrote {plural(result.events, 'shower')} to {result.path}:{result.tree} in "
                  f"{num(result.seconds)} s: {num(result.rate)} showers/s with ROOT writing, "
                  f"{num(result.forward_rate)} showers/s "
                  f"for the generator alone ({result.meta['device']})")
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)


def _file_and_tree(spec: str) -> tuple[str, str | None]:
    """``FILE[:TREE]`` -> ``(FILE, TREE or None)``; a path that exists as given is the file, even with a colon."""
    path, sep, tree = spec.rpartition(":")
    if not sep or not path or not tree or Path(spec).exists() or ("/" in tree and not path.endswith(".root")):
        return spec, None
    return path, tree
