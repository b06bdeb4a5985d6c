"""Regression targets between the network and their unit, and the baseline a target may be relative to.

A target declared with a ``baseline`` (:class:`~physnn.config.data.TargetSpec`) is regressed as a
correction to it, ``log(target / baseline)`` (``transform: log``) or ``target / baseline``. The
baseline is an input of the model that travels with the batch as the side input ``baseline`` (N, K):
:class:`AttachBaseline`, the last stage of such a model, appends it to the network's outputs, so that
every path from a batch to the outputs (training, validation, the σ calibration, MC dropout, an
ensemble, an exported graph) hands the task the baseline of each event with its outputs, and the task
(:meth:`~physnn.models.tasks.Task.predict`) returns predictions and variances in the target's unit.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from physnn.models.base import SideInput
from physnn.models.mc_dropout import regression_summary


class AttachBaseline(SideInput):
    """The last stage of a model whose targets are relative to a baseline: the network's outputs, then the
    batch's ``baseline`` (N, K), in the target's unit; in float32 (under autocast the network's outputs are
    bfloat16, which would round a 57.3 GeV baseline to 57.25)."""

    def forward(self, x: torch.Tensor, side: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([x.float(), side["baseline"].float()], dim=-1)


def split_outputs(out: torch.Tensor, width: int, relative: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The network's outputs (..., width) and, for a model with :class:`AttachBaseline`, the baselines."""
    if not relative:
        return out, None
    return out[..., :width], out[..., width:]


def to_network(target: torch.Tensor, transforms: list[str], baseline: torch.Tensor | None) -> torch.Tensor:
    """Targets in their unit (N, K) -> what the network regresses: divided by the baseline, ``log`` columns
    their logarithm."""
    if baseline is not None:
        target = target / baseline.to(target.dtype)
    if "log" not in transforms:
        return target
    logged = torch.tensor([t == "log" for t in transforms], device=target.device)
    return torch.where(logged, target.clamp(min=1e-30).log(), target)


def to_units(mean: torch.Tensor, var: torch.Tensor | None, transforms: list[str],
             baseline: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Mean (and variance) of the network's Gaussian -> in the target's unit.

    A ``log`` target's Gaussian is a log-normal: the prediction is its median exp(μ) (its mean exp(μ + σ²/2)
    would move every prediction up by the resolution itself), its variance (exp(σ²) - 1) exp(2μ + σ²). A
    target relative to a baseline b is b times that: its prediction b·exp(μ) (b·μ without ``log``), its
    variance b² times the ratio's.
    """
    result = {"mean": mean} if var is None else {"mean": mean, "var": var}
    if "log" in transforms:
        logged = torch.tensor([t == "log" for t in transforms], device=mean.device)
        result["mean"] = torch.where(logged, torch.exp(mean), mean)
        if var is not None:
            result["var"] = torch.where(logged, torch.expm1(var) * torch.exp(2 * mean + var), var)
    if baseline is not None:
        b = baseline.to(mean.dtype)
        result["mean"] = result["mean"] * b
        if var is not None:
            result["var"] = result["var"] * b**2
    return result


def summary_in_units(passes: Mapping[str, torch.Tensor], central: Mapping[str, torch.Tensor] | None,
                     scale: torch.Tensor, transforms: list[str], weight: torch.Tensor | None = None
                     ) -> dict[str, torch.Tensor]:
    """:func:`~physnn.models.mc_dropout.regression_summary` of the network's Gaussians (``Task.predict`` with
    ``units=False``: ``mean``, ``var`` and, relative to a baseline, each event's ``baseline``), mapped to the
    target's unit once, at the central value, with each event's baseline."""
    passes = dict(passes)
    baseline = passes.pop("baseline", None)
    centre = None if central is None else {k: v for k, v in central.items() if k != "baseline"}
    base = None if baseline is None else baseline[0]  # the same in every pass

    def in_units(mean: torch.Tensor, var: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return to_units(mean, var, transforms, base)

    return regression_summary(passes, centre, scale, in_units, weight)
