"""Plots of detector images: denoising examples and energy ratio, fast-simulation feature histograms
(``physnn compare``) and generated showers.

Cell energies are in ``unit`` (GeV for the simulated showers). Each
``*_figure`` function returns the matplotlib figure; each ``plot_*`` function
draws it into a PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm

from physnn.evaluation.plots_common import class_names, colorbar, plt, save
from physnn.evaluation.summary import bracket, with_unit
from physnn.fmt import plural


def _layer_sum(images: np.ndarray) -> np.ndarray:
    """A 2D picture per event: layers summed (images (N, C, H, W)) or the image itself."""
    if images.ndim == 4:
        return images.sum(1)
    if images.ndim == 3:
        return images
    return images.reshape(len(images), 1, -1)


def _log_norm(top: float) -> LogNorm:
    top = max(top, 2e-3)
    return LogNorm(vmin=max(top * 1e-4, 1e-3), vmax=top)


#: Said on every log-colour image figure: what the scale cannot show.
FLOOR = "cells below the scale, negative ones included, in its lowest colour"


def _negative(picture: np.ndarray) -> str:
    """``, 25 cells < 0`` for a title: the cells a log colour scale cannot show as what they are; empty if none."""
    n = int(np.sum(picture < 0))
    return f", {n:,} {'cell' if n == 1 else 'cells'} < 0" if n else ""


def denoising_figure(noisy: np.ndarray, denoised: np.ndarray, truth: np.ndarray, *, events: int = 4,
                     unit: str | None = "GeV") -> Any:
    """Example events from low to high energy, one per row: noisy input, denoised output and truth."""
    n = min(events, len(truth))
    order = np.argsort(truth.reshape(len(truth), -1).sum(1))
    picks = order[np.linspace(0, len(order) - 1, n).astype(int)] if n else []
    layers = truth.shape[1] if truth.ndim == 4 else 1
    what = f"{layers} layers summed" if layers > 1 else "the one layer"
    fig, axes = plt.subplots(max(n, 1), 3, figsize=(11, 3.4 * max(n, 1) + 0.8), squeeze=False,
                             layout="constrained")
    for row, idx in enumerate(picks):
        pictures = [_layer_sum(x[idx:idx + 1])[0] for x in (noisy, denoised, truth)]
        norm = _log_norm(max(float(p.max()) for p in pictures))
        for col, (title, pic) in enumerate(zip(("noisy", "denoised", "truth"), pictures, strict=True)):
            ax = axes[row, col]
            shown = ax.imshow(np.clip(pic, norm.vmin, None), origin="lower", norm=norm, cmap="viridis")
            ax.set_title(f"event {idx}, {title}\nsum {with_unit(f'{pic.sum():.3g}', unit)}{_negative(pic)}",
                         fontsize=11)
            ax.set_xticks([])
            ax.set_yticks([])
        colorbar(fig, shown, axes[row].tolist(), f"cell energy{bracket(unit)}", fraction=0.03, extend="min")
    for ax in axes.flat[3 * n:]:
        ax.remove()
    fig.suptitle(f"cell energies, {what} (log colour scale)\n{FLOOR}", fontsize=13)
    return fig


def plot_denoising_panels(noisy: np.ndarray, denoised: np.ndarray, truth: np.ndarray, path: Path, *,
                          events: int = 4, unit: str | None = "GeV") -> Path:
    """Example events, one per row: noisy input, denoised output and truth (layers summed, log colour)."""
    return save(denoising_figure(noisy, denoised, truth, events=events, unit=unit), path)


def _edge_counts(ratio: np.ndarray, high: float) -> str:
    """What the edge bins of a histogram of E_sum / E_sum,true from 0 to ``high`` hold besides their own range,
    for the legend: ``5 at 0 (E_sum = 0), 3 below 0, 2 above 2``; empty when nothing."""
    parts = [(int(np.sum(ratio == 0)), r"at 0 (E$_{\mathrm{sum}}$ = 0)"), (int(np.sum(ratio < 0)), "below 0"),
             (int(np.sum(ratio > high)), f"above {high:g}")]
    return ", ".join(f"{n:,} {what}" for n, what in parts if n)


def energy_ratio_figure(noisy: np.ndarray, denoised: np.ndarray, truth: np.ndarray) -> Any:
    """Histograms of the total energy over the true total energy, noisy input vs denoised output.

    Ratios below 0 (a negative sum) and above 2 are drawn in the first and last bins; the legend counts them
    and the events whose sum is exactly 0 (nothing left), which make a spike at 0. Events without true energy
    have no ratio: the title counts them.
    """
    e_true = truth.reshape(len(truth), -1).sum(1)
    ok = e_true > 0
    fig, ax = plt.subplots(figsize=(9, 6.5), layout="constrained")
    bins = np.linspace(0.0, 2.0, 81)
    for label, images in (("noisy input", noisy), ("denoised", denoised)):
        ratio = images.reshape(len(images), -1).sum(1)[ok] / e_true[ok]
        counts = np.histogram(np.clip(ratio, bins[0], bins[-1]), bins=bins)[0]
        edges = _edge_counts(ratio, bins[-1])
        text = f"{label}: median {np.median(ratio):.3f}" if ratio.size else label
        ax.stairs(counts, bins, linewidth=1.5, label=f"{text}\n  edge bins: {edges}" if edges else text)
    ax.axvline(1.0, color="grey", linestyle=":", label="1: energy kept")
    ax.set_xlabel(r"$E_{\mathrm{sum}} / E_{\mathrm{sum,\,true}}$ (edge bins: < 0 and > 2)")
    ax.set_ylabel("events")
    left_out = int((~ok).sum())
    without = f";\n{plural(left_out, 'event')} without true energy left out" if left_out else ""
    ax.set_title(f"total energy over the true total energy ({int(ok.sum()):,} events{without})", fontsize=16)
    ax.set_ylim(top=ax.get_ylim()[1] * 1.25)  # room for the legend
    ax.legend(fontsize=13, loc="upper left")
    return fig


def plot_energy_ratio(noisy: np.ndarray, denoised: np.ndarray, truth: np.ndarray, path: Path) -> Path:
    """Histograms of the total energy over the true total energy, noisy input vs denoised output."""
    return save(energy_ratio_figure(noisy, denoised, truth), path)


#: Axis labels of the high-level shower features ({l}: the layer, {u}: the unit of cell energies).
FEATURE_LABELS = {"e_ratio": r"$E_{\mathrm{dep}} / E_{\mathrm{inc}}$", "e_total": r"$E_{\mathrm{dep}}${u}",
                  "e_max": "hottest cell energy{u}", "e_layer": "energy in layer {l}{u}",
                  "centroid_x": "centroid x, layer {l} [cells]", "centroid_y": "centroid y, layer {l} [cells]",
                  "width_x": "width x, layer {l} [cells]", "width_y": "width y, layer {l} [cells]",
                  "sparsity": "non-zero cell fraction, layer {l}"}


def _feature_label(name: str, unit: str | None = "GeV") -> str:
    base = name.rstrip("0123456789")
    layer = name[len(base):]
    return FEATURE_LABELS.get(base, name).replace("{l}", layer).replace("{u}", bracket(unit))


def feature_groups(names: Sequence[str]) -> dict[str, list[str]]:
    """Features by figure: ``energy`` (totals, layers, hottest cell), ``centroid``, ``width``, ``sparsity``."""
    groups: dict[str, list[str]] = {}
    for name in names:
        base = name.rstrip("0123456789")
        group = ("energy" if base in ("e_ratio", "e_total", "e_layer", "e_max") else
                 base.split("_")[0] if base.startswith(("centroid", "width")) else base)
        groups.setdefault(group, []).append(name)
    return groups


def features_figure(names: Sequence[str], reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
                    separation: Mapping[str, float], *, bins: int = 50,
                    labels: tuple[str, str] = ("reference", "candidate"), unit: str | None = "GeV") -> Any:
    """One panel per feature: the unit-normalised histograms, a candidate/reference ratio below, the separation
    power S in the panel; one legend for the figure, above the panels."""
    from physnn.physics.showers import feature_bins, normalized_histogram

    cols = min(len(names), 3)
    rows = -(-len(names) // cols)
    fig = plt.figure(figsize=(5.6 * cols, 5.0 * rows + 0.8), layout="constrained")
    outer = fig.add_gridspec(rows, cols)
    for i, name in enumerate(names):
        inner = outer[divmod(i, cols)].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.0)
        ax = fig.add_subplot(inner[0])
        rx = fig.add_subplot(inner[1], sharex=ax)
        edges = feature_bins(reference[name], candidate[name], bins)
        h_ref, h_cand = normalized_histogram(reference[name], edges), normalized_histogram(candidate[name], edges)
        ax.stairs(h_ref, edges, label=labels[0], color="black", linewidth=1.5)
        ax.stairs(h_cand, edges, label=labels[1], color="tab:red", linewidth=1.5)
        ax.set_ylim(0, max(float(h_ref.max(initial=0)), float(h_cand.max(initial=0)), 1e-3) * 1.3)
        ax.set_ylabel("fraction", fontsize=14)
        ax.tick_params(labelbottom=False, labelsize=12)
        ax.text(0.97, 0.95, f"S = {separation.get(name, float('nan')):.4f}", transform=ax.transAxes,
                ha="right", va="top", fontsize=13)
        ratio = np.divide(h_cand, h_ref, out=np.full_like(h_ref, np.nan), where=h_ref > 0)
        rx.stairs(ratio, edges, color="tab:red", linewidth=1.2)
        rx.axhline(1.0, color="grey", linestyle=":")
        beyond = (ratio > 2.0) | ((h_ref == 0) & (h_cand > 0))  # off the axis, or no reference to divide by
        if beyond.any():
            rx.plot(0.5 * (edges[1:] + edges[:-1])[beyond], np.full(int(beyond.sum()), 1.85), "^", color="tab:red")
        rx.set_ylim(0.0, 2.0)
        rx.set_ylabel("ratio", fontsize=14)
        rx.set_xlabel(_feature_label(name, unit), fontsize=15)
        rx.tick_params(labelsize=12)
        rx.set_yticks([0.5, 1.0, 1.5])  # no label on the edges, where the panels meet
    handles, texts = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, [*texts[:2]], loc="outside upper center", ncols=2, fontsize=15,
               title="unit-normalised histograms, under- and overflow in the edge bins\n"
                     "ratio = candidate / reference (triangles: above 2); S = separation power",
               title_fontsize=14)
    return fig


def plot_feature_histograms(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
                            separation: Mapping[str, float], out: Path, *, bins: int = 50,
                            labels: tuple[str, str] = ("reference", "candidate"),
                            unit: str | None = "GeV", fmt: str = "png") -> list[Path]:
    """Overlaid unit-normalised histograms of each high-level feature with a candidate/reference ratio panel.

    One figure per feature group (``features_energy.png``, ``features_centroid.png``, ...; ``fmt``: png, svg or
    pdf), one panel per feature, the separation power in each panel.
    """
    return [save(features_figure(names, reference, candidate, separation, bins=bins, labels=labels, unit=unit),
                 Path(out) / f"features_{group}.{fmt}")
            for group, names in feature_groups(list(reference)).items()]


def generated_samples(model: Any, task: Any, device: Any = "cpu", seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Showers generated at fixed conditions, up to three classes times the 10/50/90% quantiles of the incident
    energy: the images in physical units and, per row, what it is (``energy = 10.9 GeV, e-``)."""
    import torch

    rng = np.random.default_rng(seed)
    classes = task.classes if task.classes is not None else [None]
    names = class_names(task.classes, task.label) if task.classes is not None else [""]
    rows = []
    for value, cname in zip(classes[:3], names[:3], strict=False):
        for level in (0.1, 0.5, 0.9):  # quantiles of the training energy distribution
            fixed = {}
            if task.incident is not None:
                name = task.scalars[task.incident]
                fixed[name] = float(np.interp(level, np.linspace(0, 1, len(task.quantiles[name])),
                                              task.quantiles[name]))
            raw = task.sample_conditions(1, rng, fixed=fixed, classes=None if value is None else [value])
            text = ", ".join([*(f"{k} = {v:.3g} GeV" for k, v in fixed.items()), *([cname] if cname else [])])
            rows.append((text, raw))
    cond = torch.cat([task.conditions_tensor(raw, device) for _, raw in rows])
    incident = torch.cat([task.incident_of(raw, device) for _, raw in rows])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        noise = torch.Generator().manual_seed(seed)
        z = torch.randn(len(cond), model.latent_dim, generator=noise).to(device)
        images = task.to_phys(task.generate(model, z, cond, incident, generator=noise)).cpu().numpy()
    model.train(was_training)
    return images, [text for text, _ in rows]


