"""A trained model as an exportable graph: physical inputs in, the task's outputs out.

:mod:`physnn.inference.export` traces what a task's :meth:`graph` returns:
any ``nn.Module`` that follows :class:`ExportGraph` (its input and output
names, example inputs to trace with). :class:`PhysicsModel` serves the
classifiers, regressors and autoencoders: the run's standardisation and
padding mask before the network, :meth:`~physnn.models.tasks.Task.summarize`
after it (the same outputs as ``physnn predict``, MC dropout included); the
GAN's graph is :class:`physnn.models.gan_graph.GeneratorModel`.

Modules that compute differently for a graph (an RNN that packs its
sequences) follow :class:`ExportSwitch`: the exporter enters their
``exporting`` context for the time of the export.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from physnn.data.transform import Transform
from physnn.errors import ConfigError
from physnn.models.base import StagedModel, undrawn_dropout
from physnn.models.mc_dropout import repeat_rows
from physnn.models.registry import ModelIO

__all__ = ["ExportGraph", "ExportSwitch", "PhysicsModel"]


@runtime_checkable
class ExportGraph(Protocol):
    """What the exporter needs of a graph module besides ``forward(*inputs)``."""

    #: the graph's inputs, in the order ``forward`` takes them
    input_names: list[str]
    #: the graph's outputs, in the order ``forward`` returns them
    output_names: list[str]

    def examples(self, n: int = 3) -> tuple[torch.Tensor, ...]:
        """Inputs of ``n`` events to trace with, in physical units near the training data."""
        ...


@runtime_checkable
class ExportSwitch(Protocol):
    """A layer that computes the same outputs with traceable operations while it is exported."""

    def exporting(self, *, mc_dropout: bool) -> contextlib.AbstractContextManager[None]:
        """Switch to the traceable computation (``mc_dropout``: with dropout drawn in the graph) until exit."""
        ...


class SummarizingTask(Protocol):
    """What :class:`PhysicsModel` asks of its task (:class:`~physnn.models.tasks.Task` has it)."""

    def summarize(self, outs: torch.Tensor, *, keep_samples: bool = False,
                  mc: bool | None = None, central: torch.Tensor | None = None) -> dict[str, torch.Tensor]: ...

    def export_outputs(self, spread: bool) -> dict[str, str]: ...


def _affine(transform: Transform, key: str) -> tuple[torch.Tensor, torch.Tensor]:
    center = torch.tensor(transform.center.get(key, [0.0]), dtype=torch.float32)
    scale = torch.tensor(transform.scale.get(key, [1.0]), dtype=torch.float32)
    return center, scale


class PhysicsModel(nn.Module):
    """A trained model between physical inputs and its task's summarized outputs (see the module docs).

    Parameters
    ----------
    model, task, transform, io
        The run's network (or an ensemble's members, :mod:`physnn.models.ensemble`), task, fitted
        preprocessing and shapes.
    mc_samples
        T > 0: T stochastic passes per event in the graph (the part before the first dropout once), and the
        spreads among the outputs, as ``physnn predict --mc-samples T``. An ensemble's graph runs every
        member (T times each) and returns their spread, as ``physnn predict`` of an ensemble does.
    """

    def __init__(self, model: StagedModel | Sequence[StagedModel], task: SummarizingTask, transform: Transform,
                 io: ModelIO, mc_samples: int = 0) -> None:
        super().__init__()
        self.members = nn.ModuleList(model if isinstance(model, Sequence) else [model])
        self.task, self.io, self.mc_samples = task, io, mc_samples
        self.heads = task.export_outputs(mc_samples > 0 or len(self.members) > 1)
        self.output_names = list(self.heads)
        self.input_names = [*(["image"] if io.image is not None else []),
                            *(["sequence", "length"] if io.sequence is not None else []),
                            *(["kinematics"] if io.sequence is not None and io.kinematics else []),
                            *(["scalars"] if io.scalars else []),
                            *(["baseline"] if io.baselines else [])]  # in the target's unit, per target
        for key in ("image", "sequence", "scalars"):
            center, scale = _affine(transform, key)
            self.register_buffer(f"{key}_center", center, persistent=False)
            self.register_buffer(f"{key}_scale", scale, persistent=False)
        #: the stage from which the MC passes run T times (computed before the dropout layers are swapped)
        self.first_stochastic = self.members[0].first_stochastic_stage()
        if mc_samples and self.first_stochastic >= len(self.members[0].stages):
            msg = "export --mc-samples: the model has no dropout layer, its MC-dropout spread would be zero"
            raise ConfigError(msg)
        self.max_length = int(transform.max_length or 1)

    def examples(self, n: int = 3, length: int = 5) -> tuple[torch.Tensor, ...]:
        """``n`` events to trace with: images spread like the training images, sequences of ``length``
        particles (one of each length ``length``, 2 and 0 among the first three events)."""
        gen = torch.Generator().manual_seed(0)
        out: dict[str, torch.Tensor] = {}
        if self.io.image is not None:
            shape = [1, -1] + [1] * (len(self.io.image) - 1)
            out["image"] = (torch.rand(n, *self.io.image, generator=gen) * self.image_scale.reshape(shape)
                            + self.image_center.reshape(shape))
        if self.io.sequence is not None:
            out["sequence"] = torch.randn(n, length, self.io.sequence[1], generator=gen)
            out["length"] = torch.tensor([length, 2, 0][:n] + [1] * max(n - 3, 0), dtype=torch.int64)
            pt = 5.0 + 20.0 * torch.rand(n, length, generator=gen)  # [pt, eta, phi, energy] of massive particles
            eta = torch.randn(n, length, generator=gen)
            phi = (2 * torch.rand(n, length, generator=gen) - 1) * torch.pi
            out["kinematics"] = torch.stack([pt, eta, phi, 1.01 * pt * torch.cosh(eta)], dim=-1)
        if self.io.scalars:
            out["scalars"] = torch.randn(n, self.io.scalars, generator=gen)
        if self.io.baselines:  # positive, a few decades: e.g. a cell sum of 1-100 GeV
            out["baseline"] = torch.exp(torch.rand(n, self.io.baselines, generator=gen) * 4.6)
        return tuple(out[name] for name in self.input_names)

    def standardized(self, given: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The model's batch from physical inputs: standardised, sequences masked beyond their length."""
        batch: dict[str, torch.Tensor] = {}
        if "image" in given:
            x = given["image"].float()
            shape = [1, -1] + [1] * (x.dim() - 2)
            batch["image"] = (x - self.image_center.reshape(shape)) / self.image_scale.reshape(shape)
        if "sequence" in given:
            x = given["sequence"].float()
            steps = torch.arange(x.shape[1], device=x.device)
            # particles beyond max_length are masked out, as they were clipped in training
            mask = steps[None, :] < given["length"].to(x.device).clamp(max=self.max_length)[:, None]
            x = (x - self.sequence_center) / self.sequence_scale
            batch["sequence"] = x * mask[..., None].to(x.dtype)
            batch["mask"] = mask
            if "kinematics" in given:  # four-vectors in physical units, zero beyond each event's length
                batch["kinematics"] = given["kinematics"].float() * mask[..., None].to(x.dtype)
        if "scalars" in given:
            batch["scalars"] = (given["scalars"].float() - self.scalars_center) / self.scalars_scale
        if "baseline" in given:  # as it is: the task multiplies the predicted ratio by it
            batch["baseline"] = given["baseline"].float()
        return batch

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch = self.standardized(dict(zip(self.input_names, inputs, strict=True)))
        if self.mc_samples:  # each member's deterministic pass is the central value, as in physnn predict
            central, raw = (list(part) for part in zip(*[self._passes(m, batch) for m in self.members], strict=True))
        else:
            raw = [model(batch)[None] for model in self.members]
        summary = self.task.summarize(torch.cat(raw) if len(raw) > 1 else raw[0], mc=self.mc_samples > 0,
                                      **({"central": torch.cat(central)} if self.mc_samples else {}))
        return tuple(summary[key] for key in self.heads.values())

    def _passes(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The deterministic pass (1, N, outputs), dropout off, and T passes with dropout drawn in the graph,
        (T, N, outputs): the part before the first dropout once, the rest on T x N rows, as
        :func:`~physnn.models.mc_dropout.mc_forward_central`."""
        t, first = self.mc_samples, self.first_stochastic
        side = model.side(batch)
        if first < 0:  # dropout in the adapter (an RNN): T full passes
            with undrawn_dropout():
                central = model(batch)
            x, first = model.adapt({k: repeat_rows(v, t) for k, v in batch.items()}), 0
        else:
            prefix = model.run(model.adapt(batch), side, 0, first)
            with undrawn_dropout():
                central = model.run(prefix, side, first)
            x = repeat_rows(prefix, t)
        raw = model.run(x, {k: repeat_rows(v, t) for k, v in side.items()}, first)
        return central[None], raw.reshape(t, -1, raw.shape[-1])

