"""Multi-process training with ``torch.distributed`` (DDP), started by ``torchrun``.

``torchrun --nproc_per_node=N -m physnn train CONFIG --out RUN`` starts N
processes; torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous address, and :func:`setup` joins the process group (``nccl`` on
CUDA, each process on its own GPU ``cuda:LOCAL_RANK``; ``gloo`` on the CPU).
Then:

- every process reads the data and fits the same transform (deterministic);
- each epoch one global permutation (the trainer's seeded generator, the
  same in every process) is cut into N disjoint shards of equal length, one
  per process (like ``DistributedSampler`` with ``drop_last``);
- the model is wrapped in ``DistributedDataParallel``, which averages the
  gradients, so every process holds the same weights after each step (a
  GAN's gradients are averaged by :meth:`Dist.average_gradients` instead:
  DDP does not support the gradient penalty's double backward);
  ``train.batch_size`` is per process (the effective batch is N times it);
- with ``train.memory_budget`` (streaming, :mod:`physnn.data.streaming`)
  each epoch's seeded chunk order is dealt round-robin to the processes, so
  each reads and decompresses only its own chunks; they step in lockstep
  and the epoch ends for all when the first runs out of batches (the few
  events the others still hold, at most about a chunk, wait for another
  epoch's order); the budget is per process;
- the global RNG (dropout masks, augmentation noise) is reseeded every
  epoch from ``(seed, epoch, rank)``: different in every process, and
  ``--resume`` continues exactly in all of them (tested, in memory and
  streamed);
- every process validates on the whole validation split (identical weights
  give identical metrics, so early stopping agrees without messages);
- only rank 0 writes the run folder: config, metrics, checkpoints, plots.

Multi-node runs work the same way (``torchrun --nnodes``); physnn adds no
scheduler of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from physnn.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    """This process's place in a distributed run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether several processes train together."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """Whether this process writes the outputs (rank 0)."""
        return self.rank == 0

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's equal share of a global permutation (the remainder is dropped)."""
        if not self.enabled:
            return order
        usable = len(order) // self.world * self.world
        return order[:usable][self.rank::self.world]

    def barrier(self) -> None:
        """Wait for every process (no-op in a single process)."""
        if self.enabled:
            torch.distributed.barrier()

    def reduce(self, value: int, op: str) -> int:
        """``value`` combined over every process with ``op`` (``"min"`` or ``"max"``); itself in one process."""
        if not self.enabled:
            return value
        device = torch.device("cuda", torch.cuda.current_device()) \
            if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
        t = torch.tensor([value], dtype=torch.int64, device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN if op == "min" else
                                     torch.distributed.ReduceOp.MAX)
        return int(t.item())

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Average the gradients of ``params`` over the processes, in place (one all-reduce).

        What DDP does for ordinary models, done by hand for GANs: DDP does not
        support the gradient penalty's double backward (pytorch/pytorch#47562,
        #63812) nor a critic frozen for the generator's steps. Every process
        runs the same steps, so the same parameters have gradients.
        """
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast_state(self, module: torch.nn.Module, *, buffers_only: bool = False) -> None:
        """Give every process rank 0's parameters and buffers (what DDP does when it wraps a model)."""
        if self.enabled:
            for t in [*([] if buffers_only else module.parameters()), *module.buffers()]:
                torch.distributed.broadcast(t.data, src=0)

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds in every process (one tiny all-reduce; every process must call it)."""
        return bool(self.reduce(int(flag), "min"))


def from_environment() -> Dist:
    """The rank and world size that ``torchrun`` put in the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(rank=int(os.environ["RANK"]), world=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def setup(device: torch.device) -> Dist:
    """Join the process group when started by ``torchrun``; return this process's :class:`Dist`.

    Parameters
    ----------
    device
        The resolved training device: CUDA uses ``nccl`` and ``cuda:LOCAL_RANK``,
        anything else ``gloo``.
    """
    dist = from_environment()
    if not dist.enabled:
        return dist
    if not torch.distributed.is_available():  # pragma: no cover - torch built without distributed
        msg = "torchrun: this torch build has no torch.distributed"
        raise ConfigError(msg)
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(dist.local_rank)
        torch.distributed.init_process_group(backend=backend)
    return dist


def device_for(device: torch.device, dist: Dist) -> torch.device:
    """Each process on its own GPU: ``cuda:LOCAL_RANK``."""
    if dist.enabled and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    return device


def teardown(dist: Dist) -> None:
    """Leave the process group."""
    if dist.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
