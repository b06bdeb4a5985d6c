"""Training on data larger than memory: chunks from the files, a shuffle buffer, a memory budget.

With ``train.memory_budget`` set, :func:`prepare` makes one streaming pass
over the files (fitting the transform on the training split, counting the
events of each split, keeping a small sample) and measures the tensor size
of an event. If every split fits comfortably in the budget, the data are
loaded into memory as usual (faster). Otherwise each epoch reads the files
again, chunk by chunk (``uproot`` entry ranges):

- the chunks are taken in a random order (seeded by the trainer's
  generator, so ``--resume`` stays exact);
- their events go into a **shuffle buffer**; when it holds ``capacity``
  events it is drained in random batches (block shuffling: a batch mixes
  events from the ~8 chunks in the buffer, drawn from anywhere in the
  files; each batch gathers its rows from the chunks, so the buffer is
  never copied);
- the chunks are read in a background thread, up to a buffer's worth
  ahead, so the next buffer fills while the model trains on this one
  (reading one chunk ahead only overlapped 1 chunk in 8: 8,300 vs 10,200
  samples/s on the bench's file).

Resident memory is bounded by the budget: the process's own footprint
(python, torch) measured at the start, plus :data:`RESERVE` for what
training adds (kernels, thread pools, model, plots), plus the data: the
buffer (:data:`BUFFER_SHARE`), as much again read ahead plus the chunk being
read, the samples and the validation split when it
is small.
Freed memory is handed back to the system (``malloc_trim``) after the first
pass and after each buffer, so the resident size follows what is held. ``bench/run`` measures the
peak RSS of a run on a file several times larger than the budget.
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from physnn.config import DataConfig
from physnn.data.convert import RawChunk
from physnn.data.dataset import (
    DataBundle,
    TensorData,
    _read_raw_chunk,
    _Stats,
    finalize,
    load,
    needed_branches,
)
from physnn.data.reservoir import Reservoir
from physnn.data.split import SPLITS
from physnn.data.transform import Transform, TransformFitter
from physnn.errors import ConfigError, DataError
from physnn.io.read import Chunk, open_tree, parse_step_size, plan_chunks
from physnn.io.selection import Selection
from physnn.prefetch import prefetch


class Processes(Protocol):
    """The processes of a distributed run as streaming needs them (``physnn.training.distributed.Dist``)."""

    rank: int
    world: int

    @property
    def enabled(self) -> bool: ...

    def all_true(self, flag: bool) -> bool: ...

    def reduce(self, value: int, op: str) -> int: ...

#: Events kept per split to size the model and fit the task (target scaling, GAN priors, σ calibration).
SAMPLE_EVENTS = 20_000
#: Share of the data budget for those samples (each).
SAMPLE_SHARE = 0.04
#: Share of the data budget for one chunk of the first pass (fitting the transform).
PASS_SHARE = 0.05
#: Share of the data budget taken by the shuffle buffer (the chunks read ahead take as much again).
BUFFER_SHARE = 0.3
#: Share of the data budget up to which the validation split is kept in memory.
VAL_SHARE = 0.2
#: The data are loaded into memory when this many times their tensors fit the data budget.
IN_MEMORY_FACTOR = 3.0
#: What a training job adds after the data are read (measured: a job on a tiny file peaks ~160 MiB above its
#: start): torch's kernels and thread pools, the model and optimiser, metrics and plotting.
RESERVE = 192 * 2**20
#: The smallest data budget (the memory budget minus what the process uses at the start).
MIN_DATA_BUDGET = 32 * 2**20
#: Chunks that the buffer mixes.
CHUNKS_PER_BUFFER = 8
#: Chunks read ahead while the buffer is drained (the next buffer fills while the model trains on this one).
PREFETCH_CHUNKS = CHUNKS_PER_BUFFER
#: Under torchrun, at least this many chunks per process and epoch (they are dealt round-robin).
CHUNKS_PER_PROCESS = 4


def rss_bytes() -> int:
    """The resident memory of this process now (Linux ``/proc``; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def data_share(limit: int, baseline: int) -> int:
    """Bytes the data may take: the budget less the process at start, less :data:`RESERVE`, with 10 % slack."""
    return int((limit - baseline - RESERVE) * 0.9)


def parse_budget(text: str) -> int:
    """``"4 GB"`` -> bytes."""
    _entries, size = parse_step_size(text)
    if size is None:
        msg = f"train.memory_budget {text!r}: expected a size such as '4 GB'"
        raise ConfigError(msg)
    return int(size)


def _nbytes(td: TensorData) -> int:
    return sum(t.numel() * t.element_size() for t in td.tensors().values())


class StreamingSplit:
    """One split read from the files every epoch, shuffled through a bounded buffer.

    Attributes
    ----------
    sample
        The first events of the split in memory (up to :data:`SAMPLE_EVENTS`).
    capacity
        Events in the shuffle buffer.
    """

    def __init__(self, cfg: DataConfig, transform: Transform, split: str, chunks: list[Chunk], n_events: int,
                 capacity: int, sample: TensorData) -> None:
        self.cfg = cfg
        self.transform = transform
        self.split = split
        self.chunks = chunks
        self.n_events = n_events
        self.capacity = max(capacity, 1)
        self.sample = sample
        self._names = needed_branches(cfg, with_truth=True)
        self._selection = Selection(cfg.selection) if cfg.selection else None
        self._trees: dict[str, Any] = {}

    def __len__(self) -> int:
        return self.n_events

    def _read(self, chunk: Chunk) -> TensorData | None:
        obj = self._trees.get(chunk.path)
        if obj is None:
            obj = self._trees[chunk.path] = open_tree(chunk.path, chunk.tree)
        raw = _read_raw_chunk(chunk, obj, self._names, self.cfg, self._selection, True, _Stats())
        raw = raw.select(raw.split == SPLITS[self.split])
        return finalize(raw, self.transform, self.cfg) if len(raw) else None

    def _chunks(self, order: list[int]) -> Iterator[TensorData]:
        """The chunks' tensors in ``order``, read up to :data:`PREFETCH_CHUNKS` ahead in a background thread."""
        def tensors() -> Iterator[TensorData]:
            for i in order:
                td = self._read(self.chunks[i])
                if td is not None:
                    yield td

        try:
            yield from prefetch(tensors(), depth=PREFETCH_CHUNKS, name="physnn-stream")
        finally:  # the reading thread has been joined: close the files
            self._trees.clear()

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
                dist: Processes | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of the split: shuffled through the buffer, or in file order.

        Parameters
        ----------
        batch_size
            Events per batch.
        shuffle
            Chunks in random order through the shuffle buffer (training); else every
            chunk in file order (validation, every process the whole split).
        generator
            The trainer's generator: one number drawn from it seeds the epoch.
        dist
            Under torchrun: this process takes every ``world``-th chunk of the
            epoch's order and the processes stop together when one runs out.
        """
        if not shuffle:
            for td in self._chunks(list(range(len(self.chunks)))):
                yield from td.batches(batch_size)
            return
        # one draw from the trainer's generator, the same in every process, seeds the epoch: the chunk order
        # (shared) and the buffer's shuffling (each process its own stream, as many draws as its data need)
        seed = int(torch.randint(2**62, (1,), generator=generator))
        order = torch.randperm(len(self.chunks), generator=torch.Generator().manual_seed(seed)).tolist()
        rank, world = (dist.rank, dist.world) if dist is not None and dist.enabled else (0, 1)
        local = torch.Generator().manual_seed(seed + 1 + rank)
        stream = self._shuffled(order[rank::world], batch_size, local)
        if world == 1:
            yield from stream
            return
        assert dist is not None
        for batch in stream:  # lockstep: DDP needs the same number of steps in every process
            if not dist.all_true(True):
                stream.close()
                return
            yield batch
        dist.all_true(False)  # this process has run out: the others stop at their next step

    def _shuffled(self, order: list[int], batch_size: int,
                  generator: torch.Generator) -> Generator[dict[str, torch.Tensor], None, None]:
        pending: list[TensorData] = []
        held = 0
        for td in self._chunks(order):
            pending.append(td)
            held += len(td)
            if held >= self.capacity:
                rest = yield from _drain(pending, batch_size, generator, keep_tail=True)
                pending, held = ([rest], len(rest)) if rest is not None else ([], 0)
        if pending:
            yield from _drain(pending, batch_size, generator, keep_tail=False)


def _drain(pieces: list[TensorData], batch_size: int, generator: torch.Generator | None,
           keep_tail: bool) -> Iterator[dict[str, torch.Tensor]]:
    """Yield the buffer's events in random batches; return the last partial batch when ``keep_tail``.

    The pieces are not concatenated (that would double the buffer in memory): each batch gathers its
    events from the pieces that hold them.
    """
    parts = [p.tensors() for p in pieces]
    sizes = torch.tensor([len(p) for p in pieces])
    ends = sizes.cumsum(0)
    n = int(ends[-1])
    order = torch.randperm(n, generator=generator)
    full = n // batch_size * batch_size if keep_tail else n

    def gather(idx: torch.Tensor) -> dict[str, torch.Tensor]:
        which = torch.searchsorted(ends, idx, right=True)
        local = idx - (ends - sizes)[which]
        used = torch.unique(which).tolist()
        return {k: torch.cat([parts[j][k][local[which == j]] for j in used]) for k in parts[0]}

    for lo in range(0, full, batch_size):
        yield gather(order[lo:lo + batch_size])
    tail = gather(order[full:]) if keep_tail and full < n else None
    pieces.clear()
    parts.clear()
    release_memory()
    if tail is None:
        return None
    inputs = {k: v for k, v in tail.items() if k not in ("label", "target", "weight")}
    return TensorData(inputs, label=tail.get("label"), target=tail.get("target"), weight=tail.get("weight"))


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc keeps it otherwise, and the RSS only grows)."""
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:  # pragma: no cover - not glibc
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: Any = None


@dataclass
class StreamingBundle:
    """The training and validation splits streamed from the files, with the fitted transform."""

    train: StreamingSplit
    val: StreamingSplit | TensorData
    transform: Transform
    config: DataConfig
    info: dict[str, Any] = field(default_factory=dict)
    #: exact label counts and target moments of the training split (when the transform was fitted here)
    summary: dict[str, Any] | None = None


def _raw_nbytes(raw: RawChunk) -> int:
    return sum(getattr(v, "nbytes", 0) for v in (raw.image, raw.seq_content, raw.scalars, raw.targets,
                                                  raw.target_image, raw.baseline) if v is not None)


def _data_budget(budget: str, dist: Processes | None) -> tuple[int, float]:
    """The process's starting footprint (the largest of all processes under torchrun) and the share of
    ``budget`` left for data; one line when the budget is below what is already in use."""
    limit = parse_budget(budget)
    baseline = rss_bytes() if dist is None else dist.reduce(rss_bytes(), "max")
    data_budget = data_share(limit, baseline)
    if data_budget < MIN_DATA_BUDGET:
        need = baseline + RESERVE + MIN_DATA_BUDGET / 0.9
        msg = (f"train.memory_budget {budget!r}: the process already uses {baseline / 2**20:.0f} MiB (python, "
               f"torch) and training needs about {RESERVE / 2**20:.0f} MiB more; give at least "
               f"{math.ceil(need / 2**20)} MiB")
        raise ConfigError(msg)
    return baseline, data_budget


def _first_pass(cfg: DataConfig, names: list[str], data_budget: float, fitter: TransformFitter | None,
                stats: _Stats) -> tuple[dict[str, int], dict[str, Reservoir[RawChunk]], list[RawChunk] | None]:
    """One pass over the files: fit the transform on the training split, count the splits, keep a uniform
    sample of the training and validation splits and, while it stays small, the whole validation split
    (None when it grew too large: it is streamed too)."""
    counts = dict.fromkeys(SPLITS, 0)
    rng = np.random.default_rng(cfg.split.seed)
    samples: dict[str, Reservoir[RawChunk]] = {}  # uniform samples of each split (sized by the first chunk)
    val_raw: list[RawChunk] | None = []
    val_bytes = 0
    selection = Selection(cfg.selection) if cfg.selection else None
    step = max(int(PASS_SHARE * data_budget), 2**20)
    for chunk, obj in plan_chunks(cfg.files, cfg.tree, names, step_size=f"{step} B", friends=cfg.friends,
                                  entry_start=cfg.entry_start, entry_stop=cfg.entry_stop):
        raw = _read_raw_chunk(chunk, obj, names, cfg, selection, True, stats)
        if len(raw) and not samples:  # samples within SAMPLE_SHARE of the budget
            per_raw = max(_raw_nbytes(raw) / len(raw), 1.0)
            sample_cap = max(min(SAMPLE_EVENTS, int(SAMPLE_SHARE * data_budget / per_raw)), 100)
            samples = {name: Reservoir(sample_cap, rng, RawChunk.select, RawChunk.concatenate)
                       for name in ("train", "val")}
        for name, code in SPLITS.items():
            part = raw.select(raw.split == code)
            counts[name] += len(part)
            if name == "train" and fitter is not None:
                fitter.add(part)
            if name in samples:
                samples[name].add(part, len(part))
            if name == "val" and val_raw is not None and len(part):
                val_raw.append(part)
                val_bytes += _raw_nbytes(part)
                if val_bytes > VAL_SHARE * data_budget:
                    val_raw = None  # too large: the validation split is streamed too
        del raw
    return counts, samples, val_raw


def prepare(cfg: DataConfig, budget: str, *, transform: Transform | None = None,
            dist: Processes | None = None) -> DataBundle | StreamingBundle:
    """Load the data for training within a memory budget: in memory when they fit, else streamed.

    Parameters
    ----------
    cfg
        The data config.
    budget
        The peak resident memory allowed, e.g. ``"4 GB"``.
    transform
        A fitted transform (resuming a run); None fits one in the first pass.
    dist
        Under torchrun: the budget is per process, and the processes agree on
        the largest starting footprint, so that they all plan the same chunks.

    Raises
    ------
    ConfigError
        When the budget is below what the process already uses.
    """
    baseline, data_budget = _data_budget(budget, dist)
    fitter = TransformFitter(cfg) if transform is None else None
    stats = _Stats()
    names = needed_branches(cfg, with_truth=True)
    counts, samples, val_raw = _first_pass(cfg, names, data_budget, fitter, stats)
    release_memory()
    if counts["train"] == 0:
        msg = f"{', '.join(cfg.files)}: no event in the training split"
        raise DataError(msg if stats.selected else f"{', '.join(cfg.files)}: no events to read")
    transform, summary = (transform, None) if fitter is None else (fitter.result(), fitter.summary())
    train_sample = finalize(samples["train"].sample, transform, cfg)
    per_event = _nbytes(train_sample) / len(train_sample)
    total = per_event * (counts["train"] + counts["val"] + counts["test"])
    info = {"files": cfg.files, "file_ids": stats.file_ids, "entries_read": stats.read, "selected": stats.selected,
            "dropped_nonfinite": stats.dropped, "dropped_by": stats.dropped_by, "split": counts,
            "max_length": transform.max_length, "length_info": transform.length_info, "classes": transform.classes,
            "memory_budget": budget, "baseline_bytes": baseline, "bytes_per_event": per_event}
    if IN_MEMORY_FACTOR * total < data_budget:  # reading everything costs a few times the tensors
        del samples, val_raw
        bundle = load(cfg, transform=transform)
        bundle.info.update(streaming=False, memory_budget=budget)
        bundle.summary = summary
        return bundle
    val_memory = (finalize(RawChunk.concatenate(val_raw), transform, cfg)
                  if val_raw else None)
    used = 0 if val_memory is None else _nbytes(val_memory)
    capacity = max(int(BUFFER_SHARE * (data_budget - used) / per_event), 1)
    chunk_events = max(capacity // CHUNKS_PER_BUFFER, 1)
    if dist is not None and dist.enabled:  # enough chunks for every process to have a few each epoch
        chunk_events = max(min(chunk_events, stats.read // (CHUNKS_PER_PROCESS * dist.world)), 1)
    chunks = [c for c, _ in plan_chunks(cfg.files, cfg.tree, names, step_size=chunk_events, friends=cfg.friends,
                                        entry_start=cfg.entry_start, entry_stop=cfg.entry_stop)]
    val: StreamingSplit | TensorData
    if val_memory is not None:
        val = val_memory
    elif val_raw is not None:  # no validation events
        val = TensorData({k: v[:0] for k, v in train_sample.inputs.items()})
    else:
        val = StreamingSplit(cfg, transform, "val", chunks, counts["val"], capacity,
                             finalize(samples["val"].sample, transform, cfg))
    info.update(streaming=True, buffer_events=capacity, chunk_events=chunk_events, chunks=len(chunks),
                val_in_memory=isinstance(val, TensorData))
    return StreamingBundle(
        train=StreamingSplit(cfg, transform, "train", chunks, counts["train"], capacity, train_sample),
        val=val, transform=transform, config=cfg, info=info, summary=summary)
