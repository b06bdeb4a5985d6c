"""Commands that judge: ``evaluate`` and ``compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from physnn.cli.app import (
    FormatOpt,
    ReportOutOpt,
    ReportOverwriteOpt,
    SeedOpt,
    console,
    image_format,
    user_errors,
)
from physnn.cli.show import _print_comparison, _print_page, print_result
from physnn.fmt import plural


def _refuse_one_file_options(n: int, **given: object) -> None:
    """Several predictions files (their error bars side by side): refuse, in one line, an option that judges one
    file (``--by``, ``--baseline``, ``--bins-of``, ``--bins``) rather than leave it silently unused."""
    from physnn.errors import ConfigError

    for name, value in given.items():
        if value is None or value == []:
            continue
        shown = ",".join(value) if isinstance(value, list) else value
        msg = (f"--{name.replace('_', '-')} {shown}: judges one predictions file; with {n} files evaluate shows "
               f"their error bars side by side: evaluate each file on its own for --{name.replace('_', '-')}")
        raise ConfigError(msg)


@user_errors
def evaluate(
    predictions: Annotated[list[Path], typer.Argument(help="Predictions ROOT file from physnn predict, or an "
                                                      "autoencoder or GAN run folder; several predictions files "
                                                      "of a regression: their error bars side by side.")],
    out: ReportOutOpt = Path("physnn-report"),
    run: Annotated[Path | None, typer.Option(help="Run folder for the training curves.", metavar="<folder>")] = None,
    split: Annotated[str, typer.Option(help="Events evaluated: auto is the test split of the training files (all "
                                       "events of other files).", metavar="<auto|all|train|val|test>")] = "auto",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for AUC intervals.", min=0)] = 200,
    mc_samples: Annotated[int, typer.Option("--mc-samples", "-T", help="Autoencoders: MC-dropout passes.",
                                            min=0)] = 0,
    seed: SeedOpt = 0,
    by: Annotated[str | None, typer.Option(help="Regressions: judge each value of this integer branch on its own "
                                           "too (e.g. pdgid: σ/E per particle type); with a "
                                           "baseline, the predictions' pdgid branch when they have one.")] = None,
    baseline: Annotated[list[str] | None, typer.Option(help="Regressions: compare with this baseline too (cell-sum: "
                                                       "the image cells summed and calibrated on the training "
                                                       "split, one factor per --by group); repeatable.",
                                                       metavar="<cell-sum>")] = None,
    bins_of: Annotated[str | None, typer.Option("--bins-of", help="Binary classifiers: AUC and background "
                                                "rejection at 80% signal efficiency, each with its bootstrap 68% "
                                                "interval, per quantile bin of this numeric branch of the "
                                                "predictions too (e.g. energy: photon ID against the energy); "
                                                "a table, metrics.json and a figure.",
                                                metavar="<branch>")] = None,
    bins: Annotated[int | None, typer.Option(help="The number of quantile bins of --bins-of (default 5; fewer "
                                             "when a bin would hold under 10 events).", min=1)] = None,
    fmt: FormatOpt = "png",
    overwrite: ReportOverwriteOpt = False,
) -> None:
    """ROC/AUC, calibration, MC-dropout certainty; resolution, pulls, coverage; denoising gain; GAN vs test split.

    --bins-of energy: a binary classifier's AUC and rejection at 80% signal efficiency per energy bin, with intervals.
    """
    from physnn import api

    fmt = image_format(fmt)
    if len(predictions) > 1:
        _refuse_one_file_options(len(predictions), by=by, baseline=baseline, bins_of=bins_of, bins=bins)
        print_result(api.side_by_side(predictions, out=out, split=split, image_format=fmt, overwrite=overwrite), out)
        return
    result = api.evaluate(predictions[0], out=out, run=run, split=split, n_boot=bootstrap, seed=seed,
                          mc_samples=mc_samples, by=by, baseline=baseline, bins_of=bins_of, bins=bins,
                          image_format=fmt, overwrite=overwrite)
    print_result(result, out)


def _positive(value: float | None) -> float | None:
    """Refuse a learning rate of 0 or below (typer's ``min`` includes its bound)."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not > 0")
    return value


def _classifier_options(**given: float | None) -> dict[str, float]:
    """The classifier options given on the command line (the others keep physnn's defaults)."""
    return {k: v for k, v in given.items() if v is not None}


@user_errors
def compare(
    reference: Annotated[Path, typer.Argument(help="Reference showers ROOT file (e.g. full simulation).")],
    candidate: Annotated[Path, typer.Argument(help="Candidate showers ROOT file (e.g. physnn generate output).")],
    out: ReportOutOpt = Path("physnn-compare"),
    tree: Annotated[str | None, typer.Option(help="Tree name (default: the file's only tree).")] = None,
    image: Annotated[str | None, typer.Option(help="Image branch (default: the first 2D/3D array branch).")] = None,
    energy: Annotated[str, typer.Option(help="Incident-energy branch; 'none' for none.")] = "auto",
    classifier: Annotated[str, typer.Option(help="Classifier tests, comma-separated: low (on the cells), high (on "
                                            "the shower features) or none.",
                                            metavar="<low,high|low|high|none>")] = "low,high",
    max_events: Annotated[int, typer.Option(help="Showers per sample for the classifier test.", min=10)] = 20000,
    classifier_width: Annotated[int | None, typer.Option(help="Units per layer of the classifier (default 256; "
                                                         "the CaloChallenge's 2048).", min=1)] = None,
    classifier_epochs: Annotated[int | None, typer.Option(help="Most epochs the classifier trains (default and "
                                                          "the CaloChallenge's 50; the best on the validation "
                                                          "split is kept).", min=1)] = None,
    classifier_batch: Annotated[int | None, typer.Option(help="Classifier batch size (default 64; the "
                                                         "CaloChallenge's 1000, for its 100k showers).",
                                                         min=1)] = None,
    classifier_lr: Annotated[float | None, typer.Option(help="Classifier learning rate (Adam; default 1e-3, the "
                                                        "CaloChallenge's 2e-4).", callback=_positive)] = None,
    bins: Annotated[int, typer.Option(help="Histogram bins per feature.", min=2)] = 50,
    seed: SeedOpt = 0,
    match: Annotated[bool, typer.Option("--match", help="Keep only the reference showers within the candidate's "
                                        "conditions: its particle types, incident-energy and impact-point "
                                        "ranges.")] = False,
    fmt: FormatOpt = "png",
    overwrite: ReportOverwriteOpt = False,
    floor: Annotated[Path | None, typer.Option(help="A second reference file, independent of the first (e.g. the "
                                               "same simulation with another seed): FPD and KPD between the two "
                                               "references are printed beside the candidate's, as their floor.",
                                               metavar="REF2")] = None,
) -> None:
    """Judge a fast simulation against a reference like the CaloChallenge: features, separation power, AUC, FPD, KPD.

    The conditions (particle types, incident energy, impact point) are compared first, with a warning if they differ.
    """
    from physnn import api

    fmt = image_format(fmt)
    kinds = [] if classifier.strip().lower() == "none" else [c.strip() for c in classifier.split(",") if c.strip()]
    result = api.compare(reference, candidate, out=out, tree=tree, image=image,
                         energy=None if energy.lower() == "none" else energy, classifier=kinds,
                         max_events=max_events, bins=bins, seed=seed, match=match, image_format=fmt,
                         overwrite=overwrite, floor=floor,
                         classifier_options=_classifier_options(width=classifier_width, epochs=classifier_epochs,
                                                                batch_size=classifier_batch, lr=classifier_lr))
    _print_comparison(result)
    console.print(f"wrote {plural(len(result.files), 'file')} to {out}/")
    _print_page(result.files)


