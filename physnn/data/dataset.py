"""From a data config to torch tensors: in memory or streamed in chunks.

The data flow is ``ROOT -> awkward (physnn.io.read) -> numpy blocks
(physnn.data.convert) -> fitted transform (physnn.data.transform) -> tensors``.

- :func:`load` reads everything into memory (numpy arrays become tensors
  without a copy), fits the transform on the training split and returns the
  three splits.
- :func:`stream` reads chunk by chunk with bounded memory and yields the
  events of one split; :func:`fit` fits the transform on the training split
  in one streaming pass.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from physnn.config import DataConfig, load_config
from physnn.data.convert import (
    RawChunk,
    apply_defines,
    as_numpy,
    image_block,
    is_jagged,
    label_values,
    needed_branches,
    nonfinite_per_event,
    pad_sequences,
    scalar_block,
    sequence_block,
)
from physnn.data.split import SPLITS, TRAIN, UNKNOWN, assign_split
from physnn.data.targets import bad_baselines, baseline_block, baseline_names
from physnn.data.transform import Transform, TransformFitter
from physnn.errors import DataError
from physnn.io.read import Chunk, plan_chunks, read_chunk
from physnn.io.selection import Selection

ConfigLike = DataConfig | Mapping[str, Any] | str | os.PathLike


#: The batch entries that are truth, never model inputs.
TRUTH = ("label", "target", "weight")


class TensorData(torch.utils.data.Dataset):
    """Tensors of a set of events, ready for a model.

    Attributes
    ----------
    inputs
        ``image`` (N, C, ...), ``sequence`` (N, T, F), ``mask`` (N, T) bool,
        ``length`` (N,), ``scalars`` (N, S): whichever the config asked for;
        ``target_image`` (N, C, ...) for autoencoders with ``target_images``.
    label
        Class indices (N,) int64, or None.
    target
        Regression targets (N, K) float32, or None.
    weight
        Per-event weights (N,) float32, or None.
    entry
        Global entry number of each event in the input files (for writing
        predictions aligned with the input).
    observers
        Branches carried through untouched.
    """

    def __init__(self, inputs: dict[str, torch.Tensor], *, label: torch.Tensor | None = None,
                 target: torch.Tensor | None = None, weight: torch.Tensor | None = None,
                 entry: np.ndarray | None = None, observers: dict[str, Any] | None = None) -> None:
        self.inputs = inputs
        self.label = label
        self.target = target
        self.weight = weight
        n = len(next(iter(inputs.values())))
        self.entry = entry if entry is not None else np.arange(n)
        self.observers = observers or {}

    def __len__(self) -> int:
        return int(self.entry.size)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Inputs plus ``label``/``target``/``weight`` where present."""
        out = dict(self.inputs)
        for key in TRUTH:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def __getitem__(self, index: int | slice | np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v[index] for k, v in self.tensors().items()}

    def batches(self, batch_size: int, *, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Yield batches by slicing the tensors (much faster than a DataLoader per sample)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else None
        for lo in range(0, n, batch_size):
            idx = order[lo:lo + batch_size] if order is not None else slice(lo, lo + batch_size)
            yield self[idx]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.tensors().items())
        return f"TensorData({len(self)} events: {shapes})"


@dataclass
class DataBundle:
    """The result of :func:`load`: three splits and the fitted transform."""

    train: TensorData
    val: TensorData
    test: TensorData
    transform: Transform
    config: DataConfig
    info: dict[str, Any] = field(default_factory=dict)
    #: exact label counts and target moments of the training split (when the transform was fitted here)
    summary: dict[str, Any] | None = None


@dataclass
class _Stats:
    read: int = 0
    selected: int = 0
    dropped: int = 0
    dropped_by: dict[str, int] = field(default_factory=dict)
    #: identities of the files read (:attr:`physnn.io.read.Chunk.file_id`), in order
    file_ids: list[str] = field(default_factory=list)


