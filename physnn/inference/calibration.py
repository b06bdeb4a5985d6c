"""Recalibration of regression error bars on the validation split (σ scaling).

A Gaussian head trained with dropout learns a variance that also absorbs the
dropout noise of its own mean, so its error bars come out too wide when the
data's resolution is small compared with the target's range (a calorimeter:
a few % of 1-100 GeV). The standard remedy (Levi et al. 2019, "Evaluating
and calibrating uncertainty prediction in regression tasks"; Kuleshov et al.
2018) is one scale factor per prediction mode, fitted on held-out data so
that the ±1σ interval covers 68.27% of the events: ``s`` is the 68.27%
quantile of ``|pred - true| / σ``. (A quantile, not the RMS of the pulls, so
that a few events in non-Gaussian tails, e.g. pions that leak, do not widen
everyone's error bar.)
It is fitted on the validation split, stored in the task, applied by
``predict`` and judged on the test split by ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from physnn.inference.mc_dropout import mc_forward, set_dropout
from physnn.models.base import StagedModel
from physnn.models.tasks import ONE_SIGMA, Task

CALIBRATION_SAMPLES = 30


@torch.no_grad()
def fit_sigma_scale(model: StagedModel, task: Task, val: Mapping[str, torch.Tensor], *, device: torch.device,
                    batch_size: int = 1024, samples: int = CALIBRATION_SAMPLES) -> dict[str, float]:
    """Scale factors for the deterministic (aleatoric) and MC-dropout (total) σ of each target, averaged."""
    n = len(val["target"])
    det, mc = [], []
    for lo in range(0, n, batch_size):
        batch = {k: v[lo:lo + batch_size].to(device) for k, v in val.items() if k not in ("label", "weight")}
        set_dropout(model, False)
        det.append(model(batch).float().cpu())
        mc.append(mc_forward(model, batch, samples).float().cpu())
    set_dropout(model, False)
    target = val["target"].double()
    scales: dict[str, float] = {}
    pred = task.predict(torch.cat(det))
    if "var" in pred:
        scales["deterministic"] = _scale(target - pred["mean"], pred["var"])
    runs = task.predict(torch.cat(mc, dim=1))
    var = runs["mean"].var(0)
    if "var" in runs:
        var = var + runs["var"].mean(0)
    if bool((var > 0).all()):
        scales["mc"] = _scale(target - runs["mean"].mean(0), var)
    return scales


def _scale(residual: torch.Tensor, var: torch.Tensor) -> float:
    pulls = (residual.double().abs() / var.double().sqrt()).flatten()
    return float(torch.quantile(pulls, ONE_SIGMA))
