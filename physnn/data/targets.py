"""Regression targets as the network sees them: the target itself or its logarithm.

``data.targets: {energy: {transform: log}}`` makes a network regress
``log(energy)``: its errors are then relative, as a calorimeter's resolution
is, instead of an absolute GeV error that is small at 100 GeV and huge at
2 GeV. The task (:class:`physnn.models.tasks.Task`) maps predictions back to
the target's unit.
"""

from __future__ import annotations

import numpy as np

from physnn.config import DataConfig
from physnn.errors import DataError


def target_transforms(cfg: DataConfig) -> list[str]:
    """The transform of each of ``cfg.targets`` (``none`` where no spec says otherwise)."""
    return [cfg.target_specs[t].transform if t in cfg.target_specs else "none" for t in cfg.targets]


def forward(values: np.ndarray, transforms: list[str], where: str = "", names: list[str] | None = None) -> np.ndarray:
    """Targets (N, K) in their unit -> what the network regresses (float64)."""
    out = np.array(values, dtype=np.float64, copy=True)
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