def _nonfinite(raw: RawChunk, cfg: DataConfig, where: str, stats: _Stats) -> RawChunk:
    checks: list[tuple[str, np.ndarray, int]] = []
    if raw.image is not None and cfg.images is not None:
        bad = nonfinite_per_event(raw.image)
        if bad.any():
            count = int((~np.isfinite(raw.image)).sum())
            checks.append((", ".join(cfg.images.branches), bad, count))
    if raw.target_image is not None and cfg.target_images is not None:
        bad = nonfinite_per_event(raw.target_image)
        if bad.any():
            checks.append((", ".join(cfg.target_images.branches), bad, int((~np.isfinite(raw.target_image)).sum())))
    if raw.seq_content is not None and raw.seq_counts is not None and cfg.sequence is not None:
        event_of = np.repeat(np.arange(len(raw)), raw.seq_counts)
        for j, name in enumerate(cfg.sequence.columns()):
            rows = ~np.isfinite(raw.seq_content[:, j])
            if rows.any():
                bad = np.zeros(len(raw), bool)
                bad[event_of[rows]] = True
                checks.append((name, bad, int(rows.sum())))
    for block, names in ((raw.scalars, cfg.scalars), (raw.targets, cfg.targets),
                         (None if raw.weight is None else raw.weight[:, None], [cfg.weight])):
        if block is None:
            continue
        for j, name in enumerate(names):
            bad = ~np.isfinite(block[:, j])
            if bad.any():
                checks.append((str(name), bad, int(bad.sum())))
    checks += _bad_baselines(raw, cfg)
    if not checks:
        return raw
    if cfg.nonfinite == "error":
        name, bad, count = checks[0]
        first = ", ".join(str(e) for e in raw.entry[bad][:3])
        if name.startswith("baseline "):
            msg = (f"{where}: {name} has {count} values <= 0, NaN or inf "
                   f"(global entries {first}...); a baseline must be positive and finite: cut on it or set "
                   "nonfinite: drop")
            raise DataError(msg)
        kind = "defined column" if name in cfg.define else "branch"
        indexed = name in cfg.define and any("[" in e for e in cfg.define.values())
        hint = " (x[i] is NaN in events with fewer than i+1 elements: cut on num(x))" if indexed else ""
        msg = (f"{where}: {kind} {name!r} has {count} NaN/inf values in {int(bad.sum())} events "
               f"(global entries {first}...){hint}; fix the input or set nonfinite: drop")
        raise DataError(msg)
    drop = np.zeros(len(raw), bool)
    for name, bad, _ in checks:
        drop |= bad
        stats.dropped_by[name] = stats.dropped_by.get(name, 0) + int(bad.sum())
    stats.dropped += int(drop.sum())
    return raw.select(~drop)


def _bad_baselines(raw: RawChunk, cfg: DataConfig) -> list[tuple[str, np.ndarray, int]]:
    """The events whose baseline of a target is <= 0, NaN or inf, as the NaN/inf checks list them."""
    if raw.baseline is None:
        return []
    checks = []
    for j, (target, name) in enumerate(cfg.baselines.items()):
        bad = bad_baselines(raw.baseline[:, j:j + 1])
        if name is not None and bad.any():
            checks.append((f"baseline {name!r} of target {target!r}", bad, int(bad.sum())))
    return checks


@dataclass(frozen=True)
class Tagging:
    """What prediction-time reading adds to each event.

    Attributes
    ----------
    known_files
        The training files' identities (:attr:`physnn.io.read.Chunk.file_id`):
        events of other files get the split :data:`~physnn.data.split.UNKNOWN`.
        None: these are the training files.
    flag
        A selection (the training selection) whose pass/fail goes into the
        observer ``in_selection`` instead of dropping events.
    """

    known_files: Collection[str] | None = None
    flag: str | None = None


