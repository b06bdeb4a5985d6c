"""Plots in the HEP style (matplotlib + mplhep), written as PNG files.

Every ``plot_*`` function takes plain numbers (the figures computed by
:mod:`physnn.evaluation.metrics`) and a path or folder, and returns the paths
it wrote; each draws the figure of a ``*_figure`` builder (which returns the
matplotlib figure, for tests and notebooks) and saves it. They live in
:mod:`~physnn.evaluation.plots_classification`,
:mod:`~physnn.evaluation.plots_regression`,
:mod:`~physnn.evaluation.plots_images` and
:mod:`~physnn.evaluation.plots_training`; this module gathers them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from physnn.evaluation.image_format import check_format
from physnn.evaluation.plots_classification import (
    bins_of_figure,
    calibration_figure,
    confusion_figure,
    mc_scores_figure,
    plot_bins_of,
    plot_calibration,
    plot_confusion,
    plot_mc_scores,
    plot_roc,
    roc_figure,
)
from physnn.evaluation.plots_common import class_names, particle_label
from physnn.evaluation.plots_images import (
    FEATURE_LABELS,
    denoising_figure,
    energy_ratio_figure,
    features_figure,
    generated_samples_figure,
    plot_denoising_panels,
    plot_energy_ratio,
    plot_feature_histograms,
    plot_generated_samples,
)
from physnn.evaluation.plots_regression import plot_regression, pulls_figure, residuals_figure
from physnn.evaluation.plots_training import best_epoch, plot_training, read_history, training_figure
from physnn.evaluation.resolution_plot import resolution_by_figure, resolution_figure
from physnn.training.trainer import Plots

__all__ = ["FEATURE_LABELS", "best_epoch", "bins_of_figure", "calibration_figure", "class_names",
           "confusion_figure", "denoising_figure", "energy_ratio_figure", "features_figure", "generated_samples_figure",
           "mc_scores_figure", "particle_label", "plot_bins_of", "plot_calibration", "plot_confusion",
           "plot_denoising_panels", "plot_energy_ratio", "plot_feature_histograms",
           "plot_generated_samples", "plot_mc_scores", "plot_regression", "plot_roc", "plot_training",
           "pulls_figure", "read_history", "residuals_figure", "resolution_by_figure", "resolution_figure",
           "roc_figure", "training_figure", "training_plots"]


def training_plots(image_format: str = "png") -> Plots:
    """What training draws: the loss curves of the run and, for a GAN, generated showers during training, as
    ``image_format`` files (png, svg or pdf)."""
    fmt = check_format(image_format)

    def samples(model: Any, task: Any, path: Path, **kwargs: Any) -> Path:
        return plot_generated_samples(model, task, Path(path).with_suffix(f".{fmt}"), **kwargs)

    return Plots(curves=functools.partial(plot_training, fmt=fmt), samples=samples)
