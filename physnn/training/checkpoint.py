"""Checkpoints: weights + resolved config + transforms + physnn version, no pickled code.

A checkpoint is a dict of tensors and plain Python types, written atomically
(temporary file, then rename) and read with ``torch.load(weights_only=True)``,
which refuses anything that would run code. It holds:

- ``physnn``: the version that wrote it, ``format``: :data:`FORMAT`;
- ``config``: the resolved run config (data, model, task, train);
- ``transform``, ``task``, ``io``: the data transform, the task (classes,
  target scaling) and the model's input/output shapes;
- ``model``: the state dict; ``epoch``, ``history``, ``best``;
- in ``last.pt`` also ``optimizer``, ``scheduler``, ``rng`` and
  ``early_stopping`` so that ``--resume`` continues exactly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from physnn._version import __version__
from physnn.errors import InputFileError
from physnn.io.write import atomic_path

FORMAT = "physnn-checkpoint-1"
BEST, LAST = "best.pt", "last.pt"
#: The files physnn writes into a run folder (besides ``plots/``), which a new run in the folder replaces.
RUN_FILES = ("config.yaml", "transform.json", "metrics.csv", "metrics.jsonl", BEST, LAST)


def clear_run_files(out: Path) -> None:
    """Remove physnn's files (:data:`RUN_FILES`) and ``plots/`` from a run folder; nothing else in it."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "plots", ignore_errors=True)


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``payload`` (plus version and format) atomically to ``path``."""
    data = {"format": FORMAT, "physnn": __version__, **payload}
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(data, tmp)
    return Path(path)


def resolve_checkpoint(source: str | os.PathLike, which: str = BEST) -> Path:
    """A checkpoint file from a file path or a run folder (``best.pt`` by default)."""
    path = Path(source)
    if path.is_dir():
        candidate = path / which
        if not candidate.is_file():
            msg = f"{path}: no {which} in this run folder (is it a physnn run? has an epoch finished?)"
            raise InputFileError(msg)
        return candidate
    if not path.exists():
        msg = f"{path}: no such checkpoint or run folder"
        raise InputFileError(msg)
    return path


def load_checkpoint(source: str | os.PathLike, which: str = BEST) -> dict[str, Any]:
    """Load a physnn checkpoint safely (``weights_only=True``) on the CPU.

    Parameters
    ----------
    source
        A ``.pt`` file or a run folder.
    which
        File taken from a run folder: ``best.pt`` or ``last.pt``.

    Raises
    ------
    InputFileError
        If the file is missing, not a torch file, holds pickled code, or is
        not a physnn checkpoint.
    """
    path = resolve_checkpoint(source, which)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        msg = f"{path}: not a readable physnn checkpoint ({first[:160]})"
        raise InputFileError(msg) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        msg = f"{path}: not a physnn checkpoint (expected format {FORMAT!r})"
        raise InputFileError(msg)
    data["path"] = str(path)
    return data
