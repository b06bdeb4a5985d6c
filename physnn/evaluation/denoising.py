"""How well an autoencoder denoises: gain, energy and shower-shape preservation, image panels.

On events with a known clean truth (the test split of the training files,
made noisy with the run's own noise model and a fixed seed, or the
``target_images`` of a paired run) the denoised images are compared with the
truth next to the noisy inputs:

- ``rmse``: root mean square difference per cell (physical units) of the
  noisy input and of the denoised output; the **gain** is their ratio (above
  1: closer to the truth than the input);
- **total energy**: median and robust spread (half the 16-84 % interval) of
  ``E_sum / E_sum,true - 1`` per event;
- **shower shape** per layer (2D images): the energy-weighted centroid in x
  and y (mean absolute shift from the truth, in cells) and width (median
  ratio to the truth), from the non-negative cells of layers holding at least
  ``min_layer_energy`` in the truth;
- PNG panels of example events (noisy / denoised / truth, layers summed) and
  the energy-ratio histograms.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physnn.data.dataset import Tagging, finalize, iter_raw
from physnn.data.split import SPLITS, describe_held_out, held_out
from physnn.errors import ConfigError, DataError
from physnn.evaluation.image_format import check_format
from physnn.evaluation.registry import register_evaluator
from physnn.evaluation.report import EvaluationResult, check_report_dir, report_dir
from physnn.inference.autoencode import reconstruct, reconstruction_task
from physnn.inference.loading import LoadedRun, load_run, match_image_shape
from physnn.inference.plan import plan_prediction
from physnn.physics.showers import shower_shapes


def _robust_spread(x: np.ndarray) -> float:
    lo, hi = np.percentile(x, [16, 84])
    return float(0.5 * (hi - lo))


def denoising_figures(noisy: np.ndarray, denoised: np.ndarray, truth: np.ndarray, *,
                      min_layer_energy: float = 1.0) -> dict[str, Any]:
    """The figures of merit of denoised images against the truth, next to the noisy inputs."""
    rmse_in = float(np.sqrt(np.mean((noisy.astype(np.float64) - truth) ** 2)))
    rmse_out = float(np.sqrt(np.mean((denoised.astype(np.float64) - truth) ** 2)))
    figures: dict[str, Any] = {"events": len(truth), "rmse_input": rmse_in, "rmse_output": rmse_out,
                               "gain": rmse_in / rmse_out if rmse_out > 0 else float("inf")}
    e_true = truth.reshape(len(truth), -1).sum(1).astype(np.float64)
    ok = e_true > 0
    figures["total_energy"] = {}
    for name, images in (("input", noisy), ("output", denoised)):
        ratio = images.reshape(len(images), -1).sum(1)[ok] / e_true[ok] - 1.0
        figures["total_energy"][name] = {"median": float(np.median(ratio)), "mean": float(np.mean(ratio)),
                                         "spread": _robust_spread(ratio)}
    shapes = {name: shower_shapes(images) for name, images in (("truth", truth), ("input", noisy),
                                                                ("output", denoised))}
    if "centroid_x" in shapes["truth"]:
        layers = []
        for layer in range(truth.shape[1]):
            sel = shapes["truth"]["energy"][:, layer] >= min_layer_energy
            row: dict[str, Any] = {"layer": layer, "events": int(sel.sum())}
            for name in ("input", "output"):
                s, t = shapes[name], shapes["truth"]
                for axis in ("x", "y"):
                    shift = np.abs(s[f"centroid_{axis}"][sel, layer] - t[f"centroid_{axis}"][sel, layer])
                    width = t[f"width_{axis}"][sel, layer]  # 0 for a layer with one positive cell
                    ratio = np.divide(s[f"width_{axis}"][sel, layer], width, out=np.full_like(width, np.nan),
                                      where=width > 0)
                    row[f"{name}_centroid_shift_{axis}"] = float(np.nanmean(shift)) if sel.any() else float("nan")
                    good = ratio[np.isfinite(ratio)]
                    row[f"{name}_width_ratio_{axis}"] = float(np.median(good)) if good.size else float("nan")
            layers.append(row)
        figures["layers"] = layers
    return figures


@register_evaluator("reconstruction")
def evaluate_denoising(
    run: str | os.PathLike | LoadedRun,
    files: str | os.PathLike | Sequence[str] | None = None,
    *,
    out: str | os.PathLike | None = None,
    split: str = "auto",
    seed: int = 0,
    mc_samples: int = 0,
    panels: int = 4,
    min_layer_energy: float = 1.0,
    batch_size: int = 256,
    device: str = "auto",
    plots: bool = True,
    image_format: str = "png",
    overwrite: bool = False,
) -> EvaluationResult:
    """Judge a denoising autoencoder against the clean truth.

    Parameters
    ----------
    run
        An image-autoencoder run folder, checkpoint or :class:`LoadedRun`.
    files
        Files with clean images (default: the training files and config).
    out
        Folder for ``metrics.json`` and the PNG plots (None: compute only).
    split
        ``auto`` (the events training never saw: the test split of the
        training files and every event of other files), ``all``, ``train``,
        ``val`` or ``test``.
    seed
        Seed of the noise added to the clean images.
    mc_samples
        T > 0: denoise with MC dropout and report the mean per-cell spread.
    panels
        Example events drawn (noisy / denoised / truth).
    min_layer_energy
        Layers below this true energy are left out of the shape figures.
    image_format, overwrite
        The plots' file format: ``png``, ``svg`` or ``pdf``; replace an earlier report in ``out`` (without it, such a
        folder is refused before any work: :func:`~physnn.evaluation.report.report_dir`).
    """
    fmt = check_format(image_format)
    check_report_dir(out, overwrite=overwrite)
    loaded = run if isinstance(run, LoadedRun) else load_run(run, device=device)
    task = reconstruction_task(loaded, "evaluate")
    if not task.noise and not task.paired:
        msg = (f"{loaded.checkpoint}: the run has neither task.noise nor data.target_images, so there is no "
               "noisy input to compare with; denoising figures need one of them")
        raise ConfigError(msg)
    if split not in ("auto", "all") and split not in SPLITS:
        msg = f"--split {split!r}: expected auto, all, {', '.join(SPLITS)}"
        raise ConfigError(msg)
    cfg = (loaded.config.data if files is None
           else plan_prediction(loaded.config.data, files, None, None, image_shape=loaded.io.image).config)
    noisy_parts, out_parts, truth_parts, std_parts, codes = [], [], [], [], []
    generator = torch.Generator().manual_seed(seed)
    # auto: the events training never saw (the test split of the training files, every event of other files)
    for raw in iter_raw(cfg, step_size=cfg.step_size, tagging=Tagging(known_files=set(loaded.training_files))):
        part = (raw if split == "all" else raw.select(held_out(raw.split)) if split == "auto"
                else raw.select(raw.split == SPLITS[split]))
        if len(part) == 0:
            continue
        codes.append(part.split)
        match_image_shape(loaded, part, ", ".join(cfg.files))
        if task.paired and part.target_image is None:
            wanted = loaded.config.data.target_images  # the run's; left out of cfg where the file lacks them
            names = ", ".join(repr(b) for b in wanted.branches) if wanted is not None else "none"
            msg = f"{', '.join(cfg.files)}: no target image branches {names} to compare with"
            raise DataError(msg)
        truth = part.target_image if task.paired else part.image.copy()  # type: ignore[union-attr]
        td = finalize(part, loaded.transform, cfg.model_copy(update={"label": None}))
        x = td.inputs["image"] if task.paired else task.noisy(td.inputs["image"], generator=generator)
        mean, std = reconstruct(loaded, x, mc_samples=mc_samples, batch_size=batch_size)
        noisy_parts.append(task.to_phys(x).numpy())
        out_parts.append(mean.numpy())
        truth_parts.append(truth)
        if std is not None:
            std_parts.append(std.numpy())
    if not truth_parts:
        which = "held-out event" if split == "auto" else f"event in the {split} split"
        msg = f"{', '.join(cfg.files)}: no {which} to evaluate"
        raise DataError(msg)
    noisy, denoised, truth = (np.concatenate(p) for p in (noisy_parts, out_parts, truth_parts))
    figures = denoising_figures(noisy, denoised, truth, min_layer_energy=min_layer_energy)
    described = describe_held_out(np.concatenate(codes)) if split == "auto" else split
    figures.update(checkpoint=str(loaded.checkpoint), split=described, seed=seed, mc_samples=mc_samples,
                   noise=[n.model_dump() for n in task.noise], paired=task.paired)
    if std_parts:
        figures["mean_cell_std"] = float(np.mean(np.concatenate(std_parts)))
    outdir = report_dir(out, overwrite=overwrite)
    written = [] if outdir is None else _write_report(outdir, figures, (noisy, denoised, truth), loaded, cfg,
                                                      plots=plots, panels=panels, fmt=fmt)
    return EvaluationResult(figures, outdir, written, judged="denoising")


def _write_report(outdir: Path, figures: dict[str, Any], images: tuple[np.ndarray, np.ndarray, np.ndarray],
                  loaded: LoadedRun, cfg: Any, *, plots: bool, panels: int, fmt: str) -> list[Path]:
    """``metrics.json`` and, with ``plots``, the panels, the energy ratio and ``report.html`` (the files written)."""
    noisy, denoised, truth = images
    written: list[Path] = []
    if plots:
        from physnn.evaluation import plots as P

        written.append(P.plot_denoising_panels(noisy, denoised, truth, outdir / f"denoising_panels.{fmt}",
                                               events=panels, unit=cfg.image_unit()))
        written.append(P.plot_energy_ratio(noisy, denoised, truth, outdir / f"denoising_energy.{fmt}"))
    path = outdir / "metrics.json"
    path.write_text(json.dumps(figures, indent=1))
    written.insert(0, path)
    if plots:
        from physnn.evaluation.html_report import denoising_page

        written.append(denoising_page(outdir, figures, written, loaded, files=list(cfg.files)))
    return written
