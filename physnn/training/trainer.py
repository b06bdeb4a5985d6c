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
from collections.abc import Callable, Iterator, Mapping
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
from physnn.models.tasks import Task
from physnn.training.checkpoint import BEST, LAST, save_checkpoint
from physnn.training.config import TrainConfig
from physnn.training.device import autocast, use_amp
from physnn.training.distributed import Dist
from physnn.training.monitor import TRAIN_GOALS, Monitor
from physnn.training.progress import Silent, make_progress
from physnn.training.schedule import make_optimizer, make_scheduler, restore_scheduler

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
    """

    run_dir: Path
    history: list[dict[str, Any]]
    best: dict[str, Any]
    stopped_early: bool
    model: StagedModel = field(repr=False)
    task: Task = field(repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def checkpoint(self) -> Path:
        """Path of ``best.pt``."""
        return self.run_dir / BEST


def frozen_norms(model: nn.Module) -> list[nn.Module]:
    """The normalisation layers of a feature extractor that transfer learning froze.

    Only these are kept in eval mode while training, so their running statistics
    stay as transferred. Layers without parameters (dropout, pooling) are never
    "frozen": a dropout among frozen convolutions trains on, as MC dropout samples
    it later.
    """
    if not isinstance(model, StagedModel):
        return []
    norms = [m for f in model.feature_modules() for m in f.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    params = [p for f in model.feature_modules() for p in f.parameters()]
    if params and not any(p.requires_grad for p in params):  # the whole extractor is frozen
        return norms
    return [m for m in norms if any(True for _ in m.parameters()) and not any(p.requires_grad for p in m.parameters())]


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
    """

    def __init__(self, model: StagedModel, task: Task, cfg: TrainConfig, run_dir: Path, device: torch.device, *,
                 checkpoint_base: Mapping[str, Any], transferred: bool = False, progress: bool = False,
                 dist: Dist | None = None, plots: Plots | None = None) -> None:
        self.plots = plots or Plots()
        self.model = model.to(device)
        self.dist = dist or Dist()
        #: GANs train with two optimisers in the alternating scheme of :meth:`_train_epoch_adversarial`
        self.adversarial = task.kind == "generation"
        #: the model as DistributedDataParallel under torchrun (it averages the gradients); the bare model otherwise.
        #: A GAN's gradients are averaged by :meth:`Dist.average_gradients` instead: DDP does not support the
        #: critic's gradient penalty (double backward) nor a critic frozen for every other step.
        self.forward_model: nn.Module = self.model
        if self.dist.enabled and self.adversarial:
            self.dist.broadcast_state(self.model)
        elif self.dist.enabled:
            self.forward_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.task = task
        self.cfg = cfg
        self.run_dir = run_dir
        self.device = device
        self.amp = use_amp(cfg.amp, device)
        self.base = dict(checkpoint_base)
        self.transferred = transferred
        self.progress = progress and self.dist.main
        self.frozen = frozen_norms(model)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.log = MetricsLog(run_dir, cfg.metrics_format)

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

    def _batches(self, tensors: Mapping[str, torch.Tensor] | StreamingSplit, batch_size: int,
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

    # -- one pass ------------------------------------------------------------
    def _weighted(self, losses: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.task.weights(batch)
        if w is None:
            return losses.sum(), torch.tensor(float(len(losses)), device=losses.device)
        return (losses * w).sum(), w.sum()

    def evaluate(self, tensors: Mapping[str, torch.Tensor] | StreamingSplit) -> dict[str, float]:
        """Loss and task metrics on a split (eval mode, no gradients)."""
        if self.adversarial:
            return self._evaluate_adversarial(tensors)
        self.model.eval()
        records, total, weight = [], 0.0, 0.0
        truth: dict[str, list[torch.Tensor]] = {"label": [], "target": []}
        # the same noise (autoencoders) at every validation, so epochs compare
        noise = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 1)
        with torch.no_grad():
            for batch in self._batches(tensors, self.cfg.eval_batch_size, shuffle=False):
                batch = self.task.augment(batch, noise)
                with autocast(self.device, self.amp):
                    out = self.model(batch)
                out = out.float()
                s, w = self._weighted(self.task.loss(out, batch, training=False), batch)
                total += float(s)
                weight += float(w)
                records.append(self.task.record(out, batch))
                for key, parts in truth.items():
                    if key in batch:
                        parts.append(batch[key].cpu())
        metrics = {"loss": total / max(weight, 1e-12)}
        metrics.update(self.task.metrics_of(records, {k: torch.cat(v) for k, v in truth.items() if v}))
        return metrics

    def _train_epoch(self, tensors: Mapping[str, torch.Tensor] | StreamingSplit, opt: torch.optim.Optimizer, sched: Any,
                     progress: Silent) -> float:
        self.model.train()
        for module in self.frozen:
            module.eval()  # frozen batch-norm statistics stay as transferred; dropout stays on
        total = torch.zeros((), device=self.device)
        weight = torch.zeros((), device=self.device)
        for batch in self._batches(tensors, self.cfg.batch_size, shuffle=True):
            batch = self.task.augment(batch)
            with autocast(self.device, self.amp):
                out = self.forward_model(batch)
            s, w = self._weighted(self.task.loss(out, batch), batch)
            loss = s / w.clamp(min=1e-12) + self.model.penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            opt.step()
            if self.cfg.scheduler.name == "onecycle":
                sched.step()
            total += s.detach()
            weight += w.detach()
            progress.step(lambda t=total, w=weight: float(t / w.clamp(min=1e-12)))
        return float(total / weight.clamp(min=1e-12))

    # -- GANs: the alternating scheme -----------------------------------------
    def _latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.model.latent_dim, device=self.device, generator=generator)

    def _train_epoch_adversarial(self, tensors: Mapping[str, torch.Tensor] | StreamingSplit, opt: torch.optim.Optimizer,
                                 critic_opt: torch.optim.Optimizer, scheds: list[Any],
                                 progress: Silent) -> dict[str, float]:
        """One epoch of GAN training: the classic alternating scheme.

        For every batch of real showers:

        1. **critic step**: generate as many showers with the batch's
           conditions (the generator fixed: no gradient flows into it) and
           update the critic to tell the real from the generated ones
           (:func:`~physnn.models.gan.critic_loss`: Wasserstein with gradient
           penalty, or hinge);
        2. **generator step**, every ``n_critic`` batches: generate fresh
           showers and update the generator to fool the critic
           (:func:`~physnn.models.gan.generator_loss`), plus the
           energy-matching term when asked for
           (:func:`~physnn.models.gan.energy_matching_loss`); the critic's
           weights are frozen during this step.

        With a layer-energy density (``energy_model: mixture``) both steps
        generate the shapes for the real showers' layer energies, and the
        density takes a maximum-likelihood step on them for every batch (in
        the generator step, its negative log-likelihood is added to the
        generator's loss; it shares no weight with the image network).

        The critic sees images in the task's cell representation with zero
        suppression applied (straight-through), so it judges exactly what
        ``physnn generate`` writes.
        """
        from physnn.models.gan import critic_loss, energy_matching_loss, generator_loss

        model, task, gan = self.model, self.task, self.model.params
        model.train()
        sums = {"critic": torch.zeros((), device=self.device), "distance": torch.zeros((), device=self.device),
                "generator": torch.zeros((), device=self.device)}
        density = model.generator.density
        if density is not None:
            sums["energy_nll"] = torch.zeros((), device=self.device)
        n_critic = n_gen = 0
        for step, batch in enumerate(self._batches(tensors, self.cfg.batch_size, shuffle=True)):
            batch = task.augment(batch)
            real, cond = batch["real"], batch["conditions"]
            critic = task.critic_of(model, batch)  # x -> D(x | conditions, energy features of x)
            energies = task.layer_energies(real) if density is not None else None

            # 1) critic step: real vs generated showers, the generator fixed
            with torch.no_grad():
                fake = task.generate(model, self._latent(len(real)), cond, batch["incident"], energies)
            loss_c, distance = critic_loss(critic, real, fake, gan)
            critic_opt.zero_grad(set_to_none=True)
            loss_c.backward()
            self.dist.average_gradients(model.critic.parameters())
            if self.cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.critic.parameters(), self.cfg.grad_clip)
            critic_opt.step()
            sums["critic"] += loss_c.detach()
            sums["distance"] += distance
            n_critic += 1

            # 2) generator step every n_critic critic steps: fool the (frozen) critic. The layer-energy
            # density (if any) learns on every batch: with the generator's loss, or in a step of its own.
            nll = None if density is None else density.nll(energies, cond, task.offset(batch["incident"]))
            if nll is not None:
                sums["energy_nll"] += nll.detach()
            if (step + 1) % model.n_critic == 0:
                model.critic.requires_grad_(False)
                fake = task.generate(model, self._latent(len(real)), cond, batch["incident"], energies)
                loss_g = generator_loss(critic, fake)
                if nll is not None:  # the layer energies' density: maximum likelihood
                    loss_g = loss_g + nll
                elif gan.energy_matching > 0 and task.incident is not None:
                    cols = task.energy_columns
                    loss_g = loss_g + gan.energy_matching * energy_matching_loss(
                        task.critic_features(fake, batch["incident"])[:, cols],
                        task.critic_features(real, batch["incident"])[:, cols])
                opt.zero_grad(set_to_none=True)
                loss_g.backward()
                self.dist.average_gradients(model.generator.parameters())
                if self.cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.generator.parameters(), self.cfg.grad_clip)
                opt.step()
                model.critic.requires_grad_(True)
                sums["generator"] += loss_g.detach()
                n_gen += 1
            elif nll is not None:  # a step of the density's parameters only (the others have no gradient)
                opt.zero_grad(set_to_none=True)
                nll.backward()
                self.dist.average_gradients(model.generator.parameters())
                opt.step()
            if self.cfg.scheduler.name == "onecycle":
                for sched in scheds:
                    sched.step()
            progress.step(lambda n=n_critic: float(sums["critic"]) / n)
        out = {"train_loss": float(sums["critic"]) / max(n_critic, 1),
               "train_distance": float(sums["distance"]) / max(n_critic, 1),
               "train_generator_loss": float(sums["generator"]) / max(n_gen, 1)}
        if density is not None:
            out["train_energy_nll"] = float(sums["energy_nll"]) / max(n_critic, 1)
        return out

    def _evaluate_adversarial(self, tensors: Mapping[str, torch.Tensor] | StreamingSplit) -> dict[str, float]:
        """GAN validation: generate one shower per validation event (same conditions, fixed noise) and
        compare high-level features (``loss`` = mean separation power), plus the critic's distance."""
        from physnn.physics.showers import high_level_features

        model, task = self.model, self.task
        model.eval()
        noise = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 1)
        real_f: list[dict[str, Any]] = []
        fake_f: list[dict[str, Any]] = []
        distance, n = 0.0, 0
        with torch.no_grad():
            for batch in self._batches(tensors, self.cfg.eval_batch_size, shuffle=False):
                batch = task.augment(batch)
                real = batch["real"]
                fake = task.generate(model, self._latent(len(real), noise), batch["conditions"], batch["incident"],
                                     generator=noise)
                critic = task.critic_of(model, batch)
                distance += float(critic(real).sum() - critic(fake).sum())
                n += len(real)
                incident = batch["incident"].cpu().numpy() if task.incident is not None else None
                real_f.append(high_level_features(task.to_phys(real).cpu().numpy(), incident))
                fake_f.append(high_level_features(task.to_phys(fake).cpu().numpy(), incident))
        join = lambda parts: {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}  # noqa: E731
        metrics = task.generation_metrics(join(real_f), join(fake_f))
        metrics["distance"] = distance / max(n, 1)
        return metrics

    def _save_samples(self, epoch: int) -> None:
        """A figure of generated showers at fixed conditions (``plots/samples_epoch_NNN.png``)."""
        every = self.cfg.samples_every
        if not self.adversarial or every == 0 or epoch % every or self.plots.samples is None:
            return
        self.plots.samples(self.model, self.task, self.run_dir / "plots" / f"samples_epoch_{epoch:03d}.png",
                           device=self.device, seed=self.cfg.seed, title=f"epoch {epoch}")

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
        if self.adversarial:  # a GAN: the generator's and the critic's optimiser
            opt = make_optimizer(self.model.generator, cfg, False)
            optimizers = {"optimizer": opt,
                          "critic_optimizer": make_optimizer(self.model.critic, cfg, False,
                                                             settings=cfg.critic_optimizer)}
        else:
            opt = make_optimizer(self.model, cfg, self.transferred)
            optimizers = {"optimizer": opt}
        schedulers = {name.replace("optimizer", "scheduler"): make_scheduler(o, cfg, steps)
                      for name, o in optimizers.items()}
        sched = schedulers["scheduler"]
        stop = cfg.early_stopping
        monitor = Monitor.resolve(stop.monitor if val_t is not None else "train_loss", stop.mode,
                                  self.task.metric_goals(), TRAIN_GOALS)
        history: list[dict[str, Any]] = []
        best: dict[str, Any] = {}
        waited = 0
        start = 0
        if resume is not None:
            self.model.load_state_dict(resume["model"])
            for name, o in optimizers.items():
                o.load_state_dict(resume[name])
            for name, sc in schedulers.items():
                if sc is not None and resume.get(name) is not None:
                    restore_scheduler(sc, resume[name])  # stretched when the run is extended
            torch.set_rng_state(resume["rng"]["torch"])
            self.generator.set_state(resume["rng"]["shuffle"])
            if self.device.type == "cuda" and resume["rng"].get("cuda"):
                torch.cuda.set_rng_state_all(resume["rng"]["cuda"])
            history, best, waited = list(resume["history"]), dict(resume["best"]), int(resume["waited"])
            start = int(resume["epoch"])
        stopped = False
        progress = make_progress(self.progress)
        progress.start(cfg.epochs, start, steps)
        try:
            for epoch in range(start, cfg.epochs):
                progress.epoch(epoch + 1)
                if self.dist.enabled:  # each process its own dropout masks and noise, reproducible on --resume
                    torch.manual_seed(epoch_seed(cfg.seed, epoch, self.dist.rank))
                t0 = time.perf_counter()
                row: dict[str, Any] = {"epoch": epoch + 1}
                if self.adversarial:
                    row.update(self._train_epoch_adversarial(train_t, opt, optimizers["critic_optimizer"],
                                                             [sc for sc in schedulers.values() if sc is not None],
                                                             progress))
                    if self.dist.enabled:  # batch-norm running statistics: rank 0's, like DDP
                        self.dist.broadcast_state(self.model, buffers_only=True)
                else:
                    row["train_loss"] = self._train_epoch(train_t, opt, sched, progress)
                seconds = time.perf_counter() - t0
                if val_t is not None:
                    row.update({f"val_{k}": v for k, v in self.evaluate(val_t).items()})
                row.update({"lr": opt.param_groups[0]["lr"], "seconds": round(seconds, 3),
                            "samples_per_s": round(len(train) / max(seconds, 1e-9), 1)})
                if monitor.name not in row:
                    msg = (f"train.early_stopping.monitor {monitor.name!r} was not computed in epoch {epoch + 1} "
                           f"(e.g. an AUC needs every class in the validation split); "
                           f"computed: {', '.join(k for k in row if k.startswith(('val_', 'train_')))}")
                    raise ConfigError(msg)
                value = monitor.score(row[monitor.name])  # lower is better, whatever the metric
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
                    state = {"model": self.model.state_dict(), "epoch": epoch + 1, "history": history, "best": best}
                    if improved:
                        save_checkpoint({**self.base, **state}, self.run_dir / BEST)
                    save_checkpoint({**self.base, **state, **{k: o.state_dict() for k, o in optimizers.items()},
                                     **{k: None if sc is None else sc.state_dict() for k, sc in schedulers.items()},
                                     "rng": self._rng_state(), "waited": waited, "stopped": stopped},
                                    self.run_dir / LAST)
                    self._save_samples(epoch + 1)
                progress.epoch_end(row, improved)
                if on_epoch_end is not None:
                    on_epoch_end(row)
                if stopped:
                    break
        finally:
            progress.stop()
        return TrainResult(self.run_dir, history, best, stopped, self.model, self.task)

    def _rng_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "shuffle": self.generator.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state
