"""The one inference pipeline: read chunk -> tensors -> model (+ MC dropout) -> branches -> writer.

``predict``, ``denoise`` and ``encode`` read their files with
:func:`read_blocks` (chunk by chunk, the run's transform applied, images of
another layout reshaped), run the model with :func:`run_model` (batched, on
the run's device, deterministic or T MC-dropout passes, each batch reduced to
per-event values at once so that T x cells never pile up), turn the result
into branches (their own step) and hand them to :func:`drain`, which writes
one ROOT tree atomically and/or keeps the arrays. ``generate`` has no input
file; its chunks of generated showers go through the same :func:`drain`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from physnn.config import DataConfig
from physnn.data.dataset import TRUTH, RawChunk, Tagging, TensorData, finalize, iter_raw_chunks, raw_from_arrays
from physnn.inference.loading import LoadedRun, match_image_shape
from physnn.io.read import Chunk, plan_chunks, read_chunk
from physnn.io.write import write_tree
from physnn.models.ensemble import stacked_outputs
from physnn.models.feature_domain import features
from physnn.models.mc_dropout import set_dropout
from physnn.training.device import autocast

__all__ = ["Block", "Sink", "concat", "drain", "read_blocks", "run_model"]



@dataclass
class Block:
    """One chunk of input events on its way through the pipeline.

    Attributes
    ----------
    chunk
        Where the events come from (file, entry range).
    raw
        The events as read (selection applied, splits assigned).
    td
        Their tensors for the model; None when the chunk holds no event.
    arrays
        Every branch read, as read (only when :func:`read_blocks` was asked to ``keep`` branches).
    """

    chunk: Chunk
    raw: RawChunk
    td: TensorData | None
    arrays: Mapping[str, Any] | None = None


def read_blocks(loaded: LoadedRun, cfg: DataConfig, *, step_size: str | int | None, tagging: Tagging,
                notes: list[str] | None = None, keep: Sequence[str] | None = None) -> Iterator[Block]:
    """The input files chunk by chunk as :class:`Block`, with the run's transform applied.

    Parameters
    ----------
    loaded
        The run (its transform and image shape).
    cfg
        The data config pointed at the files (:func:`~physnn.inference.plan.plan_prediction`).
    step_size
        Chunk size (default: the config's).
    tagging
        Split and selection flags of prediction-time reading.
    notes
        Collects, once each, what was adapted (images of another layout reshaped).
    keep
        Also read these branches and keep them as :attr:`Block.arrays` (``denoise`` writes them back); the
        config's selection does not apply then.
    """
    where = ", ".join(cfg.files)
    for chunk, raw, arrays in _raw_chunks(cfg, step_size or cfg.step_size, tagging, keep):
        td = None
        if len(raw):
            note = match_image_shape(loaded, raw, chunk.where if keep is not None else where)
            if note and notes is not None and note not in notes:
                notes.append(note)
            td = finalize(raw, loaded.transform, cfg.model_copy(update={"label": None}))
        yield Block(chunk, raw, td, arrays)


def _raw_chunks(cfg: DataConfig, step_size: str | int | None, tagging: Tagging, keep: Sequence[str] | None
                ) -> Iterator[tuple[Chunk, RawChunk, Mapping[str, Any] | None]]:
    if keep is None:
        for chunk, raw in iter_raw_chunks(cfg, step_size=step_size, tagging=tagging):
            yield chunk, raw, None
        return
    for chunk, obj in plan_chunks(cfg.files, cfg.tree, list(keep), step_size=step_size):
        arrays = read_chunk(chunk, list(keep), obj)
        yield chunk, raw_from_arrays(arrays, chunk, cfg, with_truth=False, tagging=tagging), arrays


def run_model(loaded: LoadedRun, td: TensorData, reduce: Callable[[torch.Tensor], Mapping[str, torch.Tensor]], *,
              mc_samples: int = 0, batch_size: int = 1024, call: Callable[..., torch.Tensor] | None = None,
              central: bool = False) -> dict[str, torch.Tensor]:
    """The model on every event of ``td``, batch by batch, reduced per batch to per-event values.

    Parameters
    ----------
    loaded
        The run (model and device).
    td
        The events' tensors.
    reduce
        Raw outputs of one batch, (T, B, ...) with T = 1 without MC dropout, -> per-event tensors (B, ...),
        e.g. :meth:`~physnn.models.tasks.Task.summarize`. An ensemble's members are stacked on the first
        axis, (M x T, B, ...) (:mod:`physnn.models.ensemble`).
    mc_samples
        T >= 2: MC dropout (:func:`~physnn.models.mc_dropout.mc_forward`); 0: one deterministic pass.
    batch_size
        Events per forward pass (times T rows with MC dropout).
    call
        What to run instead of the model's forward (deterministic, one model only), e.g. ``model.encode``.
    central
        Also give ``reduce`` each member's deterministic outputs (M, B, ...), dropout off, as ``central=``: the
        central value of a regression (:meth:`~physnn.models.tasks.Task.summarize`).

    Returns
    -------
    dict
        ``reduce``'s tensors of all events, on the CPU.
    """
    model, device = loaded.model, loaded.device
    parts: dict[str, list[torch.Tensor]] = {}
    for batch in td.batches(batch_size):
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k not in TRUTH}
        with autocast(device, device.type == "cuda"):
            if call is not None:
                set_dropout(model, False)
                with torch.no_grad():
                    outs = call(batch)[None]
            else:  # one run, or every member of an ensemble stacked like MC-dropout passes
                outs, det = stacked_outputs(loaded.models, batch, mc_samples)
        summary = reduce(outs.float(), central=det.float()) if central and call is None else reduce(outs.float())
        for key, value in summary.items():
            parts.setdefault(key, []).append(value.detach().cpu())
    return {key: torch.cat(values) for key, values in parts.items()}


def domain_branches(loaded: LoadedRun, td: TensorData, counts: dict[str, int]) -> dict[str, np.ndarray]:
    """``ood_score``, ``feature_score`` and ``in_domain`` of a block against the run's training domain
    (:mod:`physnn.data.domain`: its inputs; :mod:`physnn.models.feature_domain`: its features), adding the
    events outside to ``counts["out_of_domain"]`` (and those outside the feature domain to
    ``counts["out_of_feature_domain"]``); nothing for a run trained before physnn recorded its domain."""
    if loaded.domain is None:
        return {}
    score = loaded.domain.scores(td.inputs)
    inside = score == 0
    out = {"ood_score": score.astype(np.float32)}
    if loaded.feature_domain is not None:
        batches = td.batches(1024)
        feature = loaded.feature_domain.scores(features(loaded.model, batches, loaded.device))
        out["feature_score"] = feature.astype(np.float32)
        counts["out_of_feature_domain"] = counts.get("out_of_feature_domain", 0) + int(np.sum(feature > 1))
        inside &= feature <= 1
    counts["out_of_domain"] = counts.get("out_of_domain", 0) + int(np.count_nonzero(~inside))
    return out | {"in_domain": inside}


def domain_meta(loaded: LoadedRun) -> dict[str, Any]:
    """The run's domain for an output's ``physnn_meta`` (empty without one)."""
    if loaded.domain is None:
        return {}
    meta = {"domain": loaded.domain.state() | {"description": loaded.domain.describe()}}
    if loaded.feature_domain is not None:
        fd = loaded.feature_domain
        meta["feature_domain"] = {"cut": fd.cut, "false_flags": fd.false_flags, "events": fd.events,
                                  "description": fd.describe()}
    return meta


@dataclass
class Sink:
    """Where a pipeline's branches go: a ROOT tree written atomically (``path``), memory (``collect``), both.

    The other attributes are :func:`physnn.io.write.write_tree`'s.
    """

    path: str | os.PathLike | None
    tree: str
    collect: bool
    title: str = ""
    meta: Mapping[str, Any] | Callable[[], Mapping[str, Any]] = field(default_factory=dict)
    overwrite: bool = False
    compression: str | None = None
    counters: Mapping[str, str] | None = None
    rntuple: bool = False
    identity: str | None = None
    on_chunk: Callable[[int], None] | None = None


def drain(blocks: Iterable[dict[str, Any]], sink: Sink) -> tuple[int, dict[str, Any] | None]:
    """Consume the branch blocks into ``sink``: the rows written (or consumed) and, with ``collect``, the
    branches of all blocks concatenated."""
    pieces: list[dict[str, Any]] = []
    rows = 0

    def tee() -> Iterator[dict[str, Any]]:
        nonlocal rows
        for block in blocks:
            rows += len(next(iter(block.values()))) if block else 0
            if sink.collect:
                pieces.append(block)
            yield block

    if sink.path is None:
        for _ in tee():
            pass
    else:
        write_tree(sink.path, sink.tree, tee(), overwrite=sink.overwrite, compression=sink.compression,
                   title=sink.title, meta=sink.meta, counters=sink.counters, rntuple=sink.rntuple,
                   identity=sink.identity, on_chunk=sink.on_chunk)
    return rows, (concat(pieces) if sink.collect and pieces else None)


def concat(pieces: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Branch blocks -> one array per branch (numpy, or awkward for jagged branches)."""
    import awkward as ak

    out = {}
    for key in pieces[0]:
        values = [p[key] for p in pieces]
        out[key] = np.concatenate(values) if isinstance(values[0], np.ndarray) else ak.concatenate(values)
    return out
