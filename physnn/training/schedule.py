"""The optimiser and the learning-rate schedule of a run, and how a schedule is continued on ``--resume``.

Extending a run (``physnn train --out RUN --resume --set train.epochs=N``)
*stretches* the schedules whose shape depends on the number of epochs
(``cosine``, ``onecycle``): from the next epoch on, the learning rate is the
one a run planned with ``N`` epochs from the start would have there, so the
run ends at ``min_lr`` after epoch ``N`` as the config now says (a finished
cosine run at ``min_lr`` rises again to where the longer cosine is). The
other schedules (``step``, ``exponential``, ``plateau``) do not depend on the
number of epochs and simply go on.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from physnn.models.base import StagedModel
from physnn.training.config import OptimizerConfig, TrainConfig

#: the scheduler entries that hold the planned length of a schedule
LENGTH_KEYS = ("T_max", "total_steps", "_schedule_phases")


def make_optimizer(model: nn.Module, cfg: TrainConfig, transferred: bool, *,
                   settings: OptimizerConfig | None = None) -> torch.optim.Optimizer:
    """The configured optimiser of ``model``'s trainable parameters.

    The feature extractor gets ``features_lr`` x lr when fine-tuned;
    ``settings`` replaces ``cfg.optimizer`` (the critic of a GAN).
    """
    o = settings or cfg.optimizer
    feature_ids = set()
    if transferred and isinstance(model, StagedModel) and cfg.features_lr != 1.0:
        feature_ids = {id(p) for m in model.feature_modules() for p in m.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in feature_ids], "lr": o.lr}]
    if feature_ids:
        groups.append({"params": [p for p in trainable if id(p) in feature_ids], "lr": o.lr * cfg.features_lr})
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.RMSprop(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> Any:
    """The configured learning-rate scheduler, or None."""
    s = cfg.scheduler
    sched = torch.optim.lr_scheduler
    if s.name == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=s.min_lr)
    if s.name == "step":
        return sched.StepLR(opt, step_size=s.step_size, gamma=s.gamma)
    if s.name == "exponential":
        return sched.ExponentialLR(opt, gamma=s.gamma)
    if s.name == "plateau":
        # stepped with the monitor's score (lower is better), whatever the metric's direction
        return sched.ReduceLROnPlateau(opt, mode="min", factor=s.factor, patience=s.patience, min_lr=s.min_lr)
    if s.name == "onecycle":
        return sched.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                total_steps=cfg.epochs * max(steps_per_epoch, 1))
    return None


def restore_scheduler(sched: Any, saved: dict[str, Any]) -> None:
    """Load a scheduler's saved state, stretched to the length ``sched`` was built for.

    ``sched`` is built from the (possibly extended) config; the saved state
    gives its position. When the planned length differs from the saved one
    (a run extended with ``--set train.epochs=N``), the learning rates are set
    to those of the longer schedule at that position; otherwise the state is
    loaded unchanged, so that a resumed run equals an uninterrupted one.
    """
    stretched = any(key in saved and saved[key] != getattr(sched, key) for key in LENGTH_KEYS[:2])
    if not stretched:
        sched.load_state_dict(saved)
        return
    sched.load_state_dict({k: v for k, v in saved.items() if k not in LENGTH_KEYS})
    opt = sched.optimizer
    if isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR):
        lrs = [cosine_lr(base, sched.eta_min, sched.last_epoch, sched.T_max) for base in sched.base_lrs]
        for group, lr in zip(opt.param_groups, lrs, strict=True):
            group["lr"] = lr
        sched._last_lr = lrs
    else:  # one cycle: recompute this step's learning rate (and momentum) in the longer cycle
        sched.last_epoch -= 1
        sched.step()


def cosine_lr(base: float, floor: float, epoch: int, epochs: int) -> float:
    """The learning rate of a cosine schedule from ``base`` to ``floor`` over ``epochs``, after ``epoch``."""
    return floor + (base - floor) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def describe_extension(cfg: TrainConfig, done: int) -> str:
    """What the learning-rate schedule does when a run that has done ``done`` epochs goes on to ``cfg.epochs``."""
    s, n = cfg.scheduler, cfg.epochs
    if s.name == "cosine":
        lr = cosine_lr(cfg.optimizer.lr, s.min_lr, done, n)
        return (f"the cosine learning-rate schedule is stretched to {n} epochs: epoch {done + 1} runs at "
                f"{lr:.3g} (where a {n}-epoch cosine is), down to min_lr {s.min_lr:g} after epoch {n}")
    if s.name == "onecycle":
        return (f"the one-cycle learning-rate schedule is stretched to {n} epochs: it goes on from where a "
                f"{n}-epoch cycle is after epoch {done}")
    if s.name == "none":
        return f"the learning rate stays {cfg.optimizer.lr:g}"
    return f"the {s.name} learning-rate schedule goes on as before"
