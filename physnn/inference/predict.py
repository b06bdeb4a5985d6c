"""Predictions for every event of ROOT files, written back to ROOT.

``predict(run, files)`` streams the files chunk by chunk through the data
transform stored in the checkpoint, runs the model (deterministically, or T
times with MC dropout) and writes a TTree ``predictions`` aligned entry by
entry with the input (no selection is applied unless asked for; the
``entry`` branch holds the global entry number either way; with a selection
and ``aligned`` every entry still gets a row, ``selected`` and fill values
outside the selection: :mod:`physnn.inference.align`). A file whose branches
are named otherwise is read through a ``mapping`` of the run's names to the
file's (:mod:`physnn.inference.branch_map`); the outputs keep the run's
names. Per event:

==========================  ===================================================
classification              ``prob[K]`` (mean class probabilities), ``pred``
                            (argmax), ``score`` (P(class 1), binary only);
                            with MC dropout also ``prob_std[K]``/``score_std``
regression, target ``t``    ``t_pred``; ``t_aleatoric`` (Gaussian heads: the
                            predicted σ, raw); with MC dropout ``t_epistemic``
                            (the spread of the T means, raw); ``t_std`` the
                            calibrated total error bar,
                            s_t x sqrt(aleatoric² + epistemic²) (Kendall &
                            Gal 2017), s_t the target's σ scale fitted on the
                            validation split (:mod:`physnn.training.calibration`;
                            ``sigma_scale`` in ``physnn_meta``)
samples (``keep_samples``)  ``score_samples[T]``, ``prob_samples[T][K]`` or
                            ``t_samples[T]``
truth, when in the file     the label branch as it is, ``true_class`` (index,
                            -1 for a value outside the classes), the targets
                            and the weight under their own names
always                      ``entry``, ``split`` (0 train, 1 val, 2 test: the
                            training's split of the event, a property of its
                            file and entry; -1 for files that were not among
                            the training files), the observer branches
with a training selection   ``in_selection`` (1 if the training selection
                            keeps the event, 0 if training never saw such
                            events)
``aligned``                 ``selected`` (bool: the event was predicted)
==========================  ===================================================

A ``physnn_meta`` string (JSON, :mod:`physnn.io.metadata`) next to the tree
records the physnn version, the run's config hash, the seed, the input files
and checkpoint, the classes/targets and the settings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physnn.config import DataConfig
from physnn.data.convert import is_jagged
from physnn.data.dataset import Tagging, finalize, iter_raw_chunks
from physnn.data.split import SPLITS, UNKNOWN
from physnn.data.transform import Transform
from physnn.errors import BranchError, ConfigError, DataError, did_you_mean
from physnn.inference.align import Aligner
from physnn.inference.branch_map import check_mapping, map_config, parse_mapping, rename_expression
from physnn.inference.outputs import forward, output_branches, truth_branches
from physnn.io.files import expand_files
from physnn.io.metadata import META, provenance
from physnn.io.read import first_file_names, read
from physnn.io.selection import Expression
from physnn.io.write import write_tree
from physnn.models.base import StagedModel
from physnn.models.mc_dropout import check_samples, seeded
from physnn.models.registry import ModelIO, build_model
from physnn.models.tasks import Task
from physnn.training.checkpoint import load_checkpoint
from physnn.training.config import RunConfig
from physnn.training.device import resolve_device

TREE = "predictions"
__all__ = ["META", "TREE", "LoadedRun", "PredictionResult", "load_run", "predict"]


@dataclass
class LoadedRun:
    """A trained model ready to predict, with everything it was trained with."""

    model: StagedModel
    task: Task
    transform: Transform
    config: RunConfig
    io: ModelIO
    checkpoint: Path
    device: torch.device
    epoch: int = 0
    #: identities of the training files (``"<uuid>/<tree>"``); events of other files get split -1
    training_files: list[str] = field(default_factory=list)


def load_run(source: str | os.PathLike, *, device: str = "auto", which: str = "best.pt") -> LoadedRun:
    """Rebuild the model of a run folder or checkpoint (weights-only load) on ``device``."""
    ckpt = load_checkpoint(source, which)
    cfg = RunConfig.model_validate(ckpt["config"])
    io = ModelIO.from_state(ckpt["io"])
    with torch.random.fork_rng(devices=[]):  # the random initialisation is overwritten: leave the caller's RNG be
        model = build_model(cfg.model, io)
    model.load_state_dict(ckpt["model"])
    dev = resolve_device(device)
    model.to(dev).eval()
    return LoadedRun(model, Task.from_state(ckpt["task"]), Transform.from_state(ckpt["transform"]), cfg, io,
                     Path(ckpt["path"]), dev, int(ckpt.get("epoch", 0)),
                     list(ckpt.get("data_info", {}).get("file_ids", [])))


@dataclass
class PredictionResult:
    """What :func:`predict` did.

    Attributes
    ----------
    path
        The ROOT file written (None when only arrays were asked for).
    events
        Number of events predicted.
    seconds
        Wall time, reading and writing included.
    arrays
        The output branches as numpy arrays (when ``collect=True``).
    meta
        The metadata written next to the tree.
    counts
        Events per split (``train``, ``val``, ``test``, ``unknown``: files
        that were not among the training files) and ``outside_selection``
        (events that the training selection would have removed).
    entries
        Rows written: ``events``, or every input entry with ``aligned``.
    """

    path: Path | None
    events: int
    seconds: float
    arrays: dict[str, np.ndarray] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    entries: int = 0

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def prediction_config(cfg: DataConfig, files: str | Sequence[str] | None, tree: str | None,
                      selection: str | None, *, mapping: Mapping[str, str] | Sequence[str] | None = None,
                      image_shape: Sequence[int] | None = None) -> DataConfig:
    """The training data config pointed at new files: no cut, truth only where present.

    ``mapping`` (the run's branch -> the file's, :mod:`physnn.inference.branch_map`) renames every branch the
    run reads; each new name must be in the (first) file. ``selection`` uses the file's names. ``image_shape``
    (the run's) is the shape of image branches the file stores as a vector per event (an RDataFrame ``RVec``).
    """
    mapping = parse_mapping(mapping)
    check_mapping(mapping, cfg)
    data = map_config(cfg.model_dump(), mapping)
    if files is not None:
        data["files"] = [os.fspath(files)] if isinstance(files, (str, os.PathLike)) else [os.fspath(f) for f in files]
        data["tree"] = tree
    elif tree is not None:
        data["tree"] = tree
    if files is not None:  # a config friend's files belong to the training files, one by one
        data["friends"] = [f for f in data["friends"] if not f.get("files")]
    data.update(selection=selection, entry_start=None, entry_stop=None)
    where, present = first_file_names(data["files"], data["tree"], data["friends"])
    missing = [new for new in mapping.values() if new not in present]
    if missing:  # a mapped branch is asked for by name: missing is an error, not "no truth in this file"
        msg = f"{where}: no branch {missing[0]!r}{did_you_mean(missing[0], sorted(present))}"
        raise BranchError(msg)
    for name, expression in data["define"].items():  # a defined column exists where its branches do
        if Expression(expression).branches <= present:
            present.add(name)
    if data["label"] not in present:
        data["label"] = None
    if not all(t in present for t in data["targets"]):
        data["targets"] = []
    if data["weight"] not in present:
        data["weight"] = None
    data["observers"] = [o for o in data["observers"] if o in present]
    if image_shape is not None and data["images"] and data["images"]["shape"] is None:
        data["images"]["shape"] = vector_image_shape(data, image_shape)
    return DataConfig.model_validate(data)


def vector_image_shape(data: Mapping[str, Any], image_shape: Sequence[int]) -> list[int] | None:
    """The run's shape of one image branch when the file stores its images as a vector per event (RDataFrame
    writes an ``RVec`` column so), else None; the cell count of every event is checked when it is read."""
    branches = data["images"]["branches"]
    first = read(data["files"], branches[:1], tree=data["tree"], entry_stop=1)[branches[0]]
    if not is_jagged(first):
        return None
    shape = list(image_shape)
    return shape[1:] if len(branches) > 1 or shape[0] == 1 else shape  # the channel axis is physnn's


def match_image_shape(loaded: LoadedRun, raw: Any, where: str) -> str | None:
    """Give the images of ``raw`` the run's shape when only their layout differs (RDataFrame's ``Snapshot``
    writes ``img[3][16][16]`` as ``img[768]``); one line with both shapes when the cells cannot be the same.

    Returns
    -------
    str or None
        A note to show once when the images were reshaped.
    """
    want = None if loaded.io.image is None else tuple(loaded.io.image)
    if want is None or raw.image is None or tuple(raw.image.shape[1:]) == want:
        return None
    got = tuple(raw.image.shape[1:])
    if int(np.prod(got)) != int(np.prod(want)):
        msg = (f"{where}: images of shape {list(got)} per event ({int(np.prod(got))} cells), but the run was "
               f"trained on {list(want)} ({int(np.prod(want))} cells)")
        raise DataError(msg)
    raw.image = raw.image.reshape(len(raw.image), *want)
    return f"images of shape {list(got)} reshaped to the run's {list(want)} (the same {int(np.prod(want))} cells)"


def _predict_chunk(loaded: LoadedRun, cfg: DataConfig, raw: Any, notes: list[str], inverse: Mapping[str, str],
                   *, mc_samples: int, keep_samples: bool, batch_size: int) -> dict[str, Any]:
    """The output branches of the events of one raw block."""
    note = match_image_shape(loaded, raw, ", ".join(cfg.files))
    if note and note not in notes:
        notes.append(note)
    td = finalize(raw, loaded.transform, cfg.model_copy(update={"label": None}))
    branches = truth_branches(loaded.task, cfg, loaded.transform, raw, td, inverse)
    outs = forward(loaded.model, loaded.device, td, mc_samples, batch_size)
    branches.update(output_branches(loaded.task, outs, mc=mc_samples > 0, keep_samples=keep_samples))
    return branches


def _meta(loaded: LoadedRun, cfg: DataConfig, files: list[str], mapping: dict[str, str], **settings: Any,
          ) -> dict[str, Any]:
    """The ``physnn_meta`` of a predictions file (the truth under the run's names)."""
    inverse = {new: old for old, new in mapping.items()}
    meta = provenance("physnn predict", config=loaded.config, inputs=[*files, loaded.checkpoint],
                      checkpoint=str(loaded.checkpoint), epoch=loaded.epoch, train_seed=loaded.config.train.seed,
                      model=loaded.config.model.name, task=loaded.task.state(), files=files, tree=cfg.tree, **settings,
                      training_files=list(loaded.config.data.files), split=loaded.config.data.split.model_dump(),
                      label=inverse.get(cfg.label, cfg.label) if cfg.label else None,
                      targets=[inverse.get(t, t) for t in cfg.targets],
                      weight=inverse.get(cfg.weight, cfg.weight) if cfg.weight else None, mapping=mapping)
    meta["training_selection"] = loaded.config.data.selection
    if loaded.task.kind == "regression":  # the factor applied to each target's total error bar t_std
        meta["sigma_scale"] = dict(zip(loaded.task.targets,
                                       loaded.task.sigma_scales(settings["mc_samples"] > 0).tolist(), strict=True))
    return meta


def predict(
    run: str | os.PathLike | LoadedRun,
    files: str | os.PathLike | Sequence[str] | None = None,
    *,
    out: str | os.PathLike | None = None,
    tree: str | None = None,
    mc_samples: int = 0,
    keep_samples: bool = False,
    selection: str | None = None,
    aligned: bool = False,
    mapping: Mapping[str, str] | Sequence[str] | None = None,
    batch_size: int = 1024,
    device: str = "auto",
    step_size: str | int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    collect: bool | None = None,
    progress: Any = None,
    seed: int = 0,
) -> PredictionResult:
    """Predict every event of ``files`` with a trained run, optionally with MC dropout.

    Parameters
    ----------
    run
        A run folder, a checkpoint file, or a :class:`LoadedRun`.
    files
        Input ROOT files (path, glob or list); default: the training files.
    out
        Output ROOT file with the ``predictions`` tree (written atomically).
    tree
        Input tree name (default: the training config's).
    mc_samples
        T stochastic passes with dropout on; 0 for a plain deterministic prediction.
    keep_samples
        Also write all T samples per event.
    selection
        A cut applied before predicting, in the file's branch names
        (default: none, so the output is aligned entry by entry with the
        input); only the selected events are written unless ``aligned``.
    aligned
        Write a row for every input entry (a ROOT friend of the input):
        ``selected`` (bool) says which were predicted; the other branches
        hold NaN (floats) or -1 (integers) elsewhere (:mod:`physnn.inference.align`).
    mapping
        The run's branch names -> the file's, ``{"image": "calo_image"}``
        (or ``["image=calo_image,energy=E"]``), for files whose branches are
        named otherwise; every branch the run reads can be mapped (inputs,
        truth, weight, observers, those of the training selection and of
        ``define:``). The outputs keep the run's names.
    batch_size
        Events per forward pass (times T rows with MC dropout).
    device
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    step_size
        Chunk size when streaming the input (default: the data config's).
    overwrite, compression
        As for every physnn output.
    collect
        Return the branches as arrays (default: when no ``out`` is given).
    progress
        Called with the number of events after each chunk.
    seed
        Seed of the MC-dropout masks: the same seed gives the same file (on
        the same device). The caller's global torch RNG is left as it was.

    Returns
    -------
    PredictionResult

    Examples
    --------
    >>> res = physnn.predict("runs/epi", "showers.root", mc_samples=50, out="preds.root")  # doctest: +SKIP
    >>> res.arrays is None  # doctest: +SKIP
    True
    """
    if mc_samples != 0:
        check_samples(mc_samples)
    if keep_samples and mc_samples == 0:
        msg = "--keep-samples needs --mc-samples T"
        raise ConfigError(msg)
    if batch_size <= 0:
        msg = f"--batch-size must be positive, got {batch_size}"
        raise ConfigError(msg)
    if out is not None:
        from physnn.io.write import check_output

        check_output(out, overwrite=overwrite)
    loaded = run if isinstance(run, LoadedRun) else load_run(run, device=device)
    loaded.task.check_command("predict", loaded.checkpoint.parent)
    mapping = parse_mapping(mapping)
    cfg = prediction_config(loaded.config.data, files, tree, selection, mapping=mapping,
                            image_shape=loaded.io.image)
    collect = out is None if collect is None else collect
    files = expand_files(cfg.files)
    meta = _meta(loaded, cfg, files, mapping, seed=seed, selection=selection, mc_samples=mc_samples, aligned=aligned)
    counts = dict.fromkeys([*SPLITS, "unknown"], 0)
    notes: list[str] = []
    pieces: list[dict[str, Any]] = []
    start = time.perf_counter()
    done = {"events": 0, "rows": 0}
    tagging = Tagging(known_files=set(loaded.training_files),
                      flag=rename_expression(loaded.config.data.selection, mapping))
    aligner = Aligner(cfg, tagging.known_files) if aligned else None
    inverse = {new: old for old, new in mapping.items()}

    def chunks() -> Iterator[dict[str, Any]]:
        for chunk, raw in iter_raw_chunks(cfg, step_size=step_size or cfg.step_size, tagging=tagging):
            branches = None
            if len(raw):
                _count(counts, raw)
                branches = _predict_chunk(loaded, cfg, raw, notes, inverse, mc_samples=mc_samples,
                                          keep_samples=keep_samples, batch_size=batch_size)
                done["events"] += len(branches["entry"])
                if progress is not None:
                    progress(len(branches["entry"]))
            for block in (aligner.rows(chunk, branches) if aligner is not None
                          else [] if branches is None else [branches]):
                done["rows"] += len(block["entry"])
                if collect:
                    pieces.append(block)
                yield block
        if done["events"] == 0:
            msg = f"{', '.join(cfg.files)}: no event to predict"
            msg += f" after the selection {selection!r}" if selection else ""
            raise DataError(msg)

    with seeded(seed, loaded.device):
        if out is not None:
            title = f"physnn predictions of {loaded.checkpoint}"
            write_tree(out, TREE, chunks(), overwrite=overwrite, compression=compression, title=title,
                       meta=lambda: {**meta, "counts": counts, "notes": notes, "entries": done["rows"]})
        else:
            for _ in chunks():
                pass
    arrays = _concat(pieces) if collect else None
    meta.update(counts=counts, notes=notes, entries=done["rows"])
    return PredictionResult(None if out is None else Path(out), done["events"], time.perf_counter() - start, arrays,
                            meta, counts, done["rows"])


def _count(counts: dict[str, int], raw: Any) -> None:
    """Add a chunk's events per split (``unknown``: not a training file) and outside the training selection."""
    for name, code in [*SPLITS.items(), ("unknown", UNKNOWN)]:
        counts[name] += int(np.count_nonzero(raw.split == code))
    if "in_selection" in raw.observers:
        counts["outside_selection"] = counts.get("outside_selection", 0) + int(
            np.count_nonzero(raw.observers["in_selection"] == 0))


def _concat(pieces: list[dict[str, Any]]) -> dict[str, Any]:
    import awkward as ak

    out = {}
    for key in pieces[0]:
        values = [p[key] for p in pieces]
        out[key] = np.concatenate(values) if isinstance(values[0], np.ndarray) else ak.concatenate(values)
    return out