def event_split(chunk: Chunk, entry: np.ndarray, cfg: DataConfig,
                known_files: Collection[str] | None = None) -> np.ndarray:
    """The split of each event (global ``entry`` numbers) of a chunk: a hash of its file's identity and its
    entry in that file; :data:`~physnn.data.split.UNKNOWN` when ``known_files`` (the training files'
    identities) does not hold the chunk's file."""
    if known_files is not None and chunk.file_id not in known_files:
        return np.full(entry.shape, UNKNOWN, dtype=np.int8)
    return assign_split(entry - chunk.offset, val=cfg.split.val, test=cfg.split.test, seed=cfg.split.seed,
                        file_id=chunk.file_id)


def _build_raw(arrays: Mapping[str, Any], cfg: DataConfig, entry: np.ndarray, split: np.ndarray, where: str,
               with_truth: bool) -> RawChunk:
    raw = RawChunk(entry=entry, split=split)
    if cfg.images is not None:
        raw.image = image_block(arrays, cfg.images, where)
    if cfg.sequence is not None:
        raw.seq_content, raw.seq_counts = sequence_block(arrays, cfg.sequence, where)
    if cfg.scalars:
        raw.scalars = scalar_block(arrays, cfg.scalars, where)
    baselines = baseline_names(cfg)
    if baselines:
        scalar_block(arrays, [b for b in baselines if b], where, role="target's baseline")  # one number per event
        raw.baseline = baseline_block(arrays, baselines, len(entry))
    if with_truth:
        if cfg.label is not None and cfg.label in arrays:
            raw.labels = label_values(arrays, cfg.label, where)
        if cfg.target_images is not None and all(b in arrays for b in cfg.target_images.branches):
            raw.target_image = image_block(arrays, cfg.target_images, where)
        if cfg.targets and all(t in arrays for t in cfg.targets):
            raw.targets = scalar_block(arrays, cfg.targets, where, role="regression target")
        if cfg.weight is not None and cfg.weight in arrays:
            raw.weight = scalar_block(arrays, [cfg.weight], where, role="weight")[:, 0]
    for name in cfg.observers:
        value = arrays[name]
        raw.observers[name] = value if is_jagged(value) else as_numpy(value)
    return raw


def iter_raw(cfg: DataConfig, *, step_size: str | int | None = None, with_truth: bool = True,
             stats: _Stats | None = None, tagging: Tagging | None = None) -> Iterator[RawChunk]:
    """Read the config's files chunk by chunk into :class:`RawChunk` blocks.

    The selection and the NaN/inf policy are applied; splits are assigned
    (:func:`event_split`); ``tagging`` for predictions on any files.
    """
    for _, raw in iter_raw_chunks(cfg, step_size=step_size, with_truth=with_truth, stats=stats, tagging=tagging):
        yield raw


def iter_raw_chunks(cfg: DataConfig, *, step_size: str | int | None = None, with_truth: bool = True,
                    stats: _Stats | None = None, tagging: Tagging | None = None) -> Iterator[tuple[Chunk, RawChunk]]:
    """:func:`iter_raw` with each block's :class:`~physnn.io.read.Chunk` (its file and whole entry range)."""
    stats = stats if stats is not None else _Stats()
    tagging = tagging or Tagging()
    both = " && ".join(f"({s})" for s in (cfg.selection, tagging.flag) if s)
    names = needed_branches(cfg.model_copy(update={"selection": both or None}), with_truth=with_truth)
    selection = Selection(cfg.selection) if cfg.selection else None
    for chunk, obj in plan_chunks(cfg.files, cfg.tree, names, step_size=step_size, friends=cfg.friends,
                                  entry_start=cfg.entry_start, entry_stop=cfg.entry_stop):
        yield chunk, _read_raw_chunk(chunk, obj, names, cfg, selection, with_truth, stats, tagging)


def _read_raw_chunk(chunk: Chunk, obj: Any, names: list[str], cfg: DataConfig, selection: Selection | None,
                    with_truth: bool, stats: _Stats, tagging: Tagging | None = None) -> RawChunk:
    return raw_from_arrays(read_chunk(chunk, names, obj), chunk, cfg, selection, with_truth, stats, tagging)


