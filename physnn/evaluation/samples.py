"""Shower samples for a comparison: read chunk by chunk into high-level features, some cells and metadata."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from physnn.errors import InputFileError
from physnn.evaluation.conditions import PARTICLE_BRANCHES, Match, condition_branches
from physnn.physics.showers import high_level_features


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

    def particle_types(self) -> tuple[str, np.ndarray] | None:
        """The particle-type branch (``pdgid``, else ``label``) and its value per shower of :attr:`features`;
        None when the sample has none."""
        branch = next((b for b in PARTICLE_BRANCHES if b in self.conditions), None)
        if branch is None:
            return None
        values = np.asarray(self.conditions[branch])
        return branch, values if self.kept is None else values[self.kept]


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
