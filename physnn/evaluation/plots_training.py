"""Training curves: ``loss.png`` of a run folder.

Training and validation loss share one panel; every other metric gets its
own (its training and validation values together). The epoch whose weights
``best.pt`` holds (the one predict uses) is marked on every panel. A GAN run (its
``metrics.csv`` has ``train_generator_loss``) gets the critic, the generator
and the validation separation power in separate panels. Epoch ticks are
whole numbers.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from physnn.evaluation.plots_common import integer_ticks, plt, save
from physnn.evaluation.summary import bracket

#: A GAN's panels: title, y label and the columns drawn (column: legend label).
GAN_PANELS = (
    ("critic", "critic loss / distance", {"train_loss": "critic loss (training)",
                                          "train_distance": "Wasserstein distance (training)",
                                          "val_distance": "Wasserstein distance (validation)"}),
    ("generator", "generator loss", {"train_generator_loss": "generator loss (training)"}),
    ("layer-energy density", "negative log-likelihood", {"train_energy_nll": "energy NLL (training)"}),
    ("validation: generated vs real showers", "separation power", {
        "val_loss": "mean over the features", "val_sep_energy": "total energy / incident",
        "val_sep_layers": "layer energies (mean)"}),
)
#: Bookkeeping columns, not drawn.
SKIP = ("epoch", "lr", "seconds", "samples_per_s")


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch metrics of a run folder (CSV or JSON lines)."""
    if (run_dir / "metrics.csv").is_file():
        with (run_dir / "metrics.csv").open() as f:
            return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    if (run_dir / "metrics.jsonl").is_file():
        return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    return []


def target_units(run_dir: Path) -> dict[str, str]:
    """The unit of each regression target of a run folder's ``config.yaml`` (targets without one left out)."""
    import yaml
    from pydantic import ValidationError

    from physnn.config import DataConfig

    try:
        saved = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
        specs = DataConfig.model_validate(saved["data"]).target_specs
    except (OSError, yaml.YAMLError, ValidationError, KeyError, TypeError):
        return {}
    return {name: spec.unit for name, spec in specs.items() if spec.unit}


def _metric_labels(name: str, units: Mapping[str, str]) -> tuple[str, str]:
    """Title and y label of a metric's panel: ``rmse_energy`` is the RMSE of energy [GeV]."""
    if name.startswith("rmse_") and name[5:] not in ("input",):
        target = name[5:]
        return f"RMSE of {target}", f"RMSE{bracket(units.get(target))}"
    known = {"auc": ("AUC", "AUC"), "accuracy": ("accuracy", "accuracy"),
             "coverage_1sigma": ("coverage of ±1σ (0.683 expected)", "fraction within ±1σ")}
    return known.get(name, (name.replace("_", " "), name.replace("_", " ")))


def _panels(columns: Sequence[str], units: Mapping[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    """What each panel shows: (title, y label, {column: legend label}); empty panels left out."""
    if "train_generator_loss" in columns:
        panels = [(t, y, {c: label for c, label in cols.items() if c in columns}) for t, y, cols in GAN_PANELS]
        return [p for p in panels if p[2]]
    panels = [("loss", "loss", {c: label for c, label in (("train_loss", "training"), ("val_loss", "validation"))
                                if c in columns})]
    names = dict.fromkeys(c.split("_", 1)[1] for c in columns
                          if c.startswith(("train_", "val_")) and c not in ("train_loss", "val_loss"))
    for name in names:
        cols = {c: label for c, label in ((f"train_{name}", "training"), (f"val_{name}", "validation"))
                if c in columns}
        panels.append((*_metric_labels(name, units), cols))
    return panels


def training_figure(history: Sequence[dict[str, Any]], *, units: Mapping[str, str] | None = None,
                    best_epoch: int | None = None) -> Any:
    """The loss and metric curves of a run's history (rows of :func:`read_history`); ``units``: each regression
    target's unit (:func:`target_units`), for its RMSE axis; ``best_epoch`` (:func:`best_epoch`) marked."""
    columns = list(dict.fromkeys(k for row in history for k in row if k not in SKIP))
    panels = _panels(columns, units or {})
    cols = 2 if len(panels) == 4 else min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, layout="constrained", figsize=(7 * cols, 5.2 * rows), squeeze=False)
    epoch = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    for ax, (title, ylabel, drawn) in zip(axes.flat, panels, strict=False):
        for (column, label), marker in zip(drawn.items(), "os^vD", strict=False):
            ax.plot(epoch, [row.get(column, np.nan) for row in history], f"{marker}-", label=label)
        if "val_coverage_1sigma" in drawn:
            ax.axhline(0.6827, color="grey", ls=":", label="Gaussian error bars: 0.683")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="black", ls="--", lw=1,
                       label=f"best epoch {best_epoch} (best.pt)" if ax is axes.flat[0] else None)
        ax.set_title(title, fontsize=18)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        integer_ticks(ax.xaxis)
        ax.legend(fontsize=14)
    for ax in axes.flat[len(panels):]:
        ax.remove()
    return fig


def best_epoch(run_dir: Path) -> int | None:
    """The epoch of the run's ``best.pt`` (None without one)."""
    from physnn.training.checkpoint import load_checkpoint

    if not (Path(run_dir) / "best.pt").is_file():
        return None
    return int(load_checkpoint(Path(run_dir), "best.pt")["epoch"])


def plot_training(run_dir: Path, out: Path, *, fmt: str = "png") -> list[Path]:
    """Training and validation loss (and the validation metrics) per epoch, as ``loss.png`` (``fmt``: png, svg or
    pdf)."""
    history = read_history(Path(run_dir))
    if not history:
        return []
    fig = training_figure(history, units=target_units(Path(run_dir)), best_epoch=best_epoch(Path(run_dir)))
    return [save(fig, Path(out) / f"loss.{fmt}")]
