"""Train a deep ensemble: N members of one run config with different seeds, one run folder.

``physnn train CONFIG --ensemble N`` (``train.ensemble: N``) trains member
``i`` with ``train.seed + i`` (its own initialisation, batch order and
dropout masks; the data split is the data config's and the same for all)
into ``OUT/members/member-i/``, a complete run folder of its own (metrics,
loss curves, checkpoints). Then ``OUT/best.pt`` gathers every member's best
weights (``ensemble`` in the checkpoint) with the first member's transform,
task and domain, which are the same for all members; ``physnn predict``,
``evaluate`` and ``export`` of ``OUT`` run every member and stack their
outputs like MC-dropout passes (:mod:`physnn.models.ensemble`). A
regressor's σ scale factors and conformal quantiles are fitted again on the
validation split for the ensemble's own error bars (members' spread
included), with and without MC dropout.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from physnn.data.dataset import load
from physnn.data.transform import Transform
from physnn.errors import ConfigError
from physnn.models.base import StagedModel
from physnn.models.tasks import Task
from physnn.training.checkpoint import BEST, clear_run_files, load_checkpoint, save_checkpoint
from physnn.training.config import RunConfig, write_config
from physnn.training.device import resolve_device
from physnn.training.interrupt import TrainingInterrupted
from physnn.training.trainer import TrainResult

__all__ = ["MEMBERS", "check_ensemble", "check_not_ensemble", "member_dir", "train_ensemble"]

#: The folder of an ensemble's member runs, inside the ensemble's run folder.
MEMBERS = "members"


def member_dir(out: Path, index: int) -> Path:
    """The run folder of member ``index``."""
    return out / MEMBERS / f"member-{index}"


def check_ensemble(cfg: RunConfig, generates: bool) -> None:
    """Refuse, in one line, an ensemble physnn does not train (before any work); ``generates``: the model is
    a generator (a GAN), whose task is generation."""
    from physnn.models.tasks import task_type
    from physnn.training.distributed import from_environment

    size = cfg.train.ensemble
    if from_environment().enabled:
        msg = (f"train.ensemble {size}: an ensemble trains in one process (its members one after the other), "
               f"not under torchrun")
        raise ConfigError(msg)
    if cfg.train.init_from:
        msg = f"train.ensemble {size}: members need their own random initialisation, not train.init_from"
        raise ConfigError(msg)
    kind = "generation" if generates else Task.resolved_kind(cfg.task.kind, cfg.data)
    special = task_type(kind)
    if special is not None and not special.ENSEMBLES:
        msg = f"train.ensemble {size}: ensembles are for classifiers and regressors, not task.kind {kind}"
        raise ConfigError(msg)


def check_not_ensemble(out: Path) -> None:
    """Refuse ``resume=True`` of an ensemble's folder in one line."""
    if (out / MEMBERS).is_dir():
        msg = f"{out}: an ensemble, which resume=True does not continue; train it again with overwrite=True"
        raise ConfigError(msg, options=["resume", "overwrite"])


def train_ensemble(cfg: RunConfig, out: Path, member: Callable[[RunConfig, Path], TrainResult], *,
                   device: str | None = None) -> TrainResult:
    """Train ``cfg.train.ensemble`` members with :func:`member` and gather them in ``out/best.pt``.

    Parameters
    ----------
    cfg
        The resolved run config (``train.ensemble`` >= 2).
    out
        The ensemble's run folder.
    member
        Trains one member: ``member(config, folder)`` (:func:`physnn.training.run.train` with the caller's
        options).
    device
        Where the ensemble's σ scale is fitted (default: the config's).

    Returns
    -------
    TrainResult
        The ensemble's: ``members`` the members' results, ``best`` the mean of their best metrics,
        ``model`` the first member.
    """
    size, seed = cfg.train.ensemble, cfg.train.seed
    results = []
    for index in range(size):
        member_cfg = cfg.model_copy(deep=True)
        member_cfg.train.ensemble, member_cfg.train.seed = 1, seed + index
        try:
            results.append(member(member_cfg, member_dir(out, index)))
        except TrainingInterrupted as stopped:  # the member's own advice would leave the ensemble ungathered
            msg = (f"interrupted in member {index} of {size} ({stopped.run_dir}): {out} holds no ensemble; "
                   "train it again with overwrite=True")
            raise TrainingInterrupted(msg, out, stopped.epoch, stopped.finished, False,
                                      options=["overwrite"]) from None
        results[-1].model.to("cpu")  # N trained members need not stay on the accelerator
        if index == 0:  # the data and model are good: now what an earlier ensemble left here can go
            _clear_stale(out, keep=member_dir(out, 0))
    checkpoint = _gather(cfg, out, size)
    task = Task.from_state(checkpoint["task"])
    if task.calibrated_error_bars and cfg.train.calibrate_sigma:
        models = [r.model for r in results]  # each holds its best weights
        task.sigma_scale, task.conformal = _fit_error_bars(cfg, checkpoint, models, task, device)
        checkpoint["task"] = task.state()
    save_checkpoint(checkpoint, out / BEST)
    write_config(out, cfg)
    shutil.copyfile(member_dir(out, 0) / "transform.json", out / "transform.json")  # the same for every member
    best = _mean_best([r.best for r in results])
    return replace(results[0], run_dir=out, best=best, task=task, members=results, history=results[0].history)


def _clear_stale(out: Path, keep: Path) -> None:
    """Remove an earlier run's files from ``out`` (an earlier ensemble's, or a single run's), and every member
    folder but ``keep``."""
    clear_run_files(out)
    for folder in (out / MEMBERS).glob("member-*"):
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)


def _gather(cfg: RunConfig, out: Path, size: int) -> dict[str, Any]:
    """The ensemble's checkpoint: the first member's with every member's best weights under ``ensemble``."""
    members = [load_checkpoint(member_dir(out, i), BEST) for i in range(size)]
    base = {k: v for k, v in members[0].items() if k not in ("path", "format", "physnn")}
    base["config"] = cfg.model_dump(mode="json")
    base["ensemble"] = {"seeds": [cfg.train.seed + i for i in range(size)],
                        "epochs": [int(m.get("epoch", 0)) for m in members],
                        "models": [m["model"] for m in members]}
    return base


def _fit_error_bars(cfg: RunConfig, checkpoint: dict[str, Any], models: list[StagedModel], task: Task,
                    device: str | None) -> tuple[dict[str, list[float]], dict[str, dict]]:
    """The ensemble's σ scales and conformal quantiles on the validation split (the members back on the CPU
    after)."""
    from physnn.training.calibration import fit_sigma_scale

    dev = resolve_device(device or cfg.train.device)
    transform = Transform.from_state(checkpoint["transform"])
    if cfg.train.memory_budget is not None:  # the validation split streamed, as the members trained
        from physnn.data.streaming import prepare

        data = prepare(cfg.data, cfg.train.memory_budget, transform=transform)
    else:
        data = load(cfg.data, transform=transform)
    if len(data.val) == 0:
        return task.sigma_scale, task.conformal
    try:
        with torch.random.fork_rng(devices=[]):
            return fit_sigma_scale([m.to(dev) for m in models], task, data.val.batches(1024), device=dev)
    finally:
        for model in models:
            model.to("cpu")


def _mean_best(bests: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean over members of each numeric best metric (the epoch too: the members' mean best epoch)."""
    keys = [k for k, v in bests[0].items() if isinstance(v, (int, float)) and all(k in b for b in bests)]
    return {k: sum(float(b[k]) for b in bests) / len(bests) for k in keys}
