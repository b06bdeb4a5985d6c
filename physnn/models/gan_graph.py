"""A GAN fast simulator as an exportable graph: conditions and random numbers in, showers out.

The graph takes its random numbers as inputs (``z``, and the readout
``noise`` when the generator adds one), so the C++ side owns the seeding; it
returns the generated cells in physical units after zero suppression, as
``physnn generate`` writes them. It follows :class:`physnn.models.graph.ExportGraph`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["GeneratorModel"]


class GeneratorModel(nn.Module):
    """A GAN's generator as a function of its conditions and its random numbers.

    Parameters
    ----------
    model
        The run's GAN (its ``generator`` and ``latent_dim``).
    task
        The run's :class:`~physnn.models.generation.GenerationTask`.
    """

    def __init__(self, model: nn.Module, task: Any) -> None:
        super().__init__()
        self.model, self.task = model, task
        self.input_names = ["conditions"] if task.scalars else []
        if task.classes is not None:
            self.input_names.append("class_index")
        self.input_names.append("z")
        self.readout_draws = task.readout_shape(model)  # None: the generator takes no readout draws
        if self.readout_draws is not None:
            self.input_names.append("noise")
        self.output_names = ["image"]

    def examples(self, n: int = 3) -> tuple[torch.Tensor, ...]:
        """``n`` events to trace with: conditions drawn like the training showers', standard-normal noise."""
        gen = torch.Generator().manual_seed(0)
        task = self.task
        out: dict[str, torch.Tensor] = {}
        if "conditions" in self.input_names:
            raw = task.sample_conditions(n, np.random.default_rng(0))
            out["conditions"] = torch.from_numpy(np.stack([raw[s] for s in task.scalars], axis=1)).float()
        if "class_index" in self.input_names:
            out["class_index"] = torch.arange(n, dtype=torch.int64) % len(task.classes)
        out["z"] = torch.randn(n, self.model.latent_dim, generator=gen)
        if self.readout_draws is not None:
            out["noise"] = torch.randn(n, *self.readout_draws, generator=gen)  # (N, [draws,] layers, H, W)
        return tuple(out[name] for name in self.input_names)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor]:
        given = dict(zip(self.input_names, inputs, strict=True))
        task = self.task
        z = given["z"].float()
        scalars = given.get("conditions", z.new_zeros(z.shape[0], 0)).float()
        cond = task.encode_conditions(scalars, given.get("class_index"))
        incident = scalars[:, task.incident] if task.incident is not None else z.new_ones(z.shape[0])
        prior = None if task.shape_prior is None else task.shape_prior.to(z.device)
        x = self.model.generator(z, cond, task.offset(incident), prior, None)
        if self.readout_draws is not None:
            x = self.model.generator.readout(x, given["noise"], task.cells, cond)
        return (task.to_phys(task.suppress(x)),)