def generated_samples_figure(images: np.ndarray, rows: Sequence[str], *, title: str = "",
                             unit: str | None = "GeV") -> Any:
    """One row per condition (``rows``: what it is), one column per layer; log colour, a colour bar per row."""
    if images.ndim == 3:
        images = images[:, None]
    n_layers = images.shape[1]
    fig, axes = plt.subplots(len(rows), n_layers, figsize=(2.8 * n_layers + 2.5, 2.6 * len(rows) + 0.6),
                             squeeze=False, layout="constrained")
    for r, text in enumerate(rows):
        norm = _log_norm(float(images[r].max()))
        for layer in range(n_layers):
            ax = axes[r, layer]
            shown = ax.imshow(np.clip(images[r, layer], norm.vmin, None), origin="lower", norm=norm, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"layer {layer}{_negative(images[r, layer])}", fontsize=10)
        axes[r, 0].set_ylabel(text, fontsize=10)
        colorbar(fig, shown, axes[r].tolist(), f"cell energy{bracket(unit)}", fontsize=10, fraction=0.03,
                 extend="min")
    fig.suptitle(f"generated showers{': ' + title if title else ''} (log colour scale)\n{FLOOR}", fontsize=12)
    return fig


def plot_generated_samples(model: Any, task: Any, path: Path, *, device: Any = "cpu", seed: int = 0,
                           title: str = "") -> Path:
    """Generated showers at a few fixed conditions: one row per (class, energy), one column per layer."""
    images, rows = generated_samples(model, task, device, seed)
    return save(generated_samples_figure(images, rows, title=title), path)
