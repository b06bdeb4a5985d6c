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
names. A file of data needs only the model's inputs: the truth and
observers it lacks are left out and a training selection that reads an
absent branch is not applied (:mod:`physnn.inference.plan`; ``left_out``
and ``not_applied`` in ``physnn_meta``). Per event:

==========================  ===================================================
classification              ``prob[K]`` (mean class probabilities), ``pred``
                            (argmax), ``score`` (binary only: P(signal),
                            the data config's ``signal`` class, default
                            class 1; ``score_of`` in ``physnn_meta``);
                            with MC dropout or an ensemble also
                            ``prob_std[K]``/``score_std`` (the spread)
regression, target ``t``    ``t_pred``, the deterministic pass also with MC
                            dropout (an ensemble: its members' mean in the
                            network's space, :mod:`physnn.models.mc_dropout`);
                            ``t_aleatoric`` (Gaussian heads: the
                            predicted σ of the deterministic pass, raw;
                            runs calibrated before 2026-12-07 with MC
                            dropout: the mean of the T variances);
                            with MC dropout ``t_epistemic``
                            (the spread of the T means, raw; of an ensemble:
                            of its members' means, times T with MC dropout,
                            :mod:`physnn.models.ensemble`); ``t_std`` the
                            calibrated total error bar,
                            s_t x sqrt(aleatoric² + (rho_t epistemic)²)
                            (Kendall & Gal 2017), s_t the target's σ scale
                            and rho_t the epistemic part's weight, fitted on
                            the validation split
                            (:mod:`physnn.training.calibration`;
                            ``sigma_scale`` and ``epistemic_weight`` in
                            ``physnn_meta``)
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
                            events; absent when the file lacks a branch
                            the selection reads)
``aligned``                 ``selected`` (bool: the event was predicted)
a run with a domain         ``ood_score`` (the largest excess of an input
                            quantity beyond the training interval, 0 inside),
                            ``feature_score`` (the features' Mahalanobis d²
                            over its cut, <= 1 inside) and ``in_domain``
                            (:mod:`physnn.data.domain`,
                            :mod:`physnn.models.feature_domain`)
``conformal``               ``t_low``, ``t_high`` (:mod:`physnn.models.conformal`)
==========================  ===================================================

A ``physnn_meta`` string (JSON, :mod:`physnn.io.metadata`) next to the tree
records the physnn version, the run's config hash, the seed, the input files
and checkpoint, the classes/targets (with the names the data config gave the
classes, ``class_names``, and the index of its ``signal``; a binary classifier's
``score_of``, the class whose probability ``score`` is, and its ``score_index``) and the settings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from physnn.config import DataConfig
from physnn.data.dataset import Tagging
from physnn.data.split import SPLITS, UNKNOWN
from physnn.errors import ConfigError, DataError
from physnn.inference.align import Aligner
from physnn.inference.branch_map import parse_mapping
from physnn.inference.loading import LoadedRun, load_run
from physnn.inference.outputs import truth_branches
from physnn.inference.pipeline import Sink, domain_branches, domain_meta, drain, read_blocks, run_model
from physnn.inference.plan import plan_prediction
from physnn.io.files import expand_files
from physnn.io.metadata import provenance
from physnn.io.write import check_output
from physnn.models.mc_dropout import check_samples, epistemic_weight, seeded

TREE = "predictions"
__all__ = ["TREE", "PredictionResult", "predict"]


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
    left_out
        The run's truth and observers the input lacks, left out of the output (``label``, ``weight``,
        ``targets``, ``observers``, ...; :class:`~physnn.inference.plan.PredictionPlan`).
    not_applied
        The training selection and defines that read a branch the input lacks (``selection``, ``define``).
    """

    path: Path | None
    events: int
    seconds: float
    arrays: dict[str, np.ndarray] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    entries: int = 0
    left_out: dict[str, Any] = field(default_factory=dict)
    not_applied: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds > 0 else float("inf")


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
    # the names the data config gave the classes, and the signal's index: evaluate names and judges them so
    meta["class_names"], meta["signal"] = loaded.config.data.class_labels(), loaded.config.data.signal_index()
    if loaded.task.kind == "binary":  # score is P(this class): its name (or label value) and index
        meta["score_index"] = loaded.task.signal
        meta["score_of"] = (meta["class_names"] or loaded.task.classes or [0, 1])[loaded.task.signal]
    meta["members"] = len(loaded.models)  # > 1: an ensemble, its members' spread in the error bars
    meta.update(domain_meta(loaded))  # counts["out_of_domain"] says how many events lie outside it
    if loaded.task.calibrated_error_bars:  # the factor applied to each target's total error bar t_std
        meta["sigma_scale"] = dict(zip(loaded.task.targets,
                                       loaded.task.sigma_scales(settings["mc_samples"] > 0).tolist(), strict=True))
        rho = epistemic_weight(loaded.task.sigma_scale, settings["mc_samples"] > 0)
        if rho is not None:  # the epistemic part's weight in t_std (absent: 1, runs calibrated before it)
            meta["epistemic_weight"] = dict(zip(loaded.task.targets, rho.tolist(), strict=True))
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
    conformal: float | None = None,
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
    conformal
        Regression: also write ``t_low`` and ``t_high``, the split-conformal
        interval at this coverage level (one of
        :data:`physnn.models.conformal.LEVELS`), fitted on the validation
        split for this prediction mode; guaranteed for events exchangeable
        with the validation events only (:mod:`physnn.models.conformal`).

    Returns
    -------
    PredictionResult

    Examples
    --------
    >>> res = physnn.predict("runs/epi", "showers.root", mc_samples=50, out="preds.root")  # doctest: +SKIP
    >>> res.arrays is None  # doctest: +SKIP
    True
    """
    _check_settings(mc_samples, keep_samples, batch_size)
    if out is not None:
        check_output(out, overwrite=overwrite)
    loaded = run if isinstance(run, LoadedRun) else load_run(run, device=device)
    loaded.task.check_command("predict", loaded.checkpoint.parent)
    if conformal is not None:
        _check_conformal(loaded, conformal, mc_samples)
    mapping = parse_mapping(mapping)
    plan = plan_prediction(loaded.config.data, files, tree, selection, mapping=mapping, image_shape=loaded.io.image)
    cfg = plan.config
    files = expand_files(cfg.files)
    meta = _meta(loaded, cfg, files, mapping, seed=seed, selection=selection, mc_samples=mc_samples, aligned=aligned,
                 conformal=conformal) | plan.meta() | {"tree": plan.tree}
    tally = _Tally(dict.fromkeys([*SPLITS, "unknown"], 0), plan.notes)
    tagging = Tagging(known_files=set(loaded.training_files), flag=plan.flag)
    blocks = _blocks(loaded, cfg, tagging, tally, mc_samples=mc_samples, keep_samples=keep_samples,
                     conformal=conformal, batch_size=batch_size, step_size=step_size, progress=progress,
                     aligned=aligned,
                     inverse={new: old for old, new in mapping.items()})
    sink = Sink(out, TREE, out is None if collect is None else collect, overwrite=overwrite, compression=compression,
                title=f"physnn predictions of {loaded.checkpoint}",
                meta=lambda: {**meta, "counts": tally.counts, "notes": tally.notes, "entries": tally.rows})
    start = time.perf_counter()
    with seeded(seed, loaded.device):
        _, arrays = drain(blocks, sink)
    meta.update(counts=tally.counts, notes=tally.notes, entries=tally.rows)
    return PredictionResult(None if out is None else Path(out), tally.events, time.perf_counter() - start, arrays,
                            meta, tally.counts, tally.rows, plan.left_out, plan.not_applied)


