"""Reconstruction (autoencoders): the model outputs a clean version of its own input.

The input is the images, a padded sequence or the scalars; the target is the
clean input: the input itself, or a second set of branches
(``data.target_images``, e.g. noise-free truth next to digitised cells), and
the input the model sees can be made noisy on the fly (``task.noise``,
:mod:`physnn.data.noise`). Losses: ``mse``, ``huber``, or ``balanced``, the
mean of the squared error over the truth's hit cells and over its empty
cells, each weighted one half, so that a sparse calorimeter image (most cells
empty) cannot be learned by predicting zeros everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from physnn.config import DataConfig
from physnn.data.noise import NoiseSpec, apply_noise, check_noise
from physnn.errors import ConfigError
from physnn.models.task_config import TaskConfig
from physnn.models.tasks import Task, register_task


@register_task("reconstruction")
class ReconstructionTask(Task):
    """Autoencoders: the model outputs (a clean version of) its own input.

    Model outputs live in the input's space (standardised when the data
    config standardises that input); :meth:`to_phys` maps them back to
    physical units for predictions and metrics, and noise is added in
    physical units. The clean target of a batch is ``batch["clean"]`` after
    :meth:`augment`.
    """

    def __init__(self, loss: str, *, key: str, shape: list[int], center: list[float] | None = None,
                 scale: list[float] | None = None, noise: list[dict[str, Any]] | None = None,
                 paired: bool = False, hit_threshold: float = 0.0, huber_delta: float = 1.0,
                 log_scale: float | None = None, energy_weight: float = 0.0) -> None:
        super().__init__("reconstruction", loss, huber_delta=huber_delta)
        self.log_scale = log_scale
        self.energy_weight = energy_weight
        from pydantic import TypeAdapter

        self.key = key
        self.shape = [int(s) for s in shape]
        width = self.shape[0] if key == "image" else self.shape[-1]
        trailing = [width] + ([1] * (len(self.shape) - 1) if key == "image" else [])
        self.center = torch.tensor(center or [0.0] * width, dtype=torch.float32).reshape(trailing)
        self.scale = torch.tensor(scale or [1.0] * width, dtype=torch.float32).reshape(trailing)
        self.identity = bool((self.center == 0).all() and (self.scale == 1).all())
        self.noise = TypeAdapter(list[NoiseSpec]).validate_python(noise or [])
        self.paired = paired
        self.hit_threshold = hit_threshold

    @classmethod
    def from_config(cls, cfg: TaskConfig, data: DataConfig, classes: list[Any] | None,
                    train: Mapping[str, torch.Tensor], transform: Any = None,
                    summary: Mapping[str, Any] | None = None) -> ReconstructionTask:
        """Pick the reconstructed input and read its standardisation from the transform."""
        key = cfg.reconstruct
        if key == "auto":
            key = next((k for k in ("image", "sequence", "scalars") if k in train), "image")
        if key not in train:
            section = {"image": "images", "sequence": "sequence", "scalars": "scalars"}[key]
            msg = f"task.reconstruct {key}: the data config has no {section} input to reconstruct"
            raise ConfigError(msg)
        loss = ("balanced" if key == "image" else "mse") if cfg.loss == "auto" else cfg.loss
        if loss in ("cross_entropy", "gaussian"):
            msg = f"task.loss {loss!r} does not apply to reconstruction; use mse, huber or balanced"
            raise ConfigError(msg)
        if cfg.class_weight is not None:
            msg = "task.class_weight applies to classification only"
            raise ConfigError(msg)
        shape = list(train[key].shape[1:])
        paired = "target_image" in train
        if paired and key != "image":
            msg = "data.target_images are the targets of image reconstruction; set task.reconstruct: image"
            raise ConfigError(msg)
        if paired and list(train["target_image"].shape[1:]) != shape:
            msg = (f"data.target_images {data.target_images.branches if data.target_images else ''}: shape "
                   f"{list(train['target_image'].shape[1:])} per event, the input images have {shape}")
            raise ConfigError(msg)
        check_noise(cfg.noise, shape[0] if key == "image" else shape[-1])
        center = scale = None
        if transform is not None and key in transform.center:
            center, scale = list(transform.center[key]), list(transform.scale[key])
        return cls(loss, key=key, shape=shape, center=center, scale=scale,
                   noise=[n.model_dump() for n in cfg.noise], paired=paired, hit_threshold=cfg.hit_threshold,
                   huber_delta=cfg.huber_delta, log_scale=cfg.log_scale, energy_weight=cfg.energy_weight)

    COMMANDS: ClassVar[tuple[str, ...]] = ("denoise", "encode")
    ENSEMBLES: ClassVar[bool] = False

    def next_command(self, run: Any) -> str:
        """An image autoencoder denoises files; one of other inputs writes their codes."""
        if self.key == "image":
            return f"physnn denoise {run} FILE --out denoised.root"
        return f"physnn encode {run} FILE --out codes.root"

    def io_fields(self) -> dict[str, Any]:
        """The model reconstructs its ``key`` input."""
        return {"reconstruct": self.key}

    def other_commands(self, run: Any) -> list[str]:
        """An image autoencoder also writes codes."""
        return [f"physnn encode {run} FILE --out codes.root"] if self.key == "image" else []

    def state(self) -> dict[str, Any]:
        """Plain types for a checkpoint."""
        return {"kind": self.kind, "loss": self.loss_name, "key": self.key, "shape": self.shape,
                "center": self.center.flatten().tolist(), "scale": self.scale.flatten().tolist(),
                "noise": [n.model_dump() for n in self.noise], "paired": self.paired,
                "hit_threshold": self.hit_threshold, "huber_delta": self.huber_delta, "log_scale": self.log_scale,
                "energy_weight": self.energy_weight}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ReconstructionTask:
        """Rebuild from :meth:`state`."""
        return cls(state["loss"], key=state["key"], shape=state["shape"], center=state["center"],
                   scale=state["scale"], noise=state["noise"], paired=state["paired"],
                   hit_threshold=state["hit_threshold"], huber_delta=state.get("huber_delta", 1.0),
                   log_scale=state.get("log_scale"), energy_weight=state.get("energy_weight", 0.0))

    @property
    def n_outputs(self) -> int:
        return int(np.prod(self.shape))

    # -- units -------------------------------------------------------------
    def to_phys(self, x: torch.Tensor) -> torch.Tensor:
        """Model space -> physical units (undo the input standardisation)."""
        if self.identity:
            return x
        return x * self.scale.to(x.device, x.dtype) + self.center.to(x.device, x.dtype)

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Physical units -> model space."""
        if self.identity:
            return x
        return (x - self.center.to(x.device, x.dtype)) / self.scale.to(x.device, x.dtype)

    def noisy(self, x: torch.Tensor, mask: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` (model space) with the task's noise added in physical units."""
        if not self.noise:
            return x
        phys = apply_noise(self.to_phys(x.float()), self.noise, channel_axis=1 if self.key == "image" else -1,
                           mask=mask if self.key == "sequence" else None, generator=generator)
        return self.to_model(phys).to(x.dtype)

    # -- training ----------------------------------------------------------
    @property
    def alters_inputs(self) -> bool:
        """Training adds ``task.noise`` to the inputs."""
        return bool(self.noise)

    def augment(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        """Set ``clean`` (the target) and make the input noisy."""
        out = dict(batch)
        x = batch[self.key]
        out["clean"] = self.to_model(batch["target_image"]) if self.paired else x
        out[self.key] = self.noisy(x, batch.get("mask"), generator)
        return out

    def _valid(self, batch: Mapping[str, torch.Tensor], like: torch.Tensor) -> torch.Tensor | None:
        """Per-cell weights of a padded sequence (1 inside, 0 in the padding); None otherwise."""
        if self.key != "sequence" or "mask" not in batch:
            return None
        mask = batch["mask"].to(like.dtype)
        return mask[..., None].expand_as(like)

    def _clean(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if "clean" in batch:
            return batch["clean"]
        return self.to_model(batch["target_image"]) if self.paired else batch[self.key]

    def loss(self, out: torch.Tensor, batch: Mapping[str, torch.Tensor], *, training: bool = True) -> torch.Tensor:
        """Per-event loss (N,) between the output and the clean target (the same in training and validation)."""
        clean = self._clean(batch).float()
        out = out.float().reshape(clean.shape)
        per_event = self._cell_loss(out, clean, batch)
        if self.energy_weight > 0 and self.key == "image":
            e_true = self.to_phys(clean).flatten(1).sum(1)
            e_out = self.to_phys(out).flatten(1).sum(1)
            per_event = per_event + self.energy_weight * ((e_out - e_true) / e_true.abs().clamp(min=1e-3)) ** 2
        return per_event

    def _cell_loss(self, out: torch.Tensor, clean: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        valid = self._valid(batch, clean)
        hit = (self.to_phys(clean) > self.hit_threshold).flatten(1).float()
        if self.log_scale is not None:
            out, clean = torch.asinh(out / self.log_scale), torch.asinh(clean / self.log_scale)
        if self.loss_name == "huber":
            err = F.huber_loss(out, clean, reduction="none", delta=self.huber_delta)
        else:
            err = (out - clean) ** 2
        err = err.flatten(1)
        if self.loss_name == "balanced":
            empty = 1.0 - hit
            if valid is not None:
                empty = empty * valid.flatten(1)
            hit_term = (err * hit).sum(1) / hit.sum(1).clamp(min=1)
            empty_term = (err * empty).sum(1) / empty.sum(1).clamp(min=1)
            return 0.5 * hit_term + 0.5 * empty_term
        if valid is None:
            return err.mean(1)
        w = valid.flatten(1)
        return (err * w).sum(1) / w.sum(1).clamp(min=1)

    # -- predictions -------------------------------------------------------
    def predict(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs (..., cells) -> ``reconstruction`` (..., *shape) in physical units."""
        out = out.float()
        n = len(self.shape)
        shaped = out.dim() > n and tuple(out.shape[-n:]) == tuple(self.shape)
        lead = out.shape[:-n] if shaped else out.shape[:-1]
        return {"reconstruction": self.to_phys(out.reshape(*lead, *self.shape))}

    def summarize(self, outs: torch.Tensor, *, keep_samples: bool = False,
                  mc: bool | None = None) -> dict[str, torch.Tensor]:
        """Outputs of T passes (T, N, ...) -> ``reconstruction`` (N, *shape), their mean in physical units, and
        with T >= 2 ``reconstruction_std``, the per-cell spread (an uncertainty map)."""
        rec = self.predict(outs)["reconstruction"]
        out = {"reconstruction": rec.mean(0)}
        if rec.shape[0] > 1:
            out["reconstruction_std"] = rec.std(0)
        return out

    def export_outputs(self, spread: bool) -> dict[str, str]:
        """An exported autoencoder returns its deterministic ``reconstruction``."""
        if spread:
            msg = "export --mc-samples: MC dropout is for classifiers and regressors, not a reconstruction run"
            raise ConfigError(msg)
        return {"reconstruction": "reconstruction"}

    def record(self, out: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-event squared errors of output and noisy input against the clean target, and energy sums."""
        clean = self.to_phys(self._clean(batch).float())
        rec = self.to_phys(out.float().reshape(clean.shape))
        noisy = self.to_phys(batch[self.key].float())
        valid = self._valid(batch, clean)
        w = torch.ones_like(clean) if valid is None else valid
        result = {"sse": ((rec - clean) ** 2 * w).flatten(1).sum(1), "sse_input": ((noisy - clean) ** 2 * w)
                  .flatten(1).sum(1), "cells": w.flatten(1).sum(1)}
        if self.key == "image":
            result.update(e_true=clean.flatten(1).sum(1), e_out=rec.flatten(1).sum(1),
                          e_input=noisy.flatten(1).sum(1))
        return {k: v.double().cpu() for k, v in result.items()}

    def metrics_of(self, records: list[Any], truth: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """``rmse`` of the output and ``rmse_input`` of the noisy input against the clean target (physical
        units, per cell), their ratio ``gain`` and, for images, the total-energy ``energy_bias``."""
        rec = {k: torch.cat([r[k] for r in records]) for k in records[0]}
        cells = float(rec["cells"].sum())
        rmse = math.sqrt(float(rec["sse"].sum()) / max(cells, 1.0))
        result = {"rmse": rmse, "rmse_input": math.sqrt(float(rec["sse_input"].sum()) / max(cells, 1.0))}
        if result["rmse_input"] > 0:
            result["gain"] = result["rmse_input"] / max(rmse, 1e-30)
        if "e_true" in rec:
            ok = rec["e_true"] > 0
            if ok.any():
                result["energy_bias"] = float(torch.median(rec["e_out"][ok] / rec["e_true"][ok] - 1.0))
        return result

    def metric_goals(self) -> dict[str, str | float]:
        """Errors are minimised, the denoising gain maximised, the energy bias best at 0; ``rmse_input`` (the
        noise itself) does not depend on the model."""
        return {"loss": "min", "rmse": "min", "rmse_input": "min", "gain": "max", "energy_bias": 0.0}

    def describe(self) -> str:
        noise = "+".join(n.type for n in self.noise) or "no noise"
        target = "paired target branches" if self.paired else "the input as target"
        return f"reconstruction of {self.key} {tuple(self.shape)} ({noise}, {target}, {self.loss_name} loss)"
