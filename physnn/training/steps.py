"""The supervised training step: classification, regression and reconstruction (see :mod:`physnn.models.steps`).

One optimiser over the model's trainable parameters (the transferred
feature extractor at ``features_lr``), the task's (weighted) loss per
batch, and on validation the task's loss and metrics. Transferred batch-norm
layers that are frozen keep their running statistics (eval mode) while the
rest trains; dropout always trains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from physnn.models.base import StagedModel
from physnn.models.steps import Loop
from physnn.training.device import autocast


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


def weighted(loop: Loop, losses: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The sum of the per-event losses with the task's event weights, and the sum of the weights."""
    w = loop.task.weights(batch)
    if w is None:
        return losses.sum(), torch.tensor(float(len(losses)), device=losses.device)
    return (losses * w).sum(), w.sum()


class SupervisedStep:
    """The task's loss on the model's output, one optimiser (see the module docstring)."""

    def __init__(self) -> None:
        self.forward: nn.Module | None = None

    def optimizers(self, loop: Loop) -> dict[str, torch.optim.Optimizer]:
        return {"optimizer": loop.optimizer(loop.model)}

    def forward_model(self, loop: Loop) -> nn.Module:
        """DistributedDataParallel under torchrun (it averages the gradients), the bare model otherwise."""
        if self.forward is None:
            self.forward = loop.model
            if loop.dist.enabled:
                self.forward = nn.parallel.DistributedDataParallel(
                    loop.model, device_ids=[loop.device.index] if loop.device.type == "cuda" else None)
        return self.forward

    def train_epoch(self, loop: Loop, tensors: Any, optimizers: Mapping[str, torch.optim.Optimizer],
                    batch_done: Callable[[], None], progress: Any) -> dict[str, float]:
        model, opt, forward = loop.model, optimizers["optimizer"], self.forward_model(loop)
        model.train()
        for module in frozen_norms(model):
            module.eval()  # frozen batch-norm statistics stay as transferred; dropout stays on
        total = torch.zeros((), device=loop.device)
        weight = torch.zeros((), device=loop.device)
        for batch in loop.batches(tensors, loop.cfg.batch_size, shuffle=True):
            batch = loop.task.augment(loop.augment_inputs(batch))  # the data's flips: training batches only
            with autocast(loop.device, loop.amp):
                out = forward(batch)
            s, w = weighted(loop, loop.task.loss(out, batch), batch)
            loss = s / w.clamp(min=1e-12) + model.penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            loop.clip(model.parameters())
            opt.step()
            batch_done()
            total += s.detach()
            weight += w.detach()
            progress.step(lambda t=total, w=weight: float(t / w.clamp(min=1e-12)))
        return {"train_loss": float(total / weight.clamp(min=1e-12))}

    def evaluate(self, loop: Loop, tensors: Any) -> dict[str, float]:
        model, task = loop.model, loop.task
        model.eval()
        records, total, weight = [], 0.0, 0.0
        truth: dict[str, list[torch.Tensor]] = {"label": [], "target": []}
        # the same noise (autoencoders) at every validation, so epochs compare
        noise = torch.Generator(device=loop.device).manual_seed(loop.cfg.seed + 1)
        with torch.no_grad():
            for batch in loop.batches(tensors, loop.cfg.eval_batch_size, shuffle=False):
                batch = task.augment(batch, noise)
                with autocast(loop.device, loop.amp):
                    out = model(batch)
                out = out.float()
                s, w = weighted(loop, task.loss(out, batch, training=False), batch)
                total += float(s)
                weight += float(w)
                records.append(task.record(out, batch))
                for key, parts in truth.items():
                    if key in batch:
                        parts.append(batch[key].cpu())
        metrics = {"loss": total / max(weight, 1e-12)}
        metrics.update(task.metrics_of(records, {k: torch.cat(v) for k, v in truth.items() if v}))
        return metrics

    def after_epoch(self, loop: Loop, epoch: int) -> None:
        return None
