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
- a **classifier test** (:func:`classifier_test`): a small network is
  trained to tell reference from candidate showers, on the cells (low
  level: cell energies over the incident energy, and ``log E_inc``) and on
  the high-level features, with early stopping on a validation split; its
  ROC AUC on a held-out test split is reported: 0.5 means the network cannot
  tell the samples apart, 1 that it always can.

Both files are read chunk by chunk; the classifier uses at most
``max_events`` showers of each.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physnn.errors import ConfigError, InputFileError
from physnn.evaluation.conditions import Match, condition_branches, condition_report
from physnn.evaluation.registry import register_evaluator
from physnn.io.metadata import declared_image_unit, unit_of
from physnn.physics.showers import high_level_features, separation_power


# -- classifier test ------------------------------------------------------------
def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    return [((x - mean) / std).astype(np.float32) for x in (train, *others)]


def classifier_test(reference: np.ndarray, candidate: np.ndarray, *, seed: int = 0, hidden: Sequence[int] = (256, 256),
                    dropout: float = 0.2, epochs: int = 60, patience: int = 6, batch_size: int = 256,
                    lr: float = 1e-3, n_boot: int = 200) -> dict[str, Any]:
    """Train a network to tell candidate (1) from reference (0) events; its AUC on a held-out split.

    The events of each sample are split 60/20/20 into train, validation
    (early stopping on its loss) and test. Inputs are standardised with the
    training split's mean and width.

    Parameters
    ----------
    reference, candidate
        ``(N, features)`` inputs of each sample (NaNs are set to 0).
    seed
        Seeds the split, the weights and the batches.

    Returns
    -------
    dict
        ``auc`` on the test split with its bootstrap 68 % interval
        (``auc_low``, ``auc_high``), ``epochs`` trained, ``events``
        (train/val/test per sample), ``inputs``.
    """
    import torch
    from torch import nn

    from physnn.evaluation.metrics import roc_with_band

    n = min(len(reference), len(candidate))
    if n < 10:
        msg = f"the classifier test needs at least 10 events of each sample, got {len(reference)} and {len(candidate)}"
        raise ConfigError(msg)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    labels: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label, sample in ((0, reference), (1, candidate)):
        idx = rng.permutation(len(sample))[:n]
        cuts = [int(0.6 * n), int(0.8 * n)]
        for name, part in zip(("train", "val", "test"), np.split(idx, cuts), strict=True):
            parts[name].append(np.nan_to_num(np.asarray(sample[part], dtype=np.float64)))
            labels[name].append(np.full(len(part), label, dtype=np.float32))
    x = {k: np.concatenate(v) for k, v in parts.items()}
    y = {k: torch.from_numpy(np.concatenate(v)) for k, v in labels.items()}
    x_train, x_val, x_test = (torch.from_numpy(a) for a in _standardize(x["train"], x["val"], x["test"]))

    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = x_train.shape[1]
    for h in hidden:
        layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        width = h
    net = nn.Sequential(*layers, nn.Linear(width, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    best, best_state, waited, trained = float("inf"), None, 0, 0
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=gen)
        for lo in range(0, len(order), batch_size):
            batch = order[lo:lo + batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x_train[batch])[:, 0], y["train"][batch]).backward()
            opt.step()
        trained += 1
        net.eval()
        with torch.no_grad():
            val = float(loss_fn(net(x_val)[:, 0], y["val"]))
        if val < best - 1e-4:
            best, waited = val, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    with torch.no_grad():
        score = net(x_test)[:, 0].numpy()
    roc = roc_with_band(y["test"].numpy(), score, n_boot=n_boot, seed=seed)
    return {"auc": roc["auc"], "auc_low": roc.get("auc_low"), "auc_high": roc.get("auc_high"), "epochs": trained,
            "events": {k: len(v) // 2 for k, v in x.items()}, "inputs": int(x_train.shape[1])}


# -- reading samples ------------------------------------------------------------
@dataclass
class ShowerSample:
    """What :func:`read_sample` keeps of one file: all high-level features, some cells, the metadata.

    ``conditions`` holds the particle type, incident energy and impact point
    of every shower read (those the file has); ``kept`` (None: all) marks the
    showers that the features, cells and ``incident`` are of.
    """

    path: str
    tree: str
    image: str
    shape: tuple[int, ...]
    features: dict[str, np.ndarray]
    cells: np.ndarray
    incident: np.ndarray | None
    meta: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, np.ndarray] = field(default_factory=dict)
    kept: np.ndarray | None = None

    @property
    def events(self) -> int:
        return len(next(iter(self.features.values())))


def _image_branch(path: str, tree: Any, name: str | None) -> str:
    from physnn.io.read import branch_names, is_histogram_branch

    names = branch_names(tree)
    if name is not None:
        if name not in names:
            msg = f"{path}: no image branch {name!r} in the tree (branches: {', '.join(names)})"
            raise InputFileError(msg)
        return name
    for key in names:
        if is_histogram_branch(tree, key):
            return key
        interp = getattr(tree[key], "interpretation", None)
        if interp is not None:  # a TTree branch: float[H][W] or float[layers][H][W]
            if len(getattr(interp, "inner_shape", ())) >= 2:
                return key
            continue
        try:  # an RNTuple field: probe one entry
            probe = tree.arrays([key], entry_stop=1, library="np")[key]
        except Exception:
            continue
        if getattr(probe, "ndim", 0) >= 3:
            return key
    msg = f"{path}: no image branch found (a float[H][W] or float[layers][H][W] branch); name it with --image"
    raise InputFileError(msg)


@dataclass(frozen=True)
class SampleLayout:
    """Where a file keeps its showers: tree, image branch, incident-energy branch, condition branches."""

    path: str
    tree: str
    image: str
    energy: str | None
    conditions: tuple[str, ...]

    @property
    def condition_keys(self) -> list[str]:
        """The keys of :attr:`ShowerSample.conditions` (the incident energy as ``energy``)."""
        return (["energy"] if self.energy else []) + list(self.conditions)


def sample_layout(path: str | os.PathLike, *, tree: str | None = None, image: str | None = None,
                  energy: str | None = "auto") -> SampleLayout:
    """Find the tree and branches :func:`read_sample` reads (arguments as there), without reading events."""
    from physnn.io.read import branch_names, open_tree

    path = os.fspath(path)
    handle = open_tree(path, tree)
    image = _image_branch(path, handle, image)
    names = branch_names(handle)
    if energy == "auto":
        energy = "energy" if "energy" in names else None
    elif energy is not None and energy not in names:
        msg = f"{path}:{handle.name}: no incident-energy branch {energy!r} (branches: {', '.join(names)})"
        raise InputFileError(msg)
    conditions = [b for b in condition_branches(handle, names) if b not in (image, energy)]
    return SampleLayout(path, handle.name, image, energy, tuple(conditions))


def read_sample(path: str | os.PathLike, *, tree: str | None = None, image: str | None = None,
                energy: str | None = "auto", max_cells: int = 20000, step_size: str = "100 MB",
                keep: Match | None = None) -> ShowerSample:
    """Read a showers file chunk by chunk into high-level features (all events) and cells (the first ``max_cells``).

    Parameters
    ----------
    path
        A ROOT file with a TTree or RNTuple of showers.
    tree
        The tree; optional when the file holds one.
    image
        The image branch; by default the first branch holding 2D or 3D
        arrays (or TH2 histograms).
    energy
        The incident-energy branch; ``auto``: ``energy`` when present; None:
        no incident energy (features use the total deposited energy).
    keep
        Keep only the showers within these conditions (``compare --match``);
        the conditions of all showers read are kept, with the mask as ``kept``.
    """
    from physnn.config import DataConfig
    from physnn.data.dataset import iter_raw

    layout = sample_layout(path, tree=tree, image=image, energy=energy)
    path, tree_name, energy = layout.path, layout.tree, layout.energy
    cfg = DataConfig(files=[path], tree=tree_name, images={"branches": [layout.image]},
                     scalars=([energy] if energy else []) + list(layout.conditions), step_size=step_size)
    parts: dict[str, list[Any]] = {"feats": [], "cells": [], "incident": [], "conditions": [], "kept": []}
    kept = 0
    shape: tuple[int, ...] = ()
    for raw in iter_raw(cfg, with_truth=False):
        assert raw.image is not None
        shape = tuple(raw.image.shape[1:])
        cond = {k: raw.scalars[:, i] for i, k in enumerate(layout.condition_keys)} if cfg.scalars else {}
        if energy and not (cond["energy"] > 0).all():
            msg = f"{path}:{tree_name}: branch {energy!r} must hold positive incident energies"
            raise InputFileError(msg)
        mask = keep(cond) if keep is not None else np.ones(len(raw.image), dtype=bool)
        images = raw.image[mask] if keep is not None else raw.image
        e_inc = cond["energy"][mask].astype(np.float64) if energy else None
        parts["conditions"].append(cond)
        parts["kept"].append(mask)
        if len(images) == 0:
            continue
        parts["feats"].append(high_level_features(images, e_inc))
        if e_inc is not None:
            parts["incident"].append(e_inc)
        if kept < max_cells:
            take = images[: max_cells - kept]
            parts["cells"].append(take.reshape(len(take), -1).astype(np.float32))
            kept += len(take)
    feats, read = parts["feats"], sum(len(m) for m in parts["kept"])
    if read == 0:
        msg = f"{path}:{tree_name}: no showers to compare"
        raise InputFileError(msg)
    if keep is not None and sum(int(m.sum()) for m in parts["kept"]) == 0:
        raise keep.nothing_kept(path, read)
    return ShowerSample(path=path, tree=tree_name, image=layout.image, shape=shape,
                        features={k: np.concatenate([f[k] for f in feats]) for k in feats[0]},
                        cells=np.concatenate(parts["cells"]),
                        incident=np.concatenate(parts["incident"]) if parts["incident"] else None,
                        meta=read_meta(path),
                        conditions={k: np.concatenate([c[k] for c in parts["conditions"]])
                                    for k in parts["conditions"][0]},
                        kept=np.concatenate(parts["kept"]) if keep is not None else None)


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``physnn_meta`` JSON of a file (empty when absent or not JSON)."""
    from physnn.io.metadata import read_metadata

    return read_metadata(path)


def _low_level(sample: ShowerSample) -> np.ndarray:
    """Cells over the incident energy (or over the event's total), with ``log E_inc``: the CaloChallenge inputs."""
    cells = sample.cells.astype(np.float64)
    n = len(cells)
    if sample.incident is None:
        norm = np.maximum(cells.sum(1, keepdims=True), 1e-12)
        return cells / norm
    e_inc = sample.incident[:n, None]
    return np.concatenate([cells / e_inc, np.log(e_inc)], axis=1)


def _high_level(sample: ShowerSample) -> np.ndarray:
    keys = sorted(sample.features)
    columns = [sample.features[k] for k in keys]
    if sample.incident is not None:
        columns.append(np.log(sample.incident))
    return np.nan_to_num(np.stack(columns, axis=1))


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

    def figures(self) -> dict[str, Any]:
        """Everything as plain types (the content of ``metrics.json``)."""
        first = {} if self.conditions is None else {"conditions": self.conditions}
        return first | {"separation_power": self.separation,
                "separation_power_mean": float(np.mean(list(self.separation.values()))),
                "classifier": self.classifier, "timing": self.timing, "events": self.events}


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
            plots: bool = True, match: bool = False) -> ComparisonResult:
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
        Showers per sample for the classifier test.
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

    Examples
    --------
    >>> result = physnn.compare("geant.root", "fastsim.root", out="report")  # doctest: +SKIP
    >>> result.classifier["low"]["auc"]  # doctest: +SKIP
    0.71
    """
    unknown = [c for c in classifier if c not in ("low", "high")]
    if unknown:
        msg = f"--classifier {','.join(unknown)}: expected low, high or none"
        raise ConfigError(msg)
    from physnn.evaluation.report import report_dir

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
    conditions = condition_report(ref.conditions, cand.conditions, ref.kept, keep)
    result = compare_samples(ref, cand, out=report_dir(out), classifier=classifier, max_events=max_events,
                             bins=bins, seed=seed, plots=plots, conditions=conditions)
    result.timing["compare_seconds"] = round(time.perf_counter() - start, 2)
    return result


def compare_samples(ref: ShowerSample, cand: ShowerSample, *, out: Path | None = None,
                    classifier: Sequence[str] = ("low", "high"), max_events: int = 20000, bins: int = 50,
                    seed: int = 0, plots: bool = True, conditions: dict[str, Any] | None = None,
                    run_dir: Path | None = None) -> ComparisonResult:
    """:func:`compare` on samples already in memory (see :func:`read_sample`); ``conditions`` goes in the report,
    ``run_dir`` (a GAN's run folder) in its page."""
    separation = {k: separation_power(ref.features[k], cand.features[k], bins) for k in ref.features}
    tests: dict[str, dict[str, Any]] = {}
    for kind in classifier:
        inputs = (_low_level, _high_level)[kind == "high"]
        tests[kind] = classifier_test(inputs(ref)[:max_events], inputs(cand)[:max_events], seed=seed)
    result = ComparisonResult(separation=separation, classifier=tests, timing=_timing(ref, cand),
                              events={"reference": ref.events, "candidate": cand.events}, out=out,
                              conditions=conditions)
    if out is not None:
        result.files = _write_report(result, ref, cand, out, bins, plots, run_dir)
    return result


def evaluate_generator(run: str | os.PathLike | Any, *, out: str | os.PathLike | None = None, split: str = "test",
                       classifier: Sequence[str] = ("low", "high"), max_events: int = 20000, bins: int = 50,
                       seed: int = 0, batch_size: int = 2048, device: str = "auto",
                       plots: bool = True) -> ComparisonResult:
    """Judge a GAN run on held-out showers: one generated shower per event of ``split``, same conditions.

    The reference is the ``split`` (default ``test``) of the run's training
    files; the candidate is generated by the run with each reference event's
    conditions (energy, impact point, particle type) and seeded noise, so any
    difference is the GAN's. Then as :func:`compare`.
    """
    import torch

    from physnn.data.dataset import finalize, iter_raw
    from physnn.data.split import SPLITS
    from physnn.evaluation.report import report_dir
    from physnn.inference.predict import LoadedRun, load_run

    loaded = run if isinstance(run, LoadedRun) else load_run(run, device=device)
    task = loaded.task
    if task.kind != "generation":
        msg = f"{loaded.checkpoint}: not a GAN run (task {task.kind}); this evaluation needs task.kind generation"
        raise ConfigError(msg)
    if split != "all" and split not in SPLITS:
        msg = f"--split {split!r}: expected all, {', '.join(SPLITS)}"
        raise ConfigError(msg)
    outdir = report_dir(out)
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
    unit = declared_image_unit(cfg.images.unit if cfg.images else None, cfg.files)
    ref = ShowerSample(where, cfg.tree or "", task.layout["image"], shape, join(parts["real"]),
                       np.concatenate(parts["real_cells"]), incident, {"units": {"image": unit}} if unit else {})
    cand = ShowerSample(f"{loaded.checkpoint} (generated)", cfg.tree or "", task.layout["image"], shape,
                        join(parts["fake"]), np.concatenate(parts["fake_cells"]), incident,
                        {"generator": "physnn GAN (network only)", "showers_per_s": n / max(forward, 1e-12)})
    return compare_samples(ref, cand, out=outdir, classifier=classifier, max_events=max_events, bins=bins,
                           seed=seed, plots=plots, run_dir=Path(loaded.checkpoint).parent)


@register_evaluator("generation")
def _judge_generator(run: Path, *, out: str | os.PathLike | None, split: str, seed: int, mc_samples: int,
                     plots: bool) -> ComparisonResult:
    """:func:`evaluate_generator` as ``physnn evaluate RUN`` calls it (``auto``: the test split; no MC dropout)."""
    if mc_samples:
        msg = "--mc-samples: a GAN run is judged without MC dropout"
        raise ConfigError(msg)
    return evaluate_generator(run, out=out, split="test" if split == "auto" else split, seed=seed, plots=plots)


def _write_report(result: ComparisonResult, ref: ShowerSample, cand: ShowerSample, outdir: Path, bins: int,
                  plots: bool, run_dir: Path | None = None) -> list[Path]:
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
                                         unit=unit_of("image", ref.meta, cand.meta))
        from physnn.evaluation.html_report import comparison_page

        files.append(comparison_page(outdir, figures, files, {"reference": ref.meta, "candidate": cand.meta}, run_dir))
    return files
