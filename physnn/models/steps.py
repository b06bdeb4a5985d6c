"""How a model family trains, as the trainer sees it: a training step strategy.

The trainer (:mod:`physnn.training.trainer`) owns the epochs, checkpoints,
resume, early stopping, schedules and logging, and knows no family. What
one epoch of training and one validation pass do is the step's:

- classification, regression and reconstruction share the supervised step
  (:class:`physnn.training.steps.SupervisedStep`): one optimiser, the task's
  loss, the task's metrics;
- a GAN brings its own (:class:`physnn.models.gan_step.AdversarialStep`):
  a generator and a critic, each with its optimiser, in the alternating
  scheme.

A task names its step with :meth:`physnn.models.tasks.Task.training_step`
(None: the supervised one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import torch
from torch import nn


class Loop(Protocol):
    """What the trainer offers a step."""

    model: Any
    task: Any
    device: torch.device
    cfg: Any
    dist: Any
    plots: Any
    run_dir: Any
    amp: bool

    def batches(self, tensors: Any, batch_size: int, shuffle: bool) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of a split on the device (shuffled with the run's generator, sharded under torchrun)."""
        ...

    def augment_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A training batch as the data config's ``augment:`` makes it (flips); call it on training batches only."""
        ...

    def optimizer(self, module: nn.Module, settings: Any = None) -> torch.optim.Optimizer:
        """The configured optimiser of ``module`` (``settings``: another optimiser section)."""
        ...

    def clip(self, params: Iterable[nn.Parameter]) -> None:
        """Clip the gradients of ``params`` as ``train.grad_clip`` says."""
        ...


class TrainingStep(Protocol):
    """One family's way to train: its optimisers, one epoch, one validation pass."""

    def optimizers(self, loop: Loop) -> dict[str, torch.optim.Optimizer]:
        """The optimisers by checkpoint key, ``optimizer`` first (its learning rate is logged)."""
        ...

    def forward_model(self, loop: Loop) -> nn.Module:
        """The module batches go through (under torchrun: the model wrapped for gradient averaging)."""
        ...

    def train_epoch(self, loop: Loop, tensors: Any, optimizers: Mapping[str, torch.optim.Optimizer],
                    batch_done: Callable[[], None], progress: Any) -> dict[str, float]:
        """One epoch; ``batch_done`` after every optimiser step (a onecycle schedule steps there). Returns the
        epoch's ``train_*`` metrics (at least ``train_loss``)."""
        ...

    def evaluate(self, loop: Loop, tensors: Any) -> dict[str, float]:
        """Loss and metrics on a split (no gradients), without the ``val_`` prefix."""
        ...

    def after_epoch(self, loop: Loop, epoch: int) -> None:
        """In the main process, after the epoch's checkpoints are written (e.g. a GAN's sample figure)."""
        ...
