"""Turn branch arrays (awkward/numpy) into plain numpy blocks.

Second step of the data flow: ROOT branches become a :class:`RawChunk` of
numpy arrays: images ``(N, C, ...)``, sequences as flat per-particle content
plus per-event counts (padding comes later, once the length is known),
scalars ``(N, S)``, labels, targets, weights and observers. Shapes and types
are checked here, with errors naming the branch.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from physnn.config import DataConfig, ImageInput, SequenceInput
from physnn.errors import BranchError, DataError


def is_jagged(arr: Any) -> bool:
    """True for an awkward array with a variable-length dimension (numpy arrays never are)."""
    return "var *" in str(getattr(arr, "type", ""))


def _depth(arr: Any) -> int:
    """Number of dimensions per event (0 for a number per event)."""
    if isinstance(arr, np.ndarray):
        return arr.ndim - 1
    import awkward as ak

    return ak.to_layout(arr).purelist_depth - 1


def _type_text(arr: Any) -> str:
    """The per-event type of a branch array, for messages."""
    if isinstance(arr, np.ndarray):
        return f"{list(arr.shape[1:])} {arr.dtype}"
    return str(arr.type.content)


def check_plain(arr: Any, name: str, where: str, role: str) -> None:
    """Refuse a branch that holds records (a leaf list, an object): its members are the columns to name.

    Raises
    ------
    BranchError
        Naming the branch and its members, e.g. ``pos.x, pos.y, pos.z``.
    """
    if isinstance(arr, np.ndarray) and arr.dtype.names:
        fields = list(arr.dtype.names)
    elif isinstance(arr, np.ndarray):
        return
    else:
        fields = _leaves(arr)
    if fields:
        members = ", ".join(f"{name}.{f}" for f in fields[:6]) + (", ..." if len(fields) > 6 else "")
        msg = (f"{where}: branch {name!r} holds a record of several values per event, not usable as a {role}; "
               f"name its members instead: {members}")
        raise BranchError(msg)


def _leaves(arr: Any) -> list[str]:
    """The numbers inside a record, as dotted paths: ``fP.fX, fP.fY, fP.fZ, fE`` for a TLorentzVector (its
    ``fP`` is a record too, and refused in turn)."""
    import awkward as ak

    out = []
    for member in ak.fields(arr):
        inner = _leaves(arr[member])
        out += [f"{member}.{leaf}" for leaf in inner] or [member]
    return out


def as_numpy(arr: Any) -> np.ndarray:
    """A numpy view of a regular awkward array (numpy arrays pass through)."""
    if isinstance(arr, np.ndarray):
        return arr
    import awkward as ak

    return ak.to_numpy(arr)


def image_block(arrays: Mapping[str, Any], cfg: ImageInput, where: str) -> np.ndarray:
    """Stack image branches into ``(N, C, ...)`` float32.

    One branch with a ``[L][H][W]`` shape gives ``(N, L, H, W)`` (layers as
    channels); a ``[H][W]`` branch gives ``(N, 1, H, W)``; several branches
    are stacked as channels: ``(N, n_branches, *shape)``.
    """
    import awkward as ak

    blocks = []
    for name in cfg.branches:
        arr = arrays[name]
        n = len(arr)
        check_plain(arr, name, where, "image")
        if _depth(arr) == 0:
            msg = (f"{where}: branch {name!r} holds one number per event, expected an image "
                   "(a fixed-size array, a TH2 per entry, or a flat branch with shape:)")
            raise BranchError(msg)
        if is_jagged(arr):
            if cfg.shape is None:
                msg = (f"{where}: branch {name!r} is jagged ({arr.type.content}), expected a fixed-size "
                       "image; give shape: [..] if every event stores the same number of cells")
                raise BranchError(msg)
            size = int(np.prod(cfg.shape))
            flat = ak.flatten(arr, axis=None) if _depth(arr) > 1 else ak.flatten(arr)
            counts = ak.to_numpy(ak.num(arr, axis=1)) if _depth(arr) == 1 else None
            if counts is None or np.any(counts != size):
                bad = np.unique(counts)[:5] if counts is not None else "nested lists"
                msg = (f"{where}: branch {name!r} has {bad} values per event, "
                       f"expected {size} for shape {cfg.shape}")
                raise BranchError(msg)
            block = ak.to_numpy(flat).reshape(n, *cfg.shape)
        else:
            block = as_numpy(arr)
            if cfg.shape is not None:
                size = int(np.prod(cfg.shape))
                if int(np.prod(block.shape[1:])) != size:
                    msg = (f"{where}: branch {name!r} has shape {list(block.shape[1:])} per event, "
                           f"which does not fit shape {cfg.shape}")
                    raise BranchError(msg)
                block = block.reshape(n, *cfg.shape)
        blocks.append(np.asarray(block, dtype=np.float32))
    shapes = {b.shape[1:] for b in blocks}
    if len(shapes) > 1:
        return fold_to_grid(blocks, cfg.branches, where)
    if len(blocks) == 1:
        block = blocks[0]
        return block[:, None] if block.ndim == 3 else (block[:, None, :] if block.ndim == 2 else block)
    return np.stack(blocks, axis=1)


def fold_to_grid(blocks: list[np.ndarray], names: list[str], where: str) -> np.ndarray:
    """Images of different granularity as channels of one grid, the coarsest (``(N, C, H, W)`` float32).

    Each block is ``(N, H', W')`` (one channel) or ``(N, layers, H', W')``; a finer block, ``H' = a H`` and
    ``W' = b W``, is folded into ``a b`` channels per layer (space to depth: channel ``i b + j`` holds strip
    ``(i, j)`` of each cell), so nothing is lost and one CNN reads both. E.g. ``image[3][24][24]`` and
    ``strips[96][24]`` give 3 + 4 channels of 24 x 24.
    """
    four = [b[:, None] if b.ndim == 3 else b for b in blocks]
    detail = ", ".join(f"{n}: {list(b.shape[1:])}" for n, b in zip(names, blocks, strict=True))
    if any(b.ndim != 4 for b in four):
        msg = f"{where}: image branches have different shapes ({detail}); only 2D images of layers fold together"
        raise BranchError(msg)
    height, width = min(b.shape[2] for b in four), min(b.shape[3] for b in four)
    if any(b.shape[2] % height or b.shape[3] % width for b in four):
        msg = (f"{where}: image branches have different shapes ({detail}); a finer one must divide into the "
               f"coarsest grid {height} x {width} (a whole number of cells per cell)")
        raise BranchError(msg)
    folded = []
    for b in four:
        n, layers, a, c = b.shape[0], b.shape[1], b.shape[2] // height, b.shape[3] // width
        cells = b.reshape(n, layers, height, a, width, c).transpose(0, 1, 3, 5, 2, 4)
        folded.append(cells.reshape(n, layers * a * c, height, width))
    return np.ascontiguousarray(np.concatenate(folded, axis=1), dtype=np.float32)


def flip_order(shapes: Sequence[tuple[int, ...]], axis: int) -> list[int] | None:
    """The channel order that goes with a flip along cell ``axis`` (-2: η, -1: φ) of images folded by
    :func:`fold_to_grid` from blocks of per-event ``shapes``; None when nothing is folded (all shapes equal).

    A flip reverses the coarse cells along the axis and, inside each cell, the order of its strips, which
    :func:`fold_to_grid` put in channels: strip ``i`` of ``a`` becomes strip ``a - 1 - i``.
    """
    if len(set(shapes)) <= 1:
        return None
    four = [(1, *s) if len(s) == 2 else tuple(s) for s in shapes]
    height, width = min(s[1] for s in four), min(s[2] for s in four)
    order: list[int] = []
    for layers, rows, cols in four:
        a, c = rows // height, cols // width
        for _, i, j in itertools.product(range(layers), range(a), range(c)):
            cell = len(order) - (i * c + j)  # the first channel of this layer's cell
            order.append(cell + ((a - 1 - i) * c + j if axis == -2 else i * c + (c - 1 - j)))
    return order


def sequence_block(arrays: Mapping[str, Any], cfg: SequenceInput, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Zip jagged feature branches into flat per-particle content.

    Returns
    -------
    content : (M, F + K) float32
        One row per particle, features in the configured order, then the K
        ``kinematics`` columns (if any), particles of each event sorted by
        ``sort_by`` when given.
    counts : (N,) int64
        Number of particles per event.
    """
    import awkward as ak

    names = cfg.columns()
    counts = None
    first = None
    for name in [*names, *([cfg.sort_by] if cfg.sort_by else [])]:
        arr = arrays[name]
        check_plain(arr, name, where, "sequence feature")
        if _depth(arr) != 1 or not is_jagged(arr):
            kind = "one number" if _depth(arr) == 0 else f"type {_type_text(arr)}"
            msg = (f"{where}: branch {name!r} holds {kind} per event, "
                   "expected a jagged branch (one value per particle) for a sequence")
            raise BranchError(msg)
        c = ak.to_numpy(ak.num(arr, axis=1))
        if counts is None:
            counts, first = c, name
        elif not np.array_equal(c, counts):
            bad = int(np.flatnonzero(c != counts)[0])
            msg = (f"{where}: branches {first!r} and {name!r} have different numbers of particles "
                   f"(event {bad}: {counts[bad]} vs {c[bad]}); sequence features must be one collection")
            raise BranchError(msg)
    assert counts is not None
    columns = [arrays[n] for n in names]
    if cfg.sort_by:
        order = ak.argsort(arrays[cfg.sort_by], axis=1, ascending=not cfg.descending, stable=True)
        columns = [col[order] for col in columns]
    content = np.empty((int(counts.sum()), len(names)), dtype=np.float32)
    for j, col in enumerate(columns):
        content[:, j] = ak.to_numpy(ak.flatten(col))
    return content, counts.astype(np.int64)


