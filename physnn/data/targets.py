"""Regression targets as the network sees them: the target itself or its logarithm.

``data.targets: {energy: {transform: log}}`` makes a network regress
``log(energy)``: its errors are then relative, as a calorimeter's resolution
is, instead of an absolute GeV error that is small at 100 GeV and huge at
2 GeV. The task (:class:`physnn.models.tasks.Task`) maps predictions back to
the target's unit.

``data.targets: {energy: {transform: log, baseline: cell_sum}}`` makes it
regress ``log(energy / cell_sum)``: a correction to a first estimate that
each event carries (:func:`baseline_block`), as experiments calibrate a
cluster's raw energy instead of regressing it from scratch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from physnn.config import DataConfig
from physnn.errors import DataError


def target_transforms(cfg: DataConfig) -> list[str]:
    """The transform of each of ``cfg.targets`` (``none`` where no spec says otherwise)."""
    return [cfg.target_specs[t].transform if t in cfg.target_specs else "none" for t in cfg.targets]


def baseline_names(cfg: DataConfig) -> list[str | None]:
    """Each target's baseline column in the order of the run's targets (None: no baseline); empty when no
    target has one. Read from ``cfg.baselines``, which a file without the truth keeps."""
    return list(cfg.baselines.values()) if any(cfg.baselines.values()) else []


def bad_baselines(block: np.ndarray) -> np.ndarray:
    """Per event, whether a baseline (N, K) is unusable: NaN, inf or <= 0 (a ratio and its log need it > 0)."""
    return ~(np.isfinite(block) & (block > 0)).all(axis=1)


def baseline_block(arrays: Any, names: list[str | None], n: int) -> np.ndarray:
    """The baselines (N, K) float32 of the targets: the named columns, 1 for a target without a baseline."""
    out = np.ones((n, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        if name is not None:
            out[:, j] = np.asarray(arrays[name], dtype=np.float32).reshape(n)
    return out


def forward(values: np.ndarray, transforms: list[str], where: str = "", names: list[str] | None = None,
            baseline: np.ndarray | None = None) -> np.ndarray:
    """Targets (N, K) in their unit -> what the network regresses (float64): with ``baseline`` (N, K), the
    target divided by it first."""
    out = np.array(values, dtype=np.float64, copy=True)
    if baseline is not None:
        out /= np.asarray(baseline, dtype=np.float64)
    for j, kind in enumerate(transforms):
        if kind == "log":
            bad = ~(out[:, j] > 0)
            if bad.any():
                name = names[j] if names else str(j)
                msg = (f"{where}: target {name!r} has {int(bad.sum())} values <= 0; transform: log needs a "
                       "positive target")
                raise DataError(msg)
            out[:, j] = np.log(out[:, j])
    return out
