"""The one training loop, shared by every model family.

Per epoch: shuffle, step through batches (autocast on CUDA), validate, log a
row of metrics, step the schedule, save ``last.pt`` (and ``best.pt`` when the
monitored metric improves), and stop early when it stops improving.
``last.pt`` holds the optimiser, scheduler and random-number states, so a
killed run resumed from it ends with the same weights as an uninterrupted
one (CPU, same seed).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from physnn.data.dataset import TensorData
from physnn.data.streaming import StreamingSplit
from physnn.errors import ConfigError
from physnn.models.base import StagedModel
from physnn.models.steps import TrainingStep
from physnn.models.tasks import Task
from physnn.training.checkpoint import BEST, LAST, save_checkpoint
from physnn.training.config import TrainConfig
from physnn.training.device import use_amp
from physnn.training.distributed import Dist
from physnn.training.monitor import TRAIN_GOALS, Monitor
from physnn.training.progress import make_progress
from physnn.training.schedule import make_optimizer, make_scheduler, restore_scheduler
from physnn.training.steps import SupervisedStep

EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """What :func:`physnn.train` returns.

    Attributes
    ----------
    run_dir
        The run folder (config, transform, checkpoints, metrics, plots).
    history
        One dict of metrics per epoch.
    best
        The best epoch's metrics (by ``train.early_stopping.monitor``).
    stopped_early
        Whether early stopping ended the run.
    model, task
        The trained model (best weights loaded) and its task.
    notes
        What the run said as it started: the transferred and frozen layers
        (``--init-from``), how an extended run's schedule goes on.
    members
        An ensemble's members' results (``train.ensemble`` >= 2); then
        ``best`` is the mean of their best metrics and ``history`` the first
        member's.
    """

    run_dir: Path
    history: list[dict[str, Any]]
    best: dict[str, Any]
    stopped_early: bool
    model: StagedModel = field(repr=False)
    task: Task = field(repr=False)
    notes: list[str] = field(default_factory=list)
    members: list[TrainResult] = field(default_factory=list, repr=False)

    @property
    def checkpoint(self) -> Path:
        """Path of ``best.pt``."""
        return self.run_dir / BEST


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The global RNG's seed for one epoch of one process under torchrun.

    The checkpoint holds rank 0's RNG state only; reseeding every process at
    every epoch from ``(seed, epoch, rank)`` gives each process different
    dropout masks and noise and makes ``--resume`` exact in every process.
    """
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint64)[0] >> 1)


@dataclass(frozen=True)
class Plots:
    """The figures training draws, handed in by the layer that owns plotting (``physnn.api`` passes
    :func:`physnn.evaluation.plots.training_plots`); training itself imports no plotting.

    Attributes
    ----------
    curves
        ``curves(run_dir, folder)``: the loss curves of a finished run.
    samples
        ``samples(model, task, path, device=, seed=, title=)``: a GAN's generated showers, every
        ``train.samples_every`` epochs.
    """

    curves: Callable[[Path, Path], object] | None = None
    samples: Callable[..., object] | None = None


