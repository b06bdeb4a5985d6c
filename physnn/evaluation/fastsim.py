"""Judge a fast calorimeter simulation the way the Fast Calorimeter Simulation Challenge does.

CaloChallenge 2022 (Krause et al., arXiv:2410.21611) compares a candidate
sample (a GAN's) with a reference sample (full simulation) three ways, and
:func:`compare` does all three on any ``(layers, H, W)`` or ``(H, W)`` grid:

- **high-level features** per event (:func:`high_level_features`): total
  deposited energy over incident energy, energy per layer, energy-weighted
  centroid and width in x and y per layer (cell units), sparsity (fraction of
  non-zero cells) per layer and the hottest cell's energy, drawn as
  unit-normalised histograms with a candidate/reference ratio panel;
- the **separation power** of each feature's histograms,
  ``S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i)`` for unit-normalised
  ``h1, h2`` (0: identical, 1: disjoint) (:func:`separation_power`);
- a **classifier test** (:mod:`physnn.evaluation.classifier_test`), as the
  challenge's evaluation code runs it: a network is trained to tell reference
  from candidate showers, on the cells (low level: ``log10 E_inc`` and the
  cells over it) and on the high-level features, the epoch picked on a
  validation split, which then calibrates it; its AUC and JSD on a held-out
  test split are reported (0.5 and 0: the network cannot tell the samples
  apart), for all showers and, where both samples carry a particle type, for
  each type.

Both files are read chunk by chunk; the classifier uses at most
``max_events`` showers of each.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physnn.errors import ConfigError, InputFileError
from physnn.evaluation.classifier_test import judge_samples
from physnn.evaluation.conditions import Match, add_readout_check, condition_report
from physnn.evaluation.generative_metrics import shower_distances
from physnn.evaluation.image_format import check_format
from physnn.evaluation.registry import register_evaluator
from physnn.evaluation.samples import ShowerSample, read_sample, sample_layout
from physnn.io.metadata import unit_of
from physnn.physics.showers import high_level_features, separation_power


# -- the comparison -------------------------------------------------------------
@dataclass
class ComparisonResult:
    """What :func:`compare` found (also in ``report/metrics.json``) and the files it wrote.

    ``conditions`` (see :func:`physnn.evaluation.conditions.condition_report`)
    says whether the two samples were made under the same conditions;
    ``conditions["matched"]`` False means the figures measure that
    difference too. None where the conditions are the same by construction
    (:func:`evaluate_generator`).
    """

    separation: dict[str, float]
    classifier: dict[str, dict[str, Any]]
    timing: dict[str, Any]
    events: dict[str, int]
    out: Path | None
    files: list[Path] = field(default_factory=list)
    conditions: dict[str, Any] | None = None
    #: what was judged (as :attr:`physnn.evaluation.report.EvaluationResult.judged`)
    judged: str = "comparison"
    #: FPD and KPD on the high-level features, with the floor where one was given
    #: (:func:`physnn.evaluation.generative_metrics.shower_distances`)
    distances: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        """Everything as plain types (the content of ``metrics.json``)."""
        first = {} if self.conditions is None else {"conditions": self.conditions}
        return first | {"separation_power": self.separation,
                "separation_power_mean": float(np.mean(list(self.separation.values()))),
                "classifier": self.classifier, "distances": self.distances, "timing": self.timing,
                "events": self.events}


def _timing(reference: ShowerSample, candidate: ShowerSample) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, sample in (("reference", reference), ("candidate", candidate)):
        rate = sample.meta.get("showers_per_s")
        if rate is not None:
            out[f"{name}_showers_per_s"] = float(rate)
            out[f"{name}_by"] = sample.meta.get("generator", "")
    if "reference_showers_per_s" in out and "candidate_showers_per_s" in out:
        out["speedup"] = out["candidate_showers_per_s"] / out["reference_showers_per_s"]
    return out


def compare(reference: str | os.PathLike, candidate: str | os.PathLike, *, out: str | os.PathLike | None = None,
            tree: str | None = None, image: str | None = None, energy: str | None = "auto",
            classifier: Sequence[str] = ("low", "high"), max_events: int = 20000, bins: int = 50, seed: int = 0,
            plots: bool = True, match: bool = False, image_format: str = "png",
            overwrite: bool = False, floor: str | os.PathLike | None = None,
            classifier_options: Mapping[str, Any] | None = None, device: str = "auto") -> ComparisonResult:
    """Compare a candidate (fast) simulation with a reference sample, CaloChallenge style.

    First the samples' conditions are compared (particle types, incident
    energy, impact point: see :mod:`physnn.evaluation.conditions`): where they
    differ, ``result.conditions["matched"]`` is False and the differences are
    listed, since the features and the classifier then see them too.

    Parameters
    ----------
    reference, candidate
        ROOT files of showers with the same grid (e.g. ``physnn simulate
        showers`` and ``physnn generate`` outputs).
    out
        Report folder: ``metrics.json``, ``separation.csv``, feature
        histograms with ratio panels (``features_*.png``); None: no files.
    tree, image, energy
        Tree, image branch and incident-energy branch (see :func:`read_sample`).
    classifier
        Which classifier tests to run: ``low`` (cells) and/or ``high``
        (high-level features); empty: none.
    max_events
        Showers per sample for the classifier test (each particle type's test uses its showers among them).
    bins
        Histogram bins per feature for the separation power.
    seed
        Seeds the classifier test.
    plots
        Write the histogram figures (needs matplotlib).
    match
        Keep only the reference showers within the candidate's conditions:
        its particle types, and its ranges of incident energy and impact
        point (a DataError when none is left).
    image_format
        The histograms' file format: ``png``, or vector ``svg`` or ``pdf`` (``report.html`` embeds PNG and SVG
        figures and links to PDF files beside it).
    overwrite
        Replace an earlier report in ``out``: its own files (``report.html``, ``metrics.json``,
        ``separation.csv``, the figures its page lists) are removed, other files stay. Without it, such a folder
        is refused before any work.
    floor
        A second reference file, independent of ``reference`` (e.g. the same simulation with another seed), read
        as ``reference`` is (same tree, branches and ``match``): FPD and KPD between the two references go in
        ``result.distances`` beside the candidate's, as ``fpd_floor``, ``kpd_floor`` and their errors.
    classifier_options
        The classifier's network and training, replaced in physnn's default
        (:data:`physnn.evaluation.classifier_test.DEFAULT`, see its :class:`~physnn.evaluation.classifier_test.
        ClassifierSpec`), e.g. ``{"width": 2048}``; the challenge's own recipe is ``CHALLENGE`` (pass it as a spec
        or as ``{"width": 2048, "batch_size": 1000, "lr": 2e-4, "patience": None}``).
    device
        Where the classifier trains: ``auto`` (a GPU when there is one), ``cpu``, ``cuda``.

    Examples
    --------
    >>> result = physnn.compare("geant.root", "fastsim.root", out="report")  # doctest: +SKIP
    >>> result.classifier["low"]["auc"]  # doctest: +SKIP
    0.71
    """
    fmt = check_format(image_format)
    unknown = [c for c in classifier if c not in ("low", "high")]
    if unknown:
        msg = f"--classifier {','.join(unknown)}: expected low, high or none"
        raise ConfigError(msg)
    from physnn.evaluation.report import check_report_dir

    check_report_dir(out, overwrite=overwrite)

    start = time.perf_counter()
    layout = sample_layout(reference, tree=tree, image=image, energy=energy)
    cand = read_sample(candidate, tree=tree or layout.tree, image=image or layout.image,
                       energy=None if layout.energy is None else (energy if energy != "auto" else "energy"),
                       max_cells=max_events)
    keep = Match.of(cand.conditions, layout.condition_keys) if match else None
    ref = read_sample(reference, tree=layout.tree, image=layout.image, energy=layout.energy, max_cells=max_events,
                      keep=keep)
    if ref.shape != cand.shape:
        msg = (f"{candidate}: images of shape {list(cand.shape)} per event, the reference {reference} "
               f"has {list(ref.shape)}; compare needs the same grid")
        raise InputFileError(msg)
    second = None
    if floor is not None:  # its cells are not used
        second = read_sample(floor, tree=layout.tree, image=layout.image, energy=layout.energy, max_cells=1, keep=keep)
        if second.shape != ref.shape:
            msg = (f"{floor}: images of shape {list(second.shape)} per event, the reference {reference} has "
                   f"{list(ref.shape)}; the floor needs a second reference sample on the same grid")
            raise InputFileError(msg)
    conditions = condition_report(ref.conditions, cand.conditions, ref.kept, keep)
    add_readout_check(conditions, ref.meta, cand.meta)
    result = compare_samples(ref, cand, out=out, classifier=classifier, max_events=max_events, bins=bins, seed=seed,
                             plots=plots, conditions=conditions, image_format=fmt, overwrite=overwrite, floor=second,
                             classifier_options=classifier_options, device=device)
    result.timing["compare_seconds"] = round(time.perf_counter() - start, 2)
    return result


def compare_samples(ref: ShowerSample, cand: ShowerSample, *, out: str | os.PathLike | None = None,
                    classifier: Sequence[str] = ("low", "high"), max_events: int = 20000, bins: int = 50,
                    seed: int = 0, plots: bool = True, conditions: dict[str, Any] | None = None,
                    run_dir: Path | None = None, image_format: str = "png", overwrite: bool = False,
                    floor: ShowerSample | None = None, classifier_options: Mapping[str, Any] | None = None,
                    device: str = "auto") -> ComparisonResult:
    """:func:`compare` on samples already in memory (see :func:`read_sample`); ``conditions`` goes in the report,
    ``run_dir`` (a GAN's run folder) in its page, ``image_format`` as the caller checked it (``png``, ``svg`` or
    ``pdf``), ``floor`` a second reference sample for the FPD and KPD floor, ``classifier_options`` and ``device``
    as there. An earlier report in ``out`` is replaced (``overwrite``) only once the figures are computed."""
    from physnn.evaluation.report import report_dir

    separation = {k: separation_power(ref.features[k], cand.features[k], bins) for k in ref.features}
    tests: dict[str, dict[str, Any]] = {}
    for kind in classifier:
        tests[kind] = judge_samples(kind, ref, cand, max_events=max_events, seed=seed, spec=classifier_options,
                                    device=device)
    distances = shower_distances(ref, cand, floor, seed=seed)
    outdir = report_dir(out, overwrite=overwrite)
    result = ComparisonResult(separation=separation, classifier=tests, timing=_timing(ref, cand),
                              events={"reference": ref.events, "candidate": cand.events}, out=outdir,
                              conditions=conditions, distances=distances)
    if outdir is not None:
        result.files = _write_report(result, ref, cand, outdir, bins, plots, run_dir, image_format)
    return result


def evaluate_generator(run: str | os.PathLike | Any, *, out: str | os.PathLike | None = None, split: str = "test",
                       classifier: Sequence[str] = ("low", "high"), max_events: int = 20000, bins: int = 50,
                       seed: int = 0, batch_size: int = 2048, device: str = "auto",
                       plots: bool = True, image_format: str = "png", overwrite: bool = False,
                       classifier_options: Mapping[str, Any] | None = None) -> ComparisonResult:
    """Judge a GAN run on held-out showers: one generated shower per event of ``split``, same conditions.

    The reference is the ``split`` (default ``test``) of the run's training
    files; the candidate is generated by the run with each reference event's
    conditions (energy, impact point, particle type) and seeded noise, so any
    difference is the GAN's. Then as :func:`compare` (``image_format``: png, svg or pdf; ``overwrite``: replace
    an earlier report in ``out``; ``classifier_options``: as there, the classifier trains on the run's device).
    """
    import torch

    from physnn.data.dataset import finalize, iter_raw
    from physnn.data.split import SPLITS
    from physnn.evaluation.report import check_report_dir
    from physnn.inference.loading import LoadedRun, load_run
    from physnn.models.generation import GenerationTask

    fmt = check_format(image_format)
    check_report_dir(out, overwrite=overwrite)
    loaded = run if isinstance(run, LoadedRun) else load_run(run, device=device)
    task = loaded.task
    if not isinstance(task, GenerationTask):
        msg = f"{loaded.checkpoint}: not a GAN run ({task.describe()}); this evaluation needs task.kind generation"
        raise ConfigError(msg)
    if split != "all" and split not in SPLITS:
        msg = f"--split {split!r}: expected all, {', '.join(SPLITS)}"
        raise ConfigError(msg)
    cfg = loaded.config.data
    model, dev = loaded.model, loaded.device
    noise = torch.Generator(device=dev).manual_seed(seed)
    parts: dict[str, list[Any]] = {"real": [], "fake": [], "incident": [], "real_cells": [], "fake_cells": []}
    kept, forward = 0, 0.0
    for raw in iter_raw(cfg, step_size=cfg.step_size):
        part = raw if split == "all" else raw.select(raw.split == SPLITS[split])
        if len(part) == 0:
            continue
        assert part.image is not None
        batch = task.augment({k: v.to(dev) for k, v in finalize(part, loaded.transform, cfg).tensors().items()})
        t0 = time.perf_counter()
        fakes = []
        with torch.inference_mode():
            for lo in range(0, len(part), batch_size):
                cond, inc = batch["conditions"][lo:lo + batch_size], batch["incident"][lo:lo + batch_size]
                z = torch.randn(len(cond), model.latent_dim, device=dev, generator=noise)
                fakes.append(task.to_phys(task.generate(model, z, cond, inc, generator=noise)).cpu().numpy())
        forward += time.perf_counter() - t0
        fake = np.concatenate(fakes)
        incident = batch["incident"].cpu().numpy().astype(np.float64) if task.incident is not None else None
        parts["real"].append(high_level_features(part.image, incident))
        parts["fake"].append(high_level_features(fake, incident))
        parts["incident"].append(incident)
        if kept < max_events:
            take = max_events - kept
            parts["real_cells"].append(part.image[:take].reshape(len(part.image[:take]), -1))
            parts["fake_cells"].append(fake[:take].reshape(len(fake[:take]), -1))
            kept += len(part.image[:take])
    if not parts["real"]:
        msg = f"{', '.join(cfg.files)}: no event in the {split} split to evaluate"
        raise ConfigError(msg)
    join = lambda items: {k: np.concatenate([p[k] for p in items]) for k in items[0]}  # noqa: E731
    incident = None if task.incident is None else np.concatenate(parts["incident"])
    where = f"{', '.join(cfg.files)} ({split} split)"
    shape = tuple(task.shape[1:] if task.squeeze else task.shape)
    n = len(incident) if incident is not None else len(join(parts["real"])["e_max"])
    unit = cfg.image_unit()
    ref = ShowerSample(where, cfg.tree or "", task.layout["image"], shape, join(parts["real"]),
                       np.concatenate(parts["real_cells"]), incident, {"units": {"image": unit}} if unit else {})
    cand = ShowerSample(f"{loaded.checkpoint} (generated)", cfg.tree or "", task.layout["image"], shape,
                        join(parts["fake"]), np.concatenate(parts["fake_cells"]), incident,
                        {"generator": "physnn GAN (network only)", "showers_per_s": n / max(forward, 1e-12)})
    return compare_samples(ref, cand, out=out, classifier=classifier, max_events=max_events, bins=bins, seed=seed,
                           plots=plots, run_dir=Path(loaded.checkpoint).parent, image_format=fmt, overwrite=overwrite,
                           classifier_options=classifier_options, device=str(dev))


@register_evaluator("generation")
def _judge_generator(run: Any, *, out: str | os.PathLike | None, split: str, seed: int, mc_samples: int,
                     plots: bool, image_format: str = "png", overwrite: bool = False) -> ComparisonResult:
    """:func:`evaluate_generator` as ``physnn evaluate RUN`` calls it (``auto``: the test split; no MC dropout)."""
    if mc_samples:
        msg = "--mc-samples: a GAN run is judged without MC dropout"
        raise ConfigError(msg)
    return evaluate_generator(run, out=out, split="test" if split == "auto" else split, seed=seed, plots=plots,
                              image_format=image_format, overwrite=overwrite)


def _write_report(result: ComparisonResult, ref: ShowerSample, cand: ShowerSample, outdir: Path, bins: int,
                  plots: bool, run_dir: Path | None = None, fmt: str = "png") -> list[Path]:
    """``metrics.json``, ``separation.csv`` and, with ``plots``, the feature histograms and ``report.html``."""
    import csv

    files = []
    metrics = outdir / "metrics.json"
    figures = result.figures() | {"reference": ref.path, "candidate": cand.path, "image": ref.image,
                                  "shape": list(ref.shape)}
    metrics.write_text(json.dumps(figures, indent=1))
    files.append(metrics)
    table = outdir / "separation.csv"
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["feature", "separation_power"])
        writer.writerows((k, f"{v:.6f}") for k, v in result.separation.items())
    files.append(table)
    if plots:
        from physnn.evaluation.plots import plot_feature_histograms

        files += plot_feature_histograms(ref.features, cand.features, result.separation, outdir, bins=bins,
                                         labels=(Path(ref.path).name, Path(cand.path).name),
                                         unit=unit_of("image", ref.meta, cand.meta), fmt=fmt)
        from physnn.evaluation.html_report import comparison_page

        files.append(comparison_page(outdir, figures, files, {"reference": ref.meta, "candidate": cand.meta}, run_dir))
    return files
