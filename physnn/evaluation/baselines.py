"""Baselines by name: what a physicist would estimate without the network (``evaluate(..., baseline="cell-sum")``).

A registered :class:`Baseline` computes its estimate of a target for every row of a predictions file,
from the files the predictions were made on (the run's data config, read back from its run folder, says
which branches) and the truth of the events the run trained on (split 0 inside its training selection,
:func:`training_rows`) of the predictions file, so that no judged event tunes it. The estimates then go
where hand-made ones go (``evaluate(baselines=...)``): binned and
compared with the model, per group with ``by``.

- ``cell-sum``: the sum of the image cells times a factor fitted by least squares on the training
  split, Σ E·S / Σ S² (E the true energy, S the cell sum): one factor for all events, or one per group
  when the events are grouped (``by``), so that each group's sum is unbiased on average.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from physnn.errors import ConfigError, DataError
from physnn.evaluation.run_config import run_data_config

__all__ = ["BASELINES", "Baseline", "BaselineInput", "calibrate", "get_baselines", "register_baseline",
           "training_rows"]


@dataclass(frozen=True)
class BaselineInput:
    """What a baseline may read: the predictions file, its rows (``arrays``), its metadata and run folder, the
    target it estimates, and the group of each row (None: not grouped)."""

    predictions: str
    arrays: Mapping[str, np.ndarray]
    meta: Mapping[str, Any]
    run_dir: Path | None
    target: str
    groups: np.ndarray | None
    by: str | None


@dataclass(frozen=True)
class Baseline:
    """A named baseline: ``label`` in tables and plots, ``what`` in one line, the target ``kinds`` it estimates,
    and ``compute`` giving one estimate per row of the predictions and a description of how it was made."""

    name: str
    label: str
    what: str
    kinds: tuple[str, ...]
    compute: Callable[[BaselineInput], tuple[np.ndarray, dict[str, Any]]]


#: name -> baseline (:func:`register_baseline`).
BASELINES: dict[str, Baseline] = {}


def register_baseline(baseline: Baseline) -> Baseline:
    """Make ``baseline`` available by its name."""
    BASELINES[baseline.name] = baseline
    return baseline


def get_baselines(names: str | Sequence[str] | None) -> list[Baseline]:
    """The baselines named (one name or several); an unknown name is an error that lists the known ones."""
    if names is None:
        return []
    out = []
    for name in [names] if isinstance(names, str) else list(names):
        if name not in BASELINES:
            known = "; ".join(f"{b.name} ({b.what})" for b in BASELINES.values())
            msg = f"baseline {name!r} is unknown; the known baselines: {known}"
            raise ConfigError(msg)
        out.append(BASELINES[name])
    return out


def calibrate(estimate: np.ndarray, true: np.ndarray, train: np.ndarray,
              groups: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """``estimate`` times the least-squares factor Σ true·estimate / Σ estimate² of the ``train`` rows: one for
    all, or one per value of ``groups``. Returns the calibrated estimate and the factors (key ``all``, or each
    group value as a string)."""
    estimate, true = np.asarray(estimate, dtype=np.float64), np.asarray(true, dtype=np.float64)
    keys = np.zeros(len(estimate), np.int64) if groups is None else np.asarray(groups)
    out = np.full(len(estimate), np.nan)
    factors: dict[str, float] = {}
    for value in np.unique(keys):
        rows = keys == value
        fit = rows & train & np.isfinite(true) & np.isfinite(estimate)
        name = "all" if groups is None else str(value.item() if hasattr(value, "item") else value)
        denominator = float(np.sum(estimate[fit] ** 2))
        if denominator <= 0:
            where = "" if groups is None else f" of group {name}"
            msg = f"cannot calibrate: no training event{where} with a non-zero estimate (split 0 of the predictions)"
            raise DataError(msg)
        factors[name] = float(np.sum(true[fit] * estimate[fit]) / denominator)
        out[rows] = factors[name] * estimate[rows]
    return out, factors


def _sum_cells(values: Any) -> np.ndarray:
    """The sum over all cells of each event (regular or jagged arrays)."""
    import awkward as ak

    array = ak.Array(values) if not isinstance(values, ak.Array) else values
    while array.ndim > 1:
        array = ak.sum(array, axis=-1)
    return ak.to_numpy(array).astype(np.float64)


def cell_sums(inp: BaselineInput) -> np.ndarray:
    """The sum of the image cells of each row of the predictions, read from the files they were made on."""
    from physnn.io.read import read

    data = run_data_config(inp.meta, inp.run_dir)
    if data is None or data.images is None:
        msg = (f"{inp.predictions}: the cell sum needs the run's image branches: no config.yaml of the run that "
               f"made these predictions in {inp.run_dir or 'the checkpoint folder'} (give the run folder)")
        raise ConfigError(msg)
    mapping = inp.meta.get("mapping") or {}
    branches = [mapping.get(b, b) for b in data.images.branches]
    files = list(inp.meta.get("files") or [])
    missing = [f for f in files if not Path(f).is_file()]
    if not files or missing:
        msg = (f"{inp.predictions}: the cell sum reads the cells from the files the predictions were made on; "
               f"{', '.join(missing) or 'none is named'}: no such file")
        raise DataError(msg)
    cells = read(files, branches, tree=inp.meta.get("tree"))
    total = np.sum([_sum_cells(cells[b]) for b in branches], axis=0)
    return total[np.asarray(inp.arrays["entry"], dtype=np.int64)]


def training_rows(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """The rows of a predictions file the run trained on: split 0, inside the training selection
    (``in_selection`` 1, where the run had one) and predicted (``selected`` 1, where ``predict --aligned``
    kept every entry)."""
    train = np.asarray(arrays["split"]) == 0
    for flag in ("in_selection", "selected"):
        if flag in arrays:
            train &= np.asarray(arrays[flag]).astype(bool)
    return train


def _cell_sum(inp: BaselineInput) -> tuple[np.ndarray, dict[str, Any]]:
    arrays = inp.arrays
    train = training_rows(arrays)
    if not train.any():
        msg = (f"{inp.predictions}: the cell sum is calibrated on the training split, and these predictions hold "
               "no training event (split 0): predict on the run's training files")
        raise DataError(msg)
    values, factors = calibrate(cell_sums(inp), arrays[inp.target], train, inp.groups)
    per = "one factor for all events" if inp.groups is None else f"one factor per {inp.by} group"
    text = ", ".join(f"{k} {v:.4g}" for k, v in factors.items()) if inp.groups is not None else \
        f"{factors['all']:.4g}"
    return values, {"factors": factors, "per": "all" if inp.groups is None else inp.by, "training_events":
                    int(train.sum()), "description": f"{inp.target} = factor × sum of the image cells, {per} "
                                                     f"({text}), least squares on the {int(train.sum()):,} "
                                                     "training-split events of the predictions"}


register_baseline(Baseline("cell-sum", "calibrated cell sum", "the sum of the image cells, calibrated on the "
                           "training split", ("energy",), _cell_sum))
