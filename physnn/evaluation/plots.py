"""Plots in the HEP style (matplotlib + mplhep), written as PNG files.

Every function takes plain numbers (the figures computed by
:mod:`physnn.evaluation.metrics`) and a folder, and returns the paths it wrote.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
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

from physnn.evaluation.resolution import OUTLIER_CUT
from physnn.evaluation.resolution_plot import resolution_figure
from physnn.evaluation.summary import bracket, num, with_unit


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
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
    fig, axes = plt.subplots(1, 1 + bool(metrics), layout="constrained", figsize=(8 + 6 * bool(metrics), 6),
                             squeeze=False)
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




def _label(ax: Any, text: str) -> None:
    ax.text(0.04, 0.96, text, transform=ax.transAxes, va="top", ha="left", fontsize=14)


def plot_roc(roc: dict[str, Any], path: Path, *, name: str = "classifier") -> Path:
    """ROC curve with its bootstrap band, and background rejection vs signal efficiency."""
    fpr, tpr = np.array(roc["fpr"]), np.array(roc["tpr"])
    fig, (ax, bx) = plt.subplots(1, 2, layout="constrained", figsize=(14, 6.5))
    if "tpr_low" in roc:
        ax.fill_between(fpr, roc["tpr_low"], roc["tpr_high"], alpha=0.3, label="bootstrap 68% band")
    auc = f"AUC = {roc['auc']:.4f}"
    if "auc_low" in roc:
        auc += f" [{roc['auc_low']:.4f}, {roc['auc_high']:.4f}]"
    ax.plot(fpr, tpr, label=f"{name}: {auc}")
    ax.plot([0, 1], [0, 1], "k:", label="random")
    ax.set_xlabel("false positive rate (class 0 accepted)")
    ax.set_ylabel("true positive rate (class 1 accepted)")
    ax.legend(loc="lower right", fontsize=12)
    ok = fpr > 0
    bx.plot(tpr[ok], 1 / fpr[ok])
    bx.set_yscale("log")
    bx.set_xlabel("signal efficiency (class 1)")
    bx.set_ylabel("background rejection 1/FPR")
    return _save(fig, path)


def plot_calibration(cal: dict[str, Any], path: Path) -> Path:
    """Reliability diagram: observed frequency vs mean predicted probability."""
    fig, ax = plt.subplots(layout="constrained", figsize=(7, 7))
    ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    ax.plot(cal["mean_predicted"], cal["observed"], "o-", label=f"ECE = {cal['ece']:.4f}")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_confusion(confusion: Sequence[Sequence[float]], classes: Sequence[Any], path: Path) -> Path:
    """Confusion matrix normalised per true class, with the counts."""
    m = np.asarray(confusion, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1e-12)
    fig, ax = plt.subplots(layout="constrained", figsize=(2.2 * len(classes) + 3, 2.2 * len(classes) + 2))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{norm[i, j]:.3f}\n({m[i, j]:.0f})", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=12)
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.minorticks_off()
    return _save(fig, path)


def plot_mc_scores(score: np.ndarray, score_std: np.ndarray, true_class: np.ndarray,
                   samples: np.ndarray | None, path: Path) -> Path:
    """What MC dropout says about each prediction.

    Left: the mean score per true class. Middle: spread vs mean score (sure
    predictions sit at the ends with a small spread). Right (when the samples
    were kept): the T sampled scores of a certain negative, a certain positive
    and the most uncertain event.
    """
    from physnn.evaluation.metrics import mc_categories

    panels = 3 if samples is not None else 2
    fig, axes = plt.subplots(1, panels, layout="constrained", figsize=(7 * panels, 6.5))
    bins = np.linspace(0, 1, 41)
    for c in (0, 1):
        axes[0].hist(score[true_class == c], bins=bins, histtype="step", lw=2, label=f"true class {c}")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("mean MC-dropout score")
    axes[0].set_ylabel("events")
    axes[0].legend(loc="upper center")
    h = axes[1].hist2d(score, score_std, bins=(bins, 40), cmin=1, norm=mpl.colors.LogNorm())
    fig.colorbar(h[3], ax=axes[1], label="events")
    axes[1].set_xlabel("mean score")
    axes[1].set_ylabel("MC-dropout spread (std)")
    if samples is not None:
        cat = mc_categories(score, score_std)
        picks = []
        for c, name in ((0, "certain negative"), (1, "certain positive")):
            idx = np.flatnonzero(cat == c)
            if idx.size:
                picks.append((idx[np.argmin(score_std[idx])], name))
        picks.append((int(np.argmax(score_std)), "most uncertain"))
        for i, name in picks:
            axes[2].hist(samples[i], bins=bins, histtype="stepfilled", alpha=0.5,
                         label=f"{name}: {score[i]:.2f} ± {score_std[i]:.2f}")
        axes[2].set_xlabel(f"score of each of the T = {samples.shape[1]} passes")
        axes[2].set_ylabel("passes")
        axes[2].legend(loc="upper center", fontsize=11)
    return _save(fig, path)


def plot_regression(name: str, true: np.ndarray, pred: np.ndarray, std: np.ndarray | None,
                    figures: dict[str, Any], out: Path) -> list[Path]:
    """Residuals, resolution per bin of the true value (model and baselines, worst bin marked), pulls, coverage."""
    paths = []
    res = pred - true
    unit = bracket(figures.get("unit"))
    fig, (ax, bx) = plt.subplots(1, 2, layout="constrained", figsize=(14, 6.5))
    ax.hist(res, bins=60, histtype="step", lw=2)
    ax.set_xlabel(f"{name} predicted - true{unit}")
    ax.set_ylabel("events")
    _label(ax, f"bias {with_unit(num(figures['bias']), figures.get('unit'))}\nσ (robust) "
               f"{with_unit(num(figures['sigma']), figures.get('unit'))}")
    bx.hist2d(true, pred, bins=50, cmin=1, norm=mpl.colors.LogNorm())
    lims = [min(true.min(), pred.min()), max(true.max(), pred.max())]
    bx.plot(lims, lims, "k:")
    bx.set_xlabel(f"true {name}{unit}")
    bx.set_ylabel(f"predicted {name}{unit}")
    paths.append(_save(fig, out / f"{name}_residuals.png"))
    if figures["bins"]:  # no bin holds enough events when only a handful are judged
        paths.append(_save(resolution_figure(name, figures), out / f"{name}_resolution.png"))

    if std is not None and "pull_std" in figures:
        fig, (ax, bx) = plt.subplots(1, 2, layout="constrained", figsize=(14, 6.5))
        pull = res / std
        pull = pull[np.isfinite(pull)]
        bins = np.linspace(-5, 5, 51)
        ax.hist(pull, bins=bins, density=True, histtype="step", lw=2, label="pulls")
        x = np.linspace(-5, 5, 200)
        ax.plot(x, np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi), "k:", label="N(0, 1)")
        ax.set_xlabel("(predicted - true) / σ")
        ax.set_ylabel("density")
        ax.legend()
        out_of_range = figures["outliers"]
        _label(ax, f"mean {figures['pull_mean']:.3f}\nstd {figures['pull_std']:.3f}\n|pull| > {OUTLIER_CUT:g}: "
                   f"{out_of_range['count']:,} ({100 * out_of_range['fraction']:.2f}%)")
        from scipy.special import erf

        curve = figures["coverage_curve"]
        z = np.array(curve["z"])
        bx.plot(z, erf(z / np.sqrt(2)), "k:", label="Gaussian expectation")
        bx.plot(z, curve["observed"], label="observed")
        bx.set_xlabel("interval half-width in σ")
        bx.set_ylabel("coverage")
        bx.legend(loc="lower right")
        _label(bx, f"±1σ {figures['coverage_1sigma']:.3f}\n±2σ {figures['coverage_2sigma']:.3f}")
        paths.append(_save(fig, out / f"{name}_pulls.png"))
    return paths



def _layer_sum(images: np.ndarray) -> np.ndarray:
    """A 2D picture per event: layers summed (images (N, C, H, W)) or the image itself."""
    if images.ndim == 4:
        return images.sum(1)
    if images.ndim == 3:
        return images
    return images.reshape(len(images), 1, -1)


def plot_denoising_panels(noisy: np.ndarray, denoised: np.ndarray, truth: np.ndarray, path: Path, *,
                          events: int = 4) -> Path:
    """Example events, one per row: noisy input, denoised output and truth (layers summed, log colour)."""
    from matplotlib.colors import LogNorm

    n = min(events, len(truth))
    order = np.argsort(truth.reshape(len(truth), -1).sum(1))
    picks = order[np.linspace(0, len(order) - 1, n).astype(int)] if n else []  # low to high energy
    fig, axes = plt.subplots(max(n, 1), 3, figsize=(10, 3.2 * max(n, 1)), squeeze=False)
    for row, idx in enumerate(picks):
        pictures = [_layer_sum(x[idx:idx + 1])[0] for x in (noisy, denoised, truth)]
        top = max(float(p.max()) for p in pictures)
        norm = LogNorm(vmin=max(top * 1e-4, 1e-3), vmax=max(top, 2e-3))
        for col, (title, pic) in enumerate(zip(("noisy", "denoised", "truth"), pictures, strict=True)):
            ax = axes[row, col]
            shown = ax.imshow(np.clip(pic, norm.vmin, None), origin="lower", norm=norm, cmap="viridis")
            ax.set_title(f"{title}: {pic.sum():.1f}", fontsize=11)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(shown, ax=axes[row].tolist(), fraction=0.02)
    return _save(fig, path)


def plot_energy_ratio(noisy: np.ndarray, denoised: np.ndarray, truth: np.ndarray, path: Path) -> Path:
    """Histograms of the total energy over the true total energy, noisy input vs denoised output."""
    e_true = truth.reshape(len(truth), -1).sum(1)
    ok = e_true > 0
    fig, ax = plt.subplots(figsize=(7, 5))
    bins = np.linspace(0.0, 2.0, 81)
    for label, images in (("noisy input", noisy), ("denoised", denoised)):
        ratio = images.reshape(len(images), -1).sum(1)[ok] / e_true[ok]
        ax.hist(np.clip(ratio, bins[0], bins[-1]), bins=bins, histtype="step", linewidth=1.5,
                label=f"{label}: median {np.median(ratio):.3f}")
    ax.axvline(1.0, color="grey", linestyle=":")
    ax.set_xlabel(r"$E_{\mathrm{sum}} / E_{\mathrm{sum,\,true}}$")
    ax.set_ylabel("events")
    ax.legend(fontsize=10)
    return _save(fig, path)


FEATURE_LABELS = {"e_ratio": r"$E_{\mathrm{dep}} / E_{\mathrm{inc}}$", "e_total": r"$E_{\mathrm{dep}}$",
                  "e_max": "hottest cell energy", "e_layer": "energy in layer {l}",
                  "centroid_x": "centroid x, layer {l} [cells]", "centroid_y": "centroid y, layer {l} [cells]",
                  "width_x": "width x, layer {l} [cells]", "width_y": "width y, layer {l} [cells]",
                  "sparsity": "non-zero cell fraction, layer {l}"}


def _feature_label(name: str) -> str:
    base = name.rstrip("0123456789")
    layer = name[len(base):]
    return FEATURE_LABELS.get(base, name).replace("{l}", layer)


def plot_feature_histograms(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
                            separation: Mapping[str, float], out: Path, *, bins: int = 50,
                            labels: tuple[str, str] = ("reference", "candidate")) -> list[Path]:
    """Overlaid unit-normalised histograms of each high-level feature with a candidate/reference ratio panel.

    One figure per feature group (``features_energy.png``, ``features_centroid.png``, ...), one panel per
    feature, the separation power in each panel.
    """
    from physnn.evaluation.fastsim import feature_bins, normalized_histogram

    groups: dict[str, list[str]] = {}
    for name in reference:
        base = name.rstrip("0123456789")
        group = ("energy" if base in ("e_ratio", "e_total", "e_layer", "e_max") else
                 base.split("_")[0] if base.startswith(("centroid", "width")) else base)
        groups.setdefault(group, []).append(name)
    paths = []
    for group, names in groups.items():
        cols = min(len(names), 3)
        rows = -(-len(names) // cols)
        fig = plt.figure(figsize=(5.2 * cols, 5.2 * rows))
        grid = fig.add_gridspec(2 * rows, cols, height_ratios=[3, 1] * rows, hspace=0.08, wspace=0.3)
        for i, name in enumerate(names):
            r, c = divmod(i, cols)
            ax, rx = fig.add_subplot(grid[2 * r, c]), fig.add_subplot(grid[2 * r + 1, c])
            edges = feature_bins(reference[name], candidate[name], bins)
            h_ref, h_cand = normalized_histogram(reference[name], edges), normalized_histogram(candidate[name], edges)
            ax.stairs(h_ref, edges, label=labels[0], color="black", linewidth=1.5)
            ax.stairs(h_cand, edges, label=labels[1], color="tab:red", linewidth=1.5)
            ax.set_ylabel("fraction", fontsize=11)
            ax.tick_params(labelbottom=False, labelsize=9)
            ax.text(0.97, 0.95, f"S = {separation.get(name, float('nan')):.4f}", transform=ax.transAxes,
                    ha="right", va="top", fontsize=10)
            if i == 0:
                ax.legend(fontsize=9, loc="upper left")
            ratio = np.divide(h_cand, h_ref, out=np.full_like(h_ref, np.nan), where=h_ref > 0)
            rx.stairs(ratio, edges, color="tab:red", linewidth=1.2)
            rx.axhline(1.0, color="grey", linestyle=":")
            rx.set_ylim(0.0, 2.0)
            rx.set_ylabel("ratio", fontsize=10)
            rx.set_xlabel(_feature_label(name), fontsize=11)
            rx.tick_params(labelsize=9)
        paths.append(_save(fig, out / f"features_{group}.png"))
    return paths


def plot_generated_samples(model: Any, task: Any, path: Path, *, device: Any = "cpu", seed: int = 0,
                           title: str = "") -> Path:
    """Generated showers at a few fixed conditions: one row per (class, energy), one column per layer."""
    import torch
    from matplotlib.colors import LogNorm

    rng = np.random.default_rng(seed)
    classes = task.classes if task.classes is not None else [None]
    rows = []
    for value in classes[:3]:
        for level in (0.1, 0.5, 0.9):  # quantiles of the training energy distribution
            fixed = {}
            if task.incident is not None:
                name = task.scalars[task.incident]
                fixed[name] = float(np.interp(level, np.linspace(0, 1, len(task.quantiles[name])),
                                              task.quantiles[name]))
            raw = task.sample_conditions(1, rng, fixed=fixed, classes=None if value is None else [value])
            rows.append((value, fixed, raw))
    cond = torch.cat([task.conditions_tensor(raw, device) for _, _, raw in rows])
    incident = torch.cat([task.incident_of(raw, device) for _, _, raw in rows])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        noise = torch.Generator().manual_seed(seed)
        z = torch.randn(len(cond), model.latent_dim, generator=noise).to(device)
        images = task.to_phys(task.generate(model, z, cond, incident, generator=noise)).cpu().numpy()
    model.train(was_training)
    if images.ndim == 3:
        images = images[:, None]
    n_layers = images.shape[1]
    fig, axes = plt.subplots(len(rows), n_layers, figsize=(2.6 * n_layers + 1.5, 2.4 * len(rows)), squeeze=False,
                             layout="constrained")
    for r, (value, fixed, _) in enumerate(rows):
        top = max(float(images[r].max()), 2e-3)
        norm = LogNorm(vmin=max(top * 1e-4, 1e-3), vmax=top)
        for layer in range(n_layers):
            ax = axes[r, layer]
            shown = ax.imshow(np.clip(images[r, layer], norm.vmin, None), origin="lower", norm=norm, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"layer {layer}", fontsize=10)
        text = ", ".join([*(f"{k}={v:.3g}" for k, v in fixed.items()), *([f"{task.label}={value}"] if value else [])])
        axes[r, 0].set_ylabel(text, fontsize=8)
        fig.colorbar(shown, ax=axes[r].tolist(), fraction=0.02)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)
