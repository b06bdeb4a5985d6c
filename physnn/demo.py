"""The main job on built-in demo data, end to end (``physnn demo``).

1. simulate calorimeter showers (e-, gamma, pi+; 1-100 GeV);
2. train a CNN e/pi classifier, predict with MC dropout, evaluate;
3. train a CNN energy regressor with a Gaussian head (sum pooling keeps the
   deposited energy), predict with MC dropout, evaluate against the plain
   calibrated sum of cell energies.

The run configs below are the same as ``configs/train/epi.yaml`` and
``configs/train/energy.yaml`` with the demo's file names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

EPI_MODEL: dict[str, Any] = {"name": "cnn", "params": {
    "features": [
        {"type": "conv", "filters": 16, "kernel_size": 3, "kernel_initializer": "he_normal"},
        {"type": "pool", "mode": "max", "pool_size": 2},
        {"type": "conv", "filters": 32, "kernel_size": 3, "kernel_initializer": "he_normal"},
        {"type": "pool", "mode": "max", "pool_size": 2},
        {"type": "flatten"}],
    "head": [{"type": "dense", "units": 64, "kernel_initializer": "he_normal"}, {"type": "dropout", "rate": 0.3}],
}}

ENERGY_MODEL: dict[str, Any] = {"name": "cnn", "params": {
    "features": [
        {"type": "conv", "filters": 16, "kernel_size": 3, "kernel_initializer": "he_normal", "batch_norm": True},
        {"type": "pool", "mode": "average", "pool_size": 2},
        {"type": "conv", "filters": 32, "kernel_size": 3, "kernel_initializer": "he_normal", "batch_norm": True},
        {"type": "pool", "mode": "average", "pool_size": 2},
        {"type": "flatten"}],
    "head": [{"type": "dense", "units": 64, "kernel_initializer": "he_normal"}, {"type": "dropout", "rate": 0.1}],
}}


def epi_config(showers: str | Path, epochs: int = 12) -> dict[str, Any]:
    """Electron/pion classification from the calorimeter image."""
    return {"data": {"files": str(showers), "selection": "pdgid != 22", "images": {"branches": ["image"]},
                     "label": "pdgid", "classes": [11, 211], "observers": ["energy"]},
            "model": EPI_MODEL, "task": {"kind": "classification"},
            "train": {"epochs": epochs, "batch_size": 128, "optimizer": {"lr": 1e-3},
                      "scheduler": {"name": "cosine"}, "early_stopping": {"patience": 4}}}


def energy_config(showers: str | Path, epochs: int = 20) -> dict[str, Any]:
    """Incident-energy regression with error bars (Gaussian head + MC dropout)."""
    return {"data": {"files": str(showers), "images": {"branches": ["image"]}, "targets": ["energy"],
                     "observers": ["pdgid"]},
            "model": ENERGY_MODEL, "task": {"kind": "regression", "loss": "gaussian"},
            "train": {"epochs": epochs, "batch_size": 128, "grad_clip": 5.0, "scheduler": {"name": "cosine"},
                      "early_stopping": {"patience": None}}}


def calibrated_sum(showers: str | Path, entries: np.ndarray, split: np.ndarray) -> np.ndarray:
    """The classic estimator: sum of cell energies times one factor fitted on the training split."""
    import physnn

    image = physnn.read(str(showers), ["image", "energy"])
    total = np.asarray(image["image"]).reshape(len(image["energy"]), -1).sum(1)[entries]
    energy = np.asarray(image["energy"])[entries]
    train = split == 0
    factor = float(np.sum(energy[train] * total[train]) / np.sum(total[train] ** 2))
    return factor * total


def run(out: Path, *, events: int = 10000, seed: int = 1, epochs: int | None = None,
        mc_samples: int = 50, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo into ``out``; returns the paths and the evaluation figures."""
    import physnn

    out.mkdir(parents=True, exist_ok=True)
    showers = out / "showers.root"
    sim = physnn.simulate("showers", showers, events=events, seed=seed, overwrite=True)
    say(f"simulated {sim.events:,} showers -> {sim.path} ({sim.rate:,.0f} showers/s)")
    results: dict[str, Any] = {"showers": showers}
    jobs = (("epi", epi_config(showers, *([epochs] if epochs else []))),
            ("energy", energy_config(showers, *([epochs] if epochs else []))))
    for name, cfg in jobs:
        run_dir = out / f"run_{name}"
        trained = physnn.train(cfg, out=run_dir, overwrite=True, progress=None)
        say(f"trained {name}: {trained.task.describe()}, best epoch {trained.best['epoch']} -> {run_dir}")
        preds = out / f"predictions_{name}.root"
        pred = physnn.predict(run_dir, showers, out=preds, mc_samples=mc_samples, keep_samples=name == "epi",
                              overwrite=True, collect=name == "energy")
        say(f"predicted {pred.events:,} events with MC dropout (T = {mc_samples}) -> {preds} "
            f"({pred.rate:,.0f} events/s)")
        baselines = None
        if name == "energy":
            assert pred.arrays is not None
            baselines = {"calibrated cell sum": {"energy": calibrated_sum(showers, pred.arrays["entry"],
                                                                          pred.arrays["split"])}}
        report = physnn.evaluate(preds, out=out / f"report_{name}", baselines=baselines)
        results[name] = {"run": run_dir, "predictions": preds, "report": report.out, "figures": report.figures}
    return results
