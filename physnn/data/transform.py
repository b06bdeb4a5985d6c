"""The fitted preprocessing: sequence length, class map and standardisation.

A :class:`Transform` is fitted on the training split only (in one pass, or
chunk by chunk when streaming) and then applied unchanged to validation,
test and prediction data. Its :meth:`Transform.state` is made of plain lists,
numbers and strings so that it can be stored inside a checkpoint that loads
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from physnn.config import DataConfig
from physnn.data.convert import RawChunk
from physnn.data.reservoir import Reservoir
from physnn.data.targets import forward, target_transforms
from physnn.errors import DataError

ROBUST_SAMPLE = 200_000
#: more distinct label values than this, and no ``classes:``, is almost surely not a class label
MAX_CLASSES = 100


@dataclass
class Transform:
    """Everything needed to turn raw blocks into the tensors a model saw in training.

    Attributes
    ----------
    max_length
        Padding length of sequences.
    length_info
        How ``max_length`` was chosen: quantile, fraction of clipped events.
    classes
        Label values in class-index order.
    center, scale
        Per-feature offsets and divisors for ``image`` (per channel),
        ``sequence`` (per feature) and ``scalars`` (per column).
    """

    max_length: int | None = None
    length_info: dict[str, Any] = field(default_factory=dict)
    classes: list[Any] | None = None
    center: dict[str, list[float]] = field(default_factory=dict)
    scale: dict[str, list[float]] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        """A plain-types dict (safe for ``weights_only`` checkpoints and JSON)."""
        return {"max_length": self.max_length, "length_info": dict(self.length_info),
                "classes": None if self.classes is None else list(self.classes),
                "center": {k: list(v) for k, v in self.center.items()},
                "scale": {k: list(v) for k, v in self.scale.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Transform:
        """Rebuild from :meth:`state`."""
        return cls(max_length=state["max_length"], length_info=state.get("length_info", {}),
                   classes=state["classes"], center=state["center"], scale=state["scale"])

    def encode_labels(self, values: np.ndarray, where: str, branch: str, *, unknown: int | None = None) -> np.ndarray:
        """Map raw label values to class indices (int64).

        Values outside the classes are an error, or get the index ``unknown``
        when one is given (e.g. -1 for predictions on events of other classes).
        """
        assert self.classes is not None
        lookup = {v: i for i, v in enumerate(self.classes)}
        uniq, inverse = np.unique(values, return_inverse=True)
        if unknown is not None:
            codes = np.array([lookup.get(u.item(), unknown) for u in uniq], dtype=np.int64)
            return codes[inverse.reshape(-1)]
        missing = [u.item() for u in uniq if u.item() not in lookup]
        if missing:
            msg = (f"{where}: label branch {branch!r} has values {missing[:5]} that are not among "
                   f"the classes {self.classes}")
            raise DataError(msg)
        return np.array([lookup[u.item()] for u in uniq], dtype=np.int64)[inverse.reshape(-1)]

    def standardize(self, name: str, block: np.ndarray, axis: int) -> np.ndarray:
        """Apply ``(x - center) / scale`` in place along ``axis`` of ``block``."""
        if name not in self.center:
            return block
        shape = [1] * block.ndim
        shape[axis] = -1
        block -= np.asarray(self.center[name], dtype=block.dtype).reshape(shape)
        block /= np.asarray(self.scale[name], dtype=block.dtype).reshape(shape)
        return block


class _Moments:
    """Streaming per-feature statistics: exact mean/std, or median/IQR from a seeded uniform sample of
    ``ROBUST_SAMPLE`` rows (:class:`~physnn.data.reservoir.Reservoir`: every row of the training split has
    the same chance to be in it, whatever the order of the files)."""

    def __init__(self, method: str, seed: int) -> None:
        self.method = method
        self.n = 0.0
        self.sum: np.ndarray | None = None
        self.sumsq: np.ndarray | None = None
        self.rows: Reservoir[np.ndarray] = Reservoir(ROBUST_SAMPLE, np.random.default_rng(seed),
                                                     lambda rows, idx: rows[idx], np.concatenate)

    def add(self, rows: np.ndarray) -> None:
        """Add rows of shape (n, F)."""
        if rows.size == 0:
            return
        rows64 = rows.astype(np.float64)
        if self.sum is None:
            self.sum = np.zeros(rows.shape[1])
            self.sumsq = np.zeros(rows.shape[1])
        self.n += rows.shape[0]
        self.sum += rows64.sum(axis=0)
        self.sumsq += (rows64**2).sum(axis=0)
        if self.method == "robust":
            self.rows.add(rows, rows.shape[0])

    def result(self, n_features: int) -> tuple[list[float], list[float]]:
        if self.n == 0 or self.sum is None or self.sumsq is None:
            return [0.0] * n_features, [1.0] * n_features
        if self.method == "robust" and self.rows.sample is not None:
            q25, q50, q75 = np.percentile(self.rows.sample, [25, 50, 75], axis=0)
            center, scale = q50, q75 - q25
        else:
            center = self.sum / self.n
            scale = np.sqrt(np.maximum(self.sumsq / self.n - center**2, 0.0))
        scale = np.where(scale > 1e-12, scale, 1.0)  # constant features stay as they are
        return [float(c) for c in center], [float(s) for s in scale]


class TransformFitter:
    """Accumulate training-split statistics chunk by chunk, then build a :class:`Transform`.

    Parameters
    ----------
    cfg
        The data config (standardisation method, excluded features, classes,
        sequence length settings).
    """

    def __init__(self, cfg: DataConfig) -> None:
        self.cfg = cfg
        method = cfg.standardize.method
        self.moments = {k: _Moments(method, cfg.split.seed) for k in ("image", "sequence", "scalars")}
        self.lengths: list[np.ndarray] = []
        self.label_counts: Counter[Any] = Counter()
        self.targets = _Moments("standard", cfg.split.seed)
        self.n_events = 0

    @property
    def label_values(self) -> set[Any]:
        """The label values seen in the training split."""
        return set(self.label_counts)

    def add(self, raw: RawChunk) -> None:
        """Add the training events of a chunk."""
        self.n_events += len(raw)
        if raw.labels is not None:
            values, counts = np.unique(raw.labels, return_counts=True)
            self.label_counts.update({v.item(): int(c) for v, c in zip(values, counts, strict=True)})
        if raw.targets is not None and len(raw):
            self.targets.add(forward(raw.targets, target_transforms(self.cfg), ", ".join(self.cfg.files),
                                     self.cfg.targets, baseline=raw.baseline))
        if self.cfg.standardize.method == "none":
            pass
        else:
            if raw.image is not None and self.cfg.standardize.images:
                per_channel = np.moveaxis(raw.image, 1, -1).reshape(-1, raw.image.shape[1])
                self.moments["image"].add(per_channel)
            if raw.seq_content is not None:  # the features only: the kinematics after them stay in physical units
                n_features = len(self.cfg.sequence.features) if self.cfg.sequence else raw.seq_content.shape[1]
                self.moments["sequence"].add(raw.seq_content[:, :n_features])
            if raw.scalars is not None and raw.scalars.shape[1]:
                self.moments["scalars"].add(raw.scalars)
        if raw.seq_counts is not None:
            self.lengths.append(raw.seq_counts)

    def _classes(self) -> list[Any] | None:
        cfg = self.cfg
        if cfg.label is None:
            return None
        if cfg.classes is not None:  # values in index order (of a mapping value -> index or value -> name)
            return self._check_declared(cfg.class_values() or [])
        # the classes are the label values that survive the selection: a value the selection removed is no class
        values = sorted(self.label_values, key=lambda v: (isinstance(v, str), v))
        if len(values) > MAX_CLASSES:
            msg = (f"label {cfg.label!r}: {len(values):,} distinct values in the training split (e.g. "
                   f"{', '.join(map(repr, values[:3]))}, ...), more than {MAX_CLASSES} classes; if it is a "
                   f"quantity to predict, use targets: [{cfg.label}], else declare the classes: [...]")
            raise DataError(msg)
        return values

    def _check_declared(self, classes: list[Any]) -> list[Any]:
        """Declared classes, each of which must have training events."""
        empty = [c for c in classes if self.label_counts.get(c, 0) == 0]
        if empty and self.n_events:
            cut = f" after the selection {self.cfg.selection!r}" if self.cfg.selection else ""
            msg = (f"classes: {', '.join(map(repr, empty))} of label {self.cfg.label!r} "
                   f"{'has' if len(empty) == 1 else 'have'} no training event{cut}; remove "
                   f"{'it' if len(empty) == 1 else 'them'} from classes or fix the selection")
            raise DataError(msg)
        return classes

    def summary(self) -> dict[str, Any]:
        """What the task needs of the whole training split, exactly: the events per label value and the mean
        and standard deviation of each (transformed) target (:mod:`physnn.data.targets`)."""
        out: dict[str, Any] = {"events": self.n_events,
                               "label_counts": [[k, n] for k, n in sorted(self.label_counts.items(),
                                                                          key=lambda kv: (isinstance(kv[0], str),
                                                                                          kv[0]))]}
        if self.targets.sum is not None:
            out["target_center"], out["target_scale"] = self.targets.result(len(self.targets.sum))
        return out

    def result(self) -> Transform:
        """The fitted transform."""
        cfg = self.cfg
        out = Transform(classes=self._classes())
        if cfg.sequence is not None:
            lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)
            if cfg.sequence.max_length is not None:
                out.max_length = cfg.sequence.max_length
                out.length_info = {"source": "config"}
            else:
                q = cfg.sequence.length_quantile
                out.max_length = max(math.ceil(float(np.quantile(lengths, q))), 1) if lengths.size else 1
                out.length_info = {"source": f"quantile {q:g} of the training lengths"}
            if lengths.size:
                out.length_info.update({
                    "median": float(np.median(lengths)), "max": int(lengths.max()),
                    "clipped_fraction": float(np.mean(lengths > out.max_length)),
                })
        excluded = set(cfg.standardize.exclude)
        blocks = {"image": None, "sequence": cfg.sequence.features if cfg.sequence else None,
                  "scalars": cfg.scalars}
        for key, names in blocks.items():
            mom = self.moments[key]
            if mom.sum is None:
                continue
            center, scale = mom.result(len(mom.sum))
            if names is not None:
                for j, name in enumerate(names):
                    if name in excluded:
                        center[j], scale[j] = 0.0, 1.0
            out.center[key], out.scale[key] = center, scale
        return out