def raw_from_arrays(arrays: Mapping[str, Any], chunk: Chunk, cfg: DataConfig, selection: Selection | None = None,
                    with_truth: bool = True, stats: _Stats | None = None,
                    tagging: Tagging | None = None) -> RawChunk:
    """Build the :class:`RawChunk` of one chunk's branches: defines, selection, blocks, NaN/inf policy."""
    stats = stats if stats is not None else _Stats()
    tagging = tagging or Tagging()
    flag = Selection(tagging.flag) if tagging.flag else None
    # defined columns after the selection (computed for kept events only) unless a selection uses them
    define_first = any(s is not None and bool(s.branches & cfg.define.keys()) for s in (selection, flag))
    if cfg.define and (define_first or selection is None):
        arrays = apply_defines(dict(arrays), cfg, chunk.where)
    entry = chunk.offset + np.arange(chunk.start, chunk.stop, dtype=np.int64)
    stats.read += entry.size
    if chunk.file_id not in stats.file_ids:
        stats.file_ids.append(chunk.file_id)
    if selection is not None:
        keep = selection.evaluate(arrays, where=chunk.where)
        if not keep.all():
            arrays = {k: v[keep] for k, v in arrays.items()}
            entry = entry[keep]
        if cfg.define and not define_first:
            arrays = apply_defines(dict(arrays), cfg, chunk.where)
    stats.selected += entry.size
    raw = _build_raw(arrays, cfg, entry, event_split(chunk, entry, cfg, tagging.known_files), chunk.where,
                     with_truth)
    if flag is not None:
        raw.observers["in_selection"] = flag.evaluate(arrays, where=chunk.where).astype(np.int8)
    return _nonfinite(raw, cfg, chunk.where, stats)


def finalize(raw: RawChunk, transform: Transform, cfg: DataConfig) -> TensorData:
    """Pad, standardise and encode a raw block into :class:`TensorData` (in place, no copy)."""
    inputs: dict[str, torch.Tensor] = {}
    if raw.image is not None:
        inputs["image"] = torch.from_numpy(transform.standardize("image", raw.image, axis=1))
    if raw.seq_content is not None and raw.seq_counts is not None:
        n_features = len(cfg.sequence.features) if cfg.sequence is not None else raw.seq_content.shape[1]
        content = transform.standardize("sequence", raw.seq_content[:, :n_features], axis=1)
        x, mask, lengths = pad_sequences(content, raw.seq_counts, transform.max_length or 1)
        inputs["sequence"] = torch.from_numpy(x)
        if raw.seq_content.shape[1] > n_features:  # the declared kinematics, in physical units
            kin, _, _ = pad_sequences(raw.seq_content[:, n_features:], raw.seq_counts, transform.max_length or 1)
            inputs["kinematics"] = torch.from_numpy(kin)
        inputs["mask"] = torch.from_numpy(mask)
        inputs["length"] = torch.from_numpy(lengths)
    if raw.scalars is not None:
        inputs["scalars"] = torch.from_numpy(transform.standardize("scalars", raw.scalars, axis=1))
    if raw.baseline is not None:  # in the target's unit, never standardised: the task divides by it
        inputs["baseline"] = torch.from_numpy(raw.baseline)
    label = None
    if raw.labels is not None and transform.classes is not None and cfg.label is not None:
        label = torch.from_numpy(transform.encode_labels(raw.labels, ",".join(cfg.files), cfg.label))
    if raw.target_image is not None:
        inputs["target_image"] = torch.from_numpy(raw.target_image)
    return TensorData(
        inputs, label=label,
        target=None if raw.targets is None else torch.from_numpy(raw.targets),
        weight=None if raw.weight is None else torch.from_numpy(raw.weight),
        entry=raw.entry, observers=raw.observers,
    )


