"""Plots in the HEP style (matplotlib + mplhep), written as PNG files.

Every function takes plain numbers (the figures computed by
:mod:`physnn.evaluation.metrics`) and a folder, and returns the paths it wrote.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

try:
    import mplhep

    plt.style.use(mplhep.style.ROOT)
except ImportError:  # pragma: no cover - mplhep is part of the plot extra
    mplhep = None


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch metrics of a run folder (CSV or JSON lines)."""
    if (run_dir / "metrics.csv").is_file():
        with (run_dir / "metrics.csv").open() as f:
            return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    if (run_dir / "metrics.jsonl").is_file():
        return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    return []


def plot_training(run_dir: Path, out: Path) -> list[Path]:
    """Training and validation loss (and the validation metrics) per epoch."""
    history = read_history(Path(run_dir))
    if not history:
        return []
    epoch = [row["epoch"] for row in history]
    metrics = [k for k in history[-1] if k.startswith("val_") and k != "val_loss"]
    fig, axes = plt.subplots(1, 1 + bool(metrics), figsize=(8 + 6 * bool(metrics), 6), squeeze=False)
    ax = axes[0, 0]
    ax.plot(epoch, [r["train_loss"] for r in history], "o-", label="training")
    if "val_loss" in history[-1]:
        ax.plot(epoch, [r.get("val_loss", np.nan) for r in history], "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    if metrics:
        ax = axes[0, 1]
        for key in metrics:
            ax.plot(epoch, [r.get(key, np.nan) for r in history], "o-", label=key[4:])
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation metric")
        ax.legend()
    return [_save(fig, Path(out) / "loss.png")]


