"""Predictions aligned entry by entry with the input when a selection is applied (``physnn predict --aligned``).

By default ``predict --selection CUT`` writes the selected events only, and
``entry`` says which input entry each one is. With ``aligned`` every input
entry gets a row, so the output is a ROOT friend of the input
(``t->AddFriend("pred=predictions", "preds.root")``): ``entry`` is the row
number, ``split`` the event's training split as usual, ``selected`` (bool)
is true for the events predicted (those passing the selection and, with
``nonfinite: drop``, having finite inputs), and every other branch holds a
fill value outside the selection: NaN for floating-point branches, -1 for
signed integers (``pred``, ``true_class``, an integer label or observer,
``in_selection``), 0 for unsigned ones and booleans, an empty list for
jagged ones, an empty string for strings.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from physnn.config import DataConfig
from physnn.data.dataset import event_split
from physnn.io.read import Chunk

__all__ = ["Aligner", "fill_like", "spread"]


def fill_like(value: Any, n: int) -> Any:
    """``n`` rows of the fill value of ``value``'s type (see the module docs)."""
    if isinstance(value, np.ndarray):
        kind = value.dtype.kind
        fill: Any = np.nan if kind in "fc" else -1 if kind == "i" else 0 if kind in "ub" else ""
        return np.full((n, *value.shape[1:]), fill, dtype=value.dtype)
    import awkward as ak

    if value.ndim > 1:  # jagged: empty lists of the same type
        return ak.unflatten(ak.flatten(value, axis=1)[:0], np.zeros(n, dtype=np.int64))
    return fill_like(ak.to_numpy(value), n)


def _take(value: Any, extra: Any, index: np.ndarray) -> Any:
    if isinstance(value, np.ndarray):
        return np.concatenate([value, extra])[index]
    import awkward as ak

    return ak.concatenate([value, extra])[index]


def spread(branches: dict[str, Any], chunk: Chunk, split: np.ndarray) -> dict[str, Any]:
    """One row per entry of ``chunk``: the predicted events (``branches``) at their entries, fills elsewhere."""
    first = chunk.offset + chunk.start
    n = chunk.stop - chunk.start
    positions = np.asarray(branches["entry"], dtype=np.int64) - first
    index = np.full(n, len(positions), dtype=np.int64)  # the fill row after the predicted ones
    index[positions] = np.arange(len(positions))
    selected = np.zeros(n, dtype=bool)
    selected[positions] = True
    out: dict[str, Any] = {"entry": np.arange(first, first + n, dtype=np.int64), "split": split.astype(np.int32),
                           "selected": selected}
    for key, value in branches.items():
        if key not in out:
            out[key] = _take(value, fill_like(value, 1), index)
    return out


class Aligner:
    """Turns the predicted events of each chunk into rows for all its entries.

    Chunks before the first predicted event wait (their rows need the
    branches' types); each chunk's rows go out as one block.

    Parameters
    ----------
    cfg
        The prediction's data config (for the split).
    known_files
        The training files' identities; events of other files get split -1.
    """

    def __init__(self, cfg: DataConfig, known_files: Collection[str] | None) -> None:
        self.cfg = cfg
        self.known_files = known_files
        self.template: dict[str, Any] | None = None
        self.pending: list[Chunk] = []

    def rows(self, chunk: Chunk, branches: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The blocks to write after ``chunk``; ``branches`` None when no event of it was predicted."""
        if branches is None and self.template is None:
            self.pending.append(chunk)
            return []
        if self.template is None:
            assert branches is not None
            self.template = {k: v[:0] for k, v in branches.items()}
        blocks = [spread(self.template, c, self._split(c)) for c in self.pending]
        self.pending = []
        blocks.append(spread(self.template if branches is None else branches, chunk, self._split(chunk)))
        return blocks

    def _split(self, chunk: Chunk) -> np.ndarray:
        entry = chunk.offset + np.arange(chunk.start, chunk.stop, dtype=np.int64)
        return event_split(chunk, entry, self.cfg, self.known_files)
