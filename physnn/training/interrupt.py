"""Ctrl-C during training: say what is left, and leave nothing that needs ``overwrite=True`` to retry.

Each finished epoch is in ``last.pt``, so a run interrupted after its first
epoch is resumable (``physnn.train(out=RUN, resume=True)``). A new run
interrupted before any epoch finished holds nothing worth keeping: its files
are removed (and its folder, when the run created it), so the same command
can simply be run again.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from physnn.training.trainer import EpochCallback


class TrainingInterrupted(KeyboardInterrupt):
    """A :class:`KeyboardInterrupt` during training, with what it left behind.

    Its message speaks Python's words (``physnn.train(out=..., resume=True)``, ``overwrite=True``); the command
    line words ``retry`` and ``options`` its own way.

    Attributes
    ----------
    message
        What happened and what is left, without the call that continues the run.
    run_dir
        The run folder.
    epoch
        The epoch (1-based) that was running.
    finished
        The last finished epoch (0: none).
    resumable
        Whether ``run_dir`` holds a ``last.pt`` to resume from.
    retry
        The keyword arguments of :func:`physnn.train` that continue the run (empty: none).
    options
        The keyword arguments the message names as ``name=True`` (e.g. ``overwrite``).
    """

    def __init__(self, message: str, run_dir: Path, epoch: int, finished: int, resumable: bool, *,
                 retry: Mapping[str, Any] | None = None, options: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.run_dir, self.epoch, self.finished, self.resumable = run_dir, epoch, finished, resumable
        self.retry = dict(retry or {})
        self.options = tuple(options)

    def __str__(self) -> str:
        if not self.retry:
            return self.message
        call = ", ".join(f"{name}={value!r}" for name, value in self.retry.items())
        return f"{self.message}; continue with: physnn.train({call})"


class EpochTracker:
    """An ``on_epoch_end`` callback that remembers the last finished epoch, then calls ``then``."""

    def __init__(self, first: int, then: EpochCallback | None) -> None:
        self.finished = first
        self.then = then

    def __call__(self, row: dict[str, Any]) -> None:
        self.finished = int(row["epoch"])  # called after the epoch's checkpoints are written
        if self.then is not None:
            self.then(row)


def interrupted(out: Path, epochs: int, finished: int, *, new: bool, created: Path | None, files: Sequence[str],
                main: bool = True) -> TrainingInterrupted:
    """The exception that reports an interrupted run; cleans up a new run with no finished epoch.

    Parameters
    ----------
    out
        The run folder.
    epochs
        The run's ``train.epochs``.
    finished
        The last finished epoch (from ``last.pt``; 0 when none).
    new
        Whether the run started here (not resumed).
    created
        The topmost folder of ``out``'s path that this run created (None: ``out`` existed); the folders
        this run created are removed too when left empty.
    files
        The run's files in ``out`` (removed with ``plots/`` when nothing finished).
    main
        Whether this process writes (rank 0 under torchrun).
    """
    epoch = min(finished + 1, epochs)
    if finished or not new:
        msg = (f"interrupted in epoch {epoch} of {epochs}: {out} holds a resumable run (last finished epoch "
               f"{finished})")
        return TrainingInterrupted(msg, out, epoch, finished, True, retry={"out": str(out), "resume": True},
                                   options=["resume"])
    if main:
        for name in files:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "plots", ignore_errors=True)
        for folder in [out, *out.parents] if created is not None else []:
            if not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()
            if folder == created:
                break
    gone = f"removed {out}" if not out.exists() else f"removed the run's files from {out}"
    msg = (f"interrupted in epoch {epoch} of {epochs}, before any epoch finished: {gone}; "
           f"run the same command again to start over")
    return TrainingInterrupted(msg, out, epoch, 0, False)
