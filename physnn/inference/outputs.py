"""The truth and bookkeeping branches of one block of events (``entry``, ``split``, truth, observers).

The model's own branches come from its task (:meth:`~physnn.models.tasks.Task.prediction_branches`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from physnn.config import DataConfig
from physnn.data.dataset import TensorData
from physnn.data.transform import Transform
from physnn.models.tasks import Task

__all__ = ["truth_branches"]


def truth_branches(task: Task, cfg: DataConfig, transform: Transform, raw: Any, td: TensorData,
                    inverse: Mapping[str, str]) -> dict[str, Any]:
    """``entry``, ``split`` and the truth and observers present, under the run's names (``inverse``: the
    file's name -> the run's)."""
    out: dict[str, Any] = {"entry": td.entry.astype(np.int64), "split": raw.split.astype(np.int32)}

    def put(name: str, value: Any) -> None:
        out.setdefault(inverse.get(name, name), value)

    if "in_selection" in raw.observers:
        out["in_selection"] = raw.observers["in_selection"]
    if raw.labels is not None and cfg.label is not None:
        put(cfg.label, raw.labels)
        if task.is_classification:
            codes = transform.encode_labels(raw.labels, ",".join(cfg.files), cfg.label, unknown=-1)
            out["true_class"] = codes.astype(np.int32)
    if raw.targets is not None:
        for j, name in enumerate(cfg.targets):
            put(name, raw.targets[:, j])
    if raw.weight is not None and cfg.weight is not None:
        put(cfg.weight, raw.weight)
    for name, value in raw.observers.items():
        put(name, value)
    return out