def pad_sequences(content: np.ndarray, counts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad/clip flat per-particle content to ``(N, length, F)``.

    Returns ``(x, mask, lengths)``: padded values (zeros beyond each event's
    length), a boolean mask of real particles and the clipped lengths.
    """
    n = counts.size
    lengths = np.minimum(counts, length)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(n), lengths)
    cols = np.arange(rows.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    x = np.zeros((n, length, content.shape[1]), dtype=np.float32)
    x[rows, cols] = content[starts[rows] + cols]
    mask = np.arange(length)[None, :] < lengths[:, None]
    return x, mask, lengths


def scalar_block(arrays: Mapping[str, Any], names: list[str], where: str, role: str = "scalar") -> np.ndarray:
    """Stack flat branches into ``(N, S)`` float32."""
    cols = []
    for name in names:
        arr = arrays[name]
        check_plain(arr, name, where, role)
        if _depth(arr) != 0:
            msg = (f"{where}: branch {name!r} holds {_type_text(arr)} per event, "
                   f"expected one number per event as a {role}")
            raise BranchError(msg)
        cols.append(np.asarray(as_numpy(arr), dtype=np.float32))
    n = len(arrays[names[0]]) if names else 0
    return np.stack(cols, axis=1) if cols else np.zeros((n, 0), np.float32)


def label_values(arrays: Mapping[str, Any], name: str, where: str) -> np.ndarray:
    """The raw label values: an integer or a string numpy array."""
    import awkward as ak

    arr = arrays[name]
    check_plain(arr, name, where, "label")
    is_string = not isinstance(arr, np.ndarray) and ak.to_layout(arr).parameter("__array__") == "string"
    if _depth(arr) != 0 and not is_string:
        msg = f"{where}: label branch {name!r} holds {_type_text(arr)} per event, expected one integer or string"
        raise BranchError(msg)
    if isinstance(arr, np.ndarray):
        values = arr
    elif is_string:
        values = np.asarray(ak.to_list(arr), dtype=str)
    else:
        values = ak.to_numpy(arr)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            msg = f"{where}: label branch {name!r} holds non-integer values; labels must be integers or strings"
            raise DataError(msg)
        values = values.astype(np.int64)
    if values.dtype.kind == "b":
        values = values.astype(np.int64)
    return values


def nonfinite_per_event(block: np.ndarray) -> np.ndarray:
    """Boolean per event: does its row hold a NaN or an infinity?"""
    if block.dtype.kind != "f" or len(block) == 0:
        return np.zeros(len(block), dtype=bool)
    return ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)


@dataclass
class RawChunk:
    """Numpy blocks for a set of events, before padding and standardisation.

    ``entry`` is the global entry number of each event (see
    :class:`physnn.io.read.Chunk`), ``split`` its split index.
    """

    entry: np.ndarray
    split: np.ndarray
    image: np.ndarray | None = None
    target_image: np.ndarray | None = None
    seq_content: np.ndarray | None = None
    seq_counts: np.ndarray | None = None
    scalars: np.ndarray | None = None
    labels: np.ndarray | None = None
    targets: np.ndarray | None = None
    weight: np.ndarray | None = None
    #: each target's baseline (N, K), an input of a model that regresses a correction to it
    baseline: np.ndarray | None = None
    observers: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.entry.size)

    def select(self, keep: np.ndarray) -> RawChunk:
        """A new chunk holding only the events where ``keep`` is True (or the given indices)."""
        keep = np.asarray(keep)
        if keep.dtype == bool and keep.all():
            return self  # nothing to drop: no copy
        idx = np.flatnonzero(keep) if keep.dtype == bool else keep

        def take(x: Any) -> Any:
            return None if x is None else x[idx]

        content = counts = None
        if self.seq_content is not None and self.seq_counts is not None:
            starts = np.concatenate([[0], np.cumsum(self.seq_counts)[:-1]])
            counts = self.seq_counts[idx]
            rows = np.repeat(starts[idx], counts) + (np.arange(int(counts.sum()))
                                                     - np.repeat(np.cumsum(counts) - counts, counts))
            content = self.seq_content[rows]
        return replace(self, entry=self.entry[idx], split=self.split[idx], image=take(self.image),
                       target_image=take(self.target_image),
                       seq_content=content, seq_counts=counts, scalars=take(self.scalars),
                       labels=take(self.labels), targets=take(self.targets), weight=take(self.weight),
                       baseline=take(self.baseline), observers={k: v[idx] for k, v in self.observers.items()})

    @staticmethod
    def concatenate(chunks: list[RawChunk]) -> RawChunk:
        """Join chunks (the first chunk is returned as is when alone)."""
        if len(chunks) == 1:
            return chunks[0]
        import awkward as ak

        def cat(name: str) -> Any:
            parts = [getattr(c, name) for c in chunks]
            return None if parts[0] is None else np.concatenate(parts)

        observers = {}
        for key in chunks[0].observers:
            parts = [c.observers[key] for c in chunks]
            observers[key] = (np.concatenate(parts) if isinstance(parts[0], np.ndarray)
                              else ak.concatenate(parts))
        return RawChunk(entry=cat("entry"), split=cat("split"), image=cat("image"), target_image=cat("target_image"),
                        seq_content=cat("seq_content"), seq_counts=cat("seq_counts"),
                        scalars=cat("scalars"), labels=cat("labels"), targets=cat("targets"),
                        weight=cat("weight"), baseline=cat("baseline"), observers=observers)


def needed_branches(cfg: DataConfig, *, with_truth: bool = True) -> list[str]:
    """Every branch the config reads, in a stable order."""
    from physnn.io.selection import Selection

    names: list[str] = []
    if cfg.images:
        names += cfg.images.branches
    if cfg.sequence:
        names += cfg.sequence.columns() + ([cfg.sequence.sort_by] if cfg.sequence.sort_by else [])
    names += cfg.scalars + [b for b in cfg.baselines.values() if b]  # a baseline is an input of the model
    if with_truth:
        names += ([cfg.label] if cfg.label else []) + cfg.targets + ([cfg.weight] if cfg.weight else [])
        names += cfg.target_images.branches if cfg.target_images else []
    names += cfg.observers
    if cfg.selection:
        names += sorted(Selection(cfg.selection).branches)
    names = list(dict.fromkeys(names))
    if not cfg.define:
        return names
    # read the branches the defines use instead of the defined names
    from physnn.io.selection import Expression

    read = [n for n in names if n not in cfg.define]
    for expression in cfg.define.values():
        read += [b for b in sorted(Expression(expression).branches) if b not in cfg.define]
    return list(dict.fromkeys(read))


def apply_defines(arrays: dict[str, Any], cfg: DataConfig, where: str) -> dict[str, Any]:
    """Add the config's derived columns (``define:``) to ``arrays``, in order."""
    from physnn.io.selection import Expression

    for name, expression in cfg.define.items():
        value = Expression(expression, f"define {name!r}").values(arrays, where=where)
        if np.isscalar(value):
            value = np.full(len(next(iter(arrays.values()))), value)
        arrays[name] = value
    return arrays
