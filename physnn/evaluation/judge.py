"""``physnn evaluate``: a predictions file, or a run folder by the kind of its task.

Scripts and the command line take the same path: :func:`judge` picks the
evaluator, so ``physnn.evaluate("runs/gan")`` judges a GAN on its test split
as ``physnn evaluate runs/gan`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from physnn.errors import ConfigError
from physnn.evaluation import denoising, fastsim  # noqa: F401 - they register their evaluators
from physnn.evaluation.fastsim import ComparisonResult
from physnn.evaluation.registry import EVALUATORS
from physnn.evaluation.report import EvaluationResult, evaluate
from physnn.inference.loading import load_run


def judge(source: str | os.PathLike, *, out: str | os.PathLike | None = None, run: str | os.PathLike | None = None,
          split: str = "auto", n_boot: int = 200, seed: int = 0, plots: bool = True, mc_samples: int = 0,
          baselines: Mapping[str, Mapping[str, np.ndarray]] | None = None,
          targets: Mapping[str, Any] | None = None, by: str | None = None,
          baseline: str | Sequence[str] | None = None, bins_of: str | None = None, bins: int | None = None,
          image_format: str = "png", overwrite: bool = False) -> EvaluationResult | ComparisonResult:
    """Judge ``source``: a predictions file (:func:`~physnn.evaluation.report.evaluate`) or a run folder whose
    task registered an evaluator (an autoencoder: denoising against the clean truth; a GAN: generated against
    held-out showers).

    Parameters
    ----------
    source
        Predictions ROOT file, or a run folder.
    out
        Report folder (``metrics.json``, PNGs, ``report.html``); None computes only.
    run, n_boot, baselines, targets, by, baseline
        For a predictions file: the run folder (default: the checkpoint's), bootstrap resamples, baseline
        predictions, target units and kinds, a branch to judge regressions per value of, baselines by name
        such as ``"cell-sum"`` (see :func:`~physnn.evaluation.report.evaluate`).
    bins_of, bins
        For a binary classifier's predictions file: also its AUC and background rejection at 80% signal
        efficiency, with their bootstrap 68% intervals, per quantile bin (``bins``, default 5) of this numeric
        branch of the file, e.g. ``bins_of="energy"`` (see :func:`~physnn.evaluation.report.evaluate`).
    split
        Events judged: ``auto`` (those training never saw), ``all``, ``train``, ``val`` or ``test``.
    seed
        Seed of the noise (autoencoders) or of the generated showers (GANs).
    plots
        Write the figures (and ``report.html``).
    mc_samples
        Autoencoders: MC-dropout passes.
    image_format
        The plots' file format: ``png``, or vector ``svg`` or ``pdf`` (``report.html`` embeds PNG and SVG figures
        and links to PDF files beside it); checked by the evaluator that draws them.
    overwrite
        Replace an earlier report in ``out`` (its own files; other files stay); without it, such a folder is
        refused before anything is judged.
    """
    path = Path(source)
    if not path.is_dir():
        return evaluate(path, out=out, run=run, split=split, n_boot=n_boot, seed=seed, plots=plots,
                        baselines=baselines, targets=targets, by=by, baseline=baseline, bins_of=bins_of, bins=bins,
                        image_format=image_format, overwrite=overwrite)
    loaded = load_run(path)  # once: the evaluator takes the loaded run
    if bins_of is not None:
        msg = (f"bins_of={bins_of}: AUC and rejection per bin judge a binary classifier's predictions file; "
               f"{path} is a {loaded.task.kind} run folder")
        raise ConfigError(msg, options=["bins_of"])
    evaluator = EVALUATORS.get(loaded.task.kind)
    if evaluator is None:
        msg = (f"{path}: a {loaded.task.kind} run is judged on its predictions: physnn predict {path} FILE "
               "--out preds.root, then physnn evaluate preds.root")
        raise ConfigError(msg)
    return evaluator(loaded, out=out, split=split, seed=seed, mc_samples=mc_samples, plots=plots,
                     image_format=image_format, overwrite=overwrite)