def _check_conformal(loaded: LoadedRun, level: float, mc_samples: int) -> None:
    """Refuse ``conformal`` for a classifier, a level the run did not fit, or a run without quantiles."""
    from physnn.models.conformal import check_level

    if not loaded.task.calibrated_error_bars:
        msg = f"--conformal: intervals are for regression runs; {loaded.checkpoint} is {loaded.task.describe()}"
        raise ConfigError(msg)
    check_level(level, loaded.task.conformal.get("mc" if mc_samples > 0 else "deterministic"),
                str(loaded.checkpoint))


def _check_settings(mc_samples: int, keep_samples: bool, batch_size: int) -> None:
    if mc_samples != 0:
        check_samples(mc_samples)
    if keep_samples and mc_samples == 0:
        msg = "--keep-samples needs --mc-samples T"
        raise ConfigError(msg)
    if batch_size <= 0:
        msg = f"--batch-size must be positive, got {batch_size}"
        raise ConfigError(msg)


@dataclass
class _Tally:
    """What a prediction has done so far: events per split, notes, events predicted and rows written."""

    counts: dict[str, int]
    notes: list[str]
    events: int = 0
    rows: int = 0


def _blocks(loaded: LoadedRun, cfg: DataConfig, tagging: Tagging, tally: _Tally, *, mc_samples: int,
            keep_samples: bool, conformal: float | None, batch_size: int, step_size: str | int | None,
            progress: Callable[[int], Any] | None,
            aligned: bool, inverse: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """The predictions file's branch blocks: truth and observers, then :meth:`~physnn.models.tasks.Task.
    prediction_branches` of the model's summary; with ``aligned``, a row for every input entry."""
    task = loaded.task
    aligner = Aligner(cfg, tagging.known_files) if aligned else None
    summarize = partial(task.summarize, keep_samples=keep_samples, mc=mc_samples > 0, conformal=conformal)
    for block in read_blocks(loaded, cfg, step_size=step_size, tagging=tagging, notes=tally.notes):
        branches = None
        if block.td is not None:
            _count(tally.counts, block.raw)
            branches = truth_branches(task, cfg, loaded.transform, block.raw, block.td, inverse)
            summary = run_model(loaded, block.td, summarize, mc_samples=mc_samples, batch_size=batch_size,
                                central=True)
            branches.update(task.prediction_branches(summary))
            branches.update(domain_branches(loaded, block.td, tally.counts))
            tally.events += len(block.td)
            if progress is not None:
                progress(len(block.td))
        rows = aligner.rows(block.chunk, branches) if aligner is not None else [] if branches is None else [branches]
        for row_block in rows:
            tally.rows += len(row_block["entry"])
            yield row_block
    if tally.events == 0:  # raised inside the writer's loop: nothing is left at the output path
        msg = f"{', '.join(cfg.files)}: no event to predict"
        msg += f" after the selection {cfg.selection!r}" if cfg.selection else ""
        raise DataError(msg)


def _count(counts: dict[str, int], raw: Any) -> None:
    """Add a chunk's events per split (``unknown``: not a training file) and outside the training selection."""
    for name, code in [*SPLITS.items(), ("unknown", UNKNOWN)]:
        counts[name] += int(np.count_nonzero(raw.split == code))
    if "in_selection" in raw.observers:
        counts["outside_selection"] = counts.get("outside_selection", 0) + int(
            np.count_nonzero(raw.observers["in_selection"] == 0))