def _empty_message(cfg: DataConfig, stats: _Stats) -> str:
    files = ", ".join(cfg.files)
    if stats.read == 0:
        return f"{files}: no events to read (the tree is empty or the entry range selects none)"
    if stats.selected == 0 and cfg.selection:
        return f"{files}: the selection {cfg.selection!r} keeps no event of {stats.read}"
    return f"{files}: all {stats.selected} selected events were dropped for NaN/inf values"


def load(config: ConfigLike, *, transform: Transform | None = None,
         overrides: Sequence[str] = ()) -> DataBundle:
    """Read a data config into memory and return the train/val/test tensors.

    Parameters
    ----------
    config
        A :class:`~physnn.config.DataConfig`, a dict, or a YAML file path.
    transform
        A transform fitted before (e.g. from a checkpoint); ``None`` fits one
        on the training split.
    overrides
        ``["split.seed=3"]``-style config overrides.

    Returns
    -------
    DataBundle

    Examples
    --------
    >>> data = physnn.load({"files": "showers.root", "images": {"branches": "image"},
    ...                     "label": "label"})  # doctest: +SKIP
    >>> data.train.inputs["image"].shape  # doctest: +SKIP
    torch.Size([699, 3, 24, 24])
    """
    cfg = load_config(config, DataConfig, overrides)
    stats = _Stats()
    chunks = list(iter_raw(cfg, stats=stats))
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise DataError(_empty_message(cfg, stats))
    raw = RawChunk.concatenate(chunks)
    raws = {name: raw.select(raw.split == code) for name, code in SPLITS.items()}
    del raw
    summary = None
    if transform is None:
        if len(raws["train"]) == 0:
            msg = f"{', '.join(cfg.files)}: no event in the training split"
            raise DataError(msg)
        fitter = TransformFitter(cfg)
        fitter.add(raws["train"])
        transform, summary = fitter.result(), fitter.summary()
    parts = {name: finalize(part, transform, cfg) for name, part in raws.items()}
    info = {"files": cfg.files, "file_ids": stats.file_ids, "entries_read": stats.read, "selected": stats.selected,
            "dropped_nonfinite": stats.dropped, "dropped_by": stats.dropped_by,
            "split": {k: len(v) for k, v in parts.items()},
            "max_length": transform.max_length, "length_info": transform.length_info,
            "classes": transform.classes}
    return DataBundle(train=parts["train"], val=parts["val"], test=parts["test"],
                      transform=transform, config=cfg, info=info, summary=summary)


def fit(config: ConfigLike, *, overrides: Sequence[str] = ()) -> Transform:
    """Fit the transform on the training split in one streaming pass."""
    cfg = load_config(config, DataConfig, overrides)
    fitter = TransformFitter(cfg)
    stats = _Stats()
    for raw in iter_raw(cfg, step_size=cfg.step_size, stats=stats):
        fitter.add(raw.select(raw.split == TRAIN))
    if fitter.n_events == 0:
        raise DataError(_empty_message(cfg, stats) if stats.selected == 0 else
                        f"{', '.join(cfg.files)}: no event in the training split")
    return fitter.result()


def stream(config: ConfigLike, transform: Transform, *, split: str | None = "train",
           step_size: str | int | None = None, overrides: Sequence[str] = ()) -> Iterator[TensorData]:
    """Yield the events of one split chunk by chunk, with bounded memory.

    Parameters
    ----------
    config
        The data config.
    transform
        The fitted transform (:func:`fit`, or from a checkpoint).
    split
        ``"train"``, ``"val"``, ``"test"`` or ``None`` for every event.
    step_size
        Chunk size; defaults to the config's ``step_size``.
    """
    cfg = load_config(config, DataConfig, overrides)
    if split is not None and split not in SPLITS:
        msg = f"split {split!r}: expected one of {', '.join(SPLITS)} or None"
        raise DataError(msg)
    for raw in iter_raw(cfg, step_size=step_size or cfg.step_size):
        part = raw if split is None else raw.select(raw.split == SPLITS[split])
        if len(part):
            yield finalize(part, transform, cfg)