class MetricsLog:
    """The per-epoch metrics file (``metrics.csv`` or ``metrics.jsonl``), rewritten from the history."""

    def __init__(self, run_dir: Path, fmt: str) -> None:
        self.path = run_dir / f"metrics.{fmt}"
        self.fmt = fmt

    def write(self, history: list[dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("w", newline="") as f:
            if self.fmt == "jsonl":
                f.writelines(json.dumps(row) + "\n" for row in history)
            else:
                columns = list(dict.fromkeys(k for row in history for k in row))
                writer = csv.DictWriter(f, columns)
                writer.writeheader()
                writer.writerows(history)
        tmp.replace(self.path)


class Trainer:
    """Train a :class:`StagedModel` for a :class:`Task`.

    Parameters
    ----------
    model, task
        What to train and for what.
    cfg
        The ``train`` section of the run config.
    run_dir
        Where checkpoints and metrics go.
    device
        The resolved device.
    checkpoint_base
        Entries stored in every checkpoint (config, transform, task, io).
    transferred
        Whether the feature extractor came from another run (``features_lr``).
    progress
        Show the progress on stderr (:mod:`physnn.training.progress`).
    plots
        The figures to draw during training (none by default).
    augment
        The data's augmentation of the training batches (:class:`physnn.data.augment.Flips`), called
        with its own seeded generator (offset per process; the shuffle generator must stay the same in
        every process); None: the batches as they are.
    """

    def __init__(self, model: StagedModel, task: Task, cfg: TrainConfig, run_dir: Path, device: torch.device, *,
                 checkpoint_base: Mapping[str, Any], transferred: bool = False, progress: bool = False,
                 dist: Dist | None = None, plots: Plots | None = None,
                 augment: Callable[[dict[str, torch.Tensor], torch.Generator], dict[str, torch.Tensor]] | None = None
                 ) -> None:
        self.plots = plots or Plots()
        self.model = model.to(device)
        self.dist = dist or Dist()
        self.task = task
        self.cfg = cfg
        self.run_dir = run_dir
        self.device = device
        self.amp = use_amp(cfg.amp, device)
        self.base = dict(checkpoint_base)
        self.transferred = transferred
        self.progress = progress and self.dist.main
        self.generator = torch.Generator().manual_seed(cfg.seed)
        #: the flips' stream: not the shuffle generator, whose draws must not depend on the batches' sizes
        self.flip_generator = torch.Generator().manual_seed(cfg.seed + 1_000_003 * (1 + self.dist.rank))
        self.augment = augment
        self.log = MetricsLog(run_dir, cfg.metrics_format)
        #: what an epoch and a validation pass are: the task's own step (a GAN's) or the supervised one
        self.step: TrainingStep = task.training_step() or SupervisedStep()
        #: the module batches go through (under torchrun: wrapped, or its weights synchronised)
        self.forward_model = self.step.forward_model(self)

    # -- data on the device --------------------------------------------------
    def _place(self, data: TensorData | StreamingSplit) -> Mapping[str, torch.Tensor] | StreamingSplit:
        """All tensors of a split, on the GPU when they fit comfortably, else on the CPU (a streamed split
        stays in the files)."""
        if isinstance(data, StreamingSplit):
            return data
        tensors = data.tensors()
        if self.device.type == "cuda":
            size = sum(t.numel() * t.element_size() for t in tensors.values())
            free, _ = torch.cuda.mem_get_info(self.device)
            if size < 0.25 * free:
                return {k: v.to(self.device) for k, v in tensors.items()}
        return tensors

    def batches(self, tensors: Mapping[str, torch.Tensor] | StreamingSplit, batch_size: int,
                 shuffle: bool) -> Iterator[dict[str, torch.Tensor]]:
        pin = self.device.type == "cuda"
        if isinstance(tensors, StreamingSplit):  # chunks from the files through the shuffle buffer
            for batch in tensors.batches(batch_size, shuffle=shuffle, generator=self.generator, dist=self.dist):
                yield {k: (v.pin_memory() if pin else v).to(self.device, non_blocking=pin) for k, v in batch.items()}
            return
        n = len(next(iter(tensors.values())))
        # under torchrun each process takes its shard of the same global permutation
        order = self.dist.shard(torch.randperm(n, generator=self.generator)) if shuffle else None
        n = len(order) if order is not None else n
        for lo in range(0, n, batch_size):
            idx = order[lo:lo + batch_size] if order is not None else slice(lo, lo + batch_size)
            batch = {}
            for k, v in tensors.items():
                part = v[idx.to(v.device) if isinstance(idx, torch.Tensor) else idx]
                if part.device != self.device:
                    part = (part.pin_memory() if pin else part).to(self.device, non_blocking=pin)
                batch[k] = part
            yield batch

    # -- what a step asks for ------------------------------------------------
    def augment_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A training batch as the data's augmentation makes it (flips in η and φ); only training batches."""
        return batch if self.augment is None else self.augment(batch, self.flip_generator)

    def optimizer(self, module: nn.Module, settings: Any = None) -> torch.optim.Optimizer:
        """The configured optimiser of ``module`` (``settings``: another optimiser section, e.g. the critic's)."""
        return make_optimizer(module, self.cfg, self.transferred and module is self.model, settings=settings)

    def clip(self, params: Iterable[nn.Parameter]) -> None:
        """Clip the gradient norm of ``params`` to ``train.grad_clip`` (if set)."""
        if self.cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)

    def evaluate(self, tensors: Mapping[str, torch.Tensor] | StreamingSplit) -> dict[str, float]:
        """Loss and task metrics on a split (eval mode, no gradients)."""
        return self.step.evaluate(self, tensors)

    # -- the loop ------------------------------------------------------------
    def fit(self, train: TensorData | StreamingSplit, val: TensorData | StreamingSplit, *,
            resume: Mapping[str, Any] | None = None, on_epoch_end: EpochCallback | None = None) -> TrainResult:
        """Train for ``cfg.epochs`` epochs (or until early stopping).

        Parameters
        ----------
        train, val
            The splits, in memory or streamed from the files (:mod:`physnn.data.streaming`).
        resume
            The contents of a ``last.pt`` to continue from.
        on_epoch_end
            Called with each epoch's metrics after the checkpoints are saved.
        """
        cfg = self.cfg
        train_t, val_t = self._place(train), self._place(val) if len(val) else None
        steps = math.ceil(len(train) // self.dist.world / cfg.batch_size)
        optimizers = self.step.optimizers(self)
        opt = optimizers["optimizer"]
        schedulers = {name.replace("optimizer", "scheduler"): make_scheduler(o, cfg, steps)
                      for name, o in optimizers.items()}
        stop = cfg.early_stopping
        monitor = Monitor.resolve(stop.monitor if val_t is not None else "train_loss", stop.mode,
                                  self.task.metric_goals(), TRAIN_GOALS)
        history, best, waited, start = self._restore(resume, optimizers, schedulers) if resume else ([], {}, 0, 0)
        stopped = False
        onecycle = [sc for sc in schedulers.values() if sc is not None] if cfg.scheduler.name == "onecycle" else []

        def batch_done() -> None:  # a onecycle schedule steps per batch
            for sc in onecycle:
                sc.step()

        progress = make_progress(self.progress)
        progress.start(cfg.epochs, start, steps)
        try:
            for epoch in range(start, cfg.epochs):
                progress.epoch(epoch + 1)
                if self.dist.enabled:  # each process its own dropout masks and noise, reproducible on --resume
                    torch.manual_seed(epoch_seed(cfg.seed, epoch, self.dist.rank))
                t0 = time.perf_counter()
                row: dict[str, Any] = {"epoch": epoch + 1}
                row.update(self.step.train_epoch(self, train_t, optimizers, batch_done, progress))
                seconds = time.perf_counter() - t0
                if val_t is not None:
                    row.update({f"val_{k}": v for k, v in self.evaluate(val_t).items()})
                row.update({"lr": opt.param_groups[0]["lr"], "seconds": round(seconds, 3),
                            "samples_per_s": round(len(train) / max(seconds, 1e-9), 1)})
                value = _monitored(row, monitor)  # lower is better, whatever the metric
                if cfg.scheduler.name != "onecycle":
                    for sc in schedulers.values():
                        if sc is not None:
                            sc.step(value) if cfg.scheduler.name == "plateau" else sc.step()
                history.append(row)
                improved = not best or value < monitor.score(best[monitor.name]) - stop.min_delta
                if improved:
                    best, waited = dict(row), 0
                else:
                    waited += 1
                patience = stop.patience
                stopped = patience is not None and waited >= patience and epoch + 1 < cfg.epochs
                if self.dist.main:  # under torchrun only rank 0 writes
                    self.log.write(history)
                    self._save(history, best, improved, {**optimizers, **schedulers}, waited=waited, stopped=stopped)
                    self.step.after_epoch(self, epoch + 1)
                progress.epoch_end(row, improved)
                if on_epoch_end is not None:
                    on_epoch_end(row)
                if stopped:
                    break
        finally:
            progress.stop()
        return TrainResult(self.run_dir, history, best, stopped, self.model, self.task)

    def _restore(self, resume: Mapping[str, Any], optimizers: Mapping[str, Any], schedulers: Mapping[str, Any]
                 ) -> tuple[list[dict[str, Any]], dict[str, Any], int, int]:
        """Put the model, optimisers, schedules and random streams of a ``last.pt`` back; its history, best
        epoch, epochs waited without improvement and the epoch to start from."""
        self.model.load_state_dict(resume["model"])
        for name, o in optimizers.items():
            o.load_state_dict(resume[name])
        for name, sc in schedulers.items():
            if sc is not None and resume.get(name) is not None:
                restore_scheduler(sc, resume[name])  # stretched when the run is extended
        torch.set_rng_state(resume["rng"]["torch"])
        self.generator.set_state(resume["rng"]["shuffle"])
        if "flip" in resume["rng"]:  # checkpoints from before the flips had their own stream: freshly seeded
            self.flip_generator.set_state(resume["rng"]["flip"])
        if self.device.type == "cuda" and resume["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(resume["rng"]["cuda"])
        return list(resume["history"]), dict(resume["best"]), int(resume["waited"]), int(resume["epoch"])

    def _save(self, history: list[dict[str, Any]], best: dict[str, Any], improved: bool,
              stateful: Mapping[str, Any], *, waited: int, stopped: bool) -> None:
        """``best.pt`` when the epoch improved, ``last.pt`` always (with the optimisers and schedules of
        ``stateful`` and the random streams, for ``--resume``)."""
        state = {"model": self.model.state_dict(), "epoch": history[-1]["epoch"], "history": history, "best": best}
        if improved:
            save_checkpoint({**self.base, **state}, self.run_dir / BEST)
        states = {k: None if o is None else o.state_dict() for k, o in stateful.items()}
        save_checkpoint({**self.base, **state, **states, "rng": self._rng_state(), "waited": waited,
                         "stopped": stopped}, self.run_dir / LAST)

    def _rng_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "shuffle": self.generator.get_state(),
                                 "flip": self.flip_generator.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state


def _monitored(row: Mapping[str, Any], monitor: Monitor) -> float:
    """The epoch's score of the early-stopping metric (lower is better); one line when it was not computed."""
    if monitor.name not in row:
        msg = (f"train.early_stopping.monitor {monitor.name!r} was not computed in epoch {row['epoch']} "
               f"(e.g. an AUC needs every class in the validation split); "
               f"computed: {', '.join(k for k in row if k.startswith(('val_', 'train_')))}")
        raise ConfigError(msg)
    return monitor.score(row[monitor.name])
