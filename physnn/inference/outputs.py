"""The output branches of one block of predicted events (:func:`physnn.inference.predict.predict`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from physnn.config import DataConfig
from physnn.data.dataset import TensorData
from physnn.data.transform import Transform
from physnn.models.base import StagedModel
from physnn.models.mc_dropout import mc_forward, regression_summary, set_dropout
from physnn.models.tasks import Task
from physnn.training.device import autocast

__all__ = ["forward", "output_branches", "truth_branches"]


def forward(model: StagedModel, device: torch.device, td: TensorData, samples: int, batch_size: int) -> torch.Tensor:
    """Outputs (T, N, O) on the CPU (T = 1 without MC dropout)."""
    outs = []
    for batch in td.batches(batch_size):
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()
                 if k not in ("label", "target", "weight")}
        with autocast(device, device.type == "cuda"):
            if samples > 0:
                out = mc_forward(model, batch, samples)
            else:
                set_dropout(model, False)
                with torch.no_grad():
                    out = model(batch)[None]
        outs.append(out.float().cpu())
    return torch.cat(outs, dim=1)


def output_branches(task: Task, outs: torch.Tensor, *, mc: bool, keep_samples: bool) -> dict[str, np.ndarray]:
    """The prediction branches of one chunk from raw outputs (T, N, O)."""
    pred = task.predict(outs)
    out: dict[str, np.ndarray] = {}
    if task.is_classification:
        prob = pred["prob"]
        mean = prob.mean(0)
        out["prob"] = mean.numpy().astype(np.float32)
        out["pred"] = mean.argmax(1).numpy().astype(np.int32)
        if task.kind == "binary":
            out["score"] = out["prob"][:, 1].copy()
        if mc:
            std = prob.std(0)
            out["prob_std"] = std.numpy().astype(np.float32)
            if task.kind == "binary":
                out["score_std"] = out["prob_std"][:, 1].copy()
        if keep_samples and mc:
            if task.kind == "binary":
                out["score_samples"] = np.ascontiguousarray(prob[..., 1].T.numpy(), dtype=np.float32)
            else:
                out["prob_samples"] = np.ascontiguousarray(prob.permute(1, 0, 2).numpy(), dtype=np.float32)
        return out
    summary = regression_summary(pred, task.sigma_scales(mc))
    for j, name in enumerate(task.targets):
        for key, value in summary.items():  # pred, aleatoric, epistemic (raw), std (calibrated total)
            out[f"{name}_{key}"] = value[:, j].numpy().astype(np.float32)
        if keep_samples and mc:
            out[f"{name}_samples"] = np.ascontiguousarray(pred["mean"][..., j].T.numpy(), dtype=np.float32)
    return out


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
