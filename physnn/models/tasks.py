"""What a model is trained to do: its output width, loss and predictions.

- **binary** classification: one logit, binary cross-entropy;
- **multiclass**: K logits, cross-entropy;
- **regression** of K targets: ``mse``/``huber`` (a mean), or ``gaussian``
  (a mean and a variance per target, trained with the Gaussian negative
  log-likelihood so that the predicted spread includes the data's own,
  aleatoric, resolution).

Regression targets are standardised with the training split's mean and
standard deviation inside the task (stored in the checkpoint), so a model
predicts O(1) numbers whatever the units of the target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from physnn.config import DataConfig, Strict
from physnn.errors import ConfigError

MIN_VAR = 1e-6


class TaskConfig(Strict):
    """The learning task.

    Attributes
    ----------
    kind
        ``classification``, ``regression`` or ``auto`` (classification when
        the data config has a ``label``, regression when it has only
        ``targets``).
    loss
        ``auto`` (cross-entropy / gaussian), or ``cross_entropy``, ``mse``,
        ``huber``, ``gaussian``.
    class_weight
        ``balanced`` (inverse class frequency in the training split), a list
        of one weight per class, or None. Multiplies per-event weights.
    """

    kind: Literal["auto", "classification", "regression"] = "auto"
    loss: Literal["auto", "cross_entropy", "mse", "huber", "gaussian"] = "auto"
    class_weight: Literal["balanced"] | list[float] | None = None
    huber_delta: float = Field(default=1.0, gt=0.0)


class Task:
    """A resolved task: knows the classes or targets and the target scaling.

    Use :meth:`from_config` to build one for a dataset and :meth:`state` /
    :meth:`from_state` to store it in a checkpoint.
    """

    def __init__(self, kind: str, loss: str, *, classes: list[Any] | None = None,
                 targets: list[str] | None = None, center: list[float] | None = None,
                 scale: list[float] | None = None, class_weight: list[float] | None = None,
                 huber_delta: float = 1.0, sigma_scale: dict[str, float] | None = None) -> None:
        self.kind = kind  # "binary" | "multiclass" | "regression"
        self.loss_name = loss
        self.classes = classes
        self.targets = targets or []
        self.center = torch.tensor(center or [0.0] * len(self.targets))
        self.scale = torch.tensor(scale or [1.0] * len(self.targets))
        self.class_weight = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
        self.huber_delta = huber_delta
        #: σ scale factors fitted on the validation split (physnn.inference.calibration)
        self.sigma_scale = dict(sigma_scale or {})

    # -- construction and storage ------------------------------------------
    @classmethod
    def from_config(cls, cfg: TaskConfig, data: DataConfig, classes: list[Any] | None,
                    train: Mapping[str, torch.Tensor]) -> Task:
        """Resolve ``auto`` choices and fit the target scaling on the training tensors."""
        kind = cfg.kind
        if kind == "auto":
            kind = "classification" if data.label is not None else "regression"
        if kind == "classification":
            if data.label is None or classes is None:
                msg = "task.kind classification needs a label branch in the data config (label: ...)"
                raise ConfigError(msg)
            if len(classes) < 2:
                msg = f"task: classification needs at least 2 classes, the training data have {classes}"
                raise ConfigError(msg)
            loss = "cross_entropy" if cfg.loss == "auto" else cfg.loss
            if loss != "cross_entropy":
                msg = f"task.loss {loss!r} is for regression; classification uses cross_entropy"
                raise ConfigError(msg)
            weights = cls._class_weights(cfg, classes, train["label"])
            return cls("binary" if len(classes) == 2 else "multiclass", loss, classes=list(classes),
                       class_weight=weights)
        if not data.targets:
            msg = "task.kind regression needs targets in the data config (targets: [...])"
            raise ConfigError(msg)
        loss = "gaussian" if cfg.loss == "auto" else cfg.loss
        if loss == "cross_entropy":
            msg = "task.loss cross_entropy is for classification; regression uses mse, huber or gaussian"
            raise ConfigError(msg)
        if cfg.class_weight is not None:
            msg = "task.class_weight applies to classification only"
            raise ConfigError(msg)
        t = train["target"].double()
        center = t.mean(0)
        scale = t.std(0) if len(t) > 1 else torch.ones_like(center)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return cls("regression", loss, targets=list(data.targets), center=center.tolist(), scale=scale.tolist(),
                   huber_delta=cfg.huber_delta)

    @staticmethod
    def _class_weights(cfg: TaskConfig, classes: list[Any], labels: torch.Tensor) -> list[float] | None:
        if cfg.class_weight is None:
            return None
        if cfg.class_weight == "balanced":
            counts = torch.bincount(labels, minlength=len(classes)).double()
            return (counts.sum() / (len(classes) * counts.clamp(min=1))).tolist()
        if len(cfg.class_weight) != len(classes):
            msg = f"task.class_weight: expected {len(classes)} weights (classes {classes}), got {cfg.class_weight}"
            raise ConfigError(msg)
        return list(cfg.class_weight)

    def state(self) -> dict[str, Any]:
        """Plain types for a checkpoint."""
        return {"kind": self.kind, "loss": self.loss_name, "classes": self.classes, "targets": self.targets,
                "center": self.center.tolist(), "scale": self.scale.tolist(),
                "class_weight": None if self.class_weight is None else self.class_weight.tolist(),
                "huber_delta": self.huber_delta, "sigma_scale": self.sigma_scale}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Task:
        """Rebuild from :meth:`state`."""
        return cls(state["kind"], state["loss"], classes=state["classes"], targets=state["targets"],
                   center=state["center"], scale=state["scale"], class_weight=state["class_weight"],
                   huber_delta=state.get("huber_delta", 1.0), sigma_scale=state.get("sigma_scale"))

    # -- shapes ------------------------------------------------------------
    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"

    @property
    def gaussian(self) -> bool:
        return self.loss_name == "gaussian"

    @property
    def n_outputs(self) -> int:
        """Width of the model's last layer."""
        if self.kind == "binary":
            return 1
        if self.kind == "multiclass":
            return len(self.classes or [])
        return len(self.targets) * (2 if self.gaussian else 1)

    # -- training ----------------------------------------------------------
    def weights(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """Per-event weights: the weight branch times the class weight (None if neither)."""
        w = batch.get("weight")
        if self.class_weight is not None and "label" in batch:
            cw = self.class_weight.to(batch["label"].device)[batch["label"]]
            w = cw if w is None else w * cw
        return w

    def loss(self, out: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Per-event loss, shape (N,)."""
        out = out.float()
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(out[:, 0], batch["label"].float(), reduction="none")
        if self.kind == "multiclass":
            return F.cross_entropy(out, batch["label"], reduction="none")
        k = len(self.targets)
        y = (batch["target"] - self.center.to(out.device, out.dtype)) / self.scale.to(out.device, out.dtype)
        mu = out[:, :k]
        if self.loss_name == "gaussian":
            var = F.softplus(out[:, k:]) + MIN_VAR
            return F.gaussian_nll_loss(mu, y, var, reduction="none").mean(dim=1)
        if self.loss_name == "huber":
            return F.huber_loss(mu, y, reduction="none", delta=self.huber_delta).mean(dim=1)
        return F.mse_loss(mu, y, reduction="none").mean(dim=1)

    # -- predictions -------------------------------------------------------
    def predict(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """Turn raw outputs (..., outputs) into ``prob`` or ``mean`` (+ ``var``) in target units."""
        out = out.float()
        if self.kind == "binary":
            p = torch.sigmoid(out[..., 0])
            return {"prob": torch.stack([1 - p, p], dim=-1)}
        if self.kind == "multiclass":
            return {"prob": torch.softmax(out, dim=-1)}
        k = len(self.targets)
        center, scale = self.center.to(out.device, out.dtype), self.scale.to(out.device, out.dtype)
        result = {"mean": out[..., :k] * scale + center}
        if self.gaussian:
            result["var"] = (F.softplus(out[..., k:]) + MIN_VAR) * scale**2
        return result

    def metrics(self, outs: torch.Tensor, truth: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """Validation metrics of concatenated outputs: accuracy and AUC, or RMSE per target."""
        pred = self.predict(outs)
        if self.is_classification:
            labels = truth["label"].cpu().numpy()
            prob = pred["prob"].cpu().numpy()
            result = {"accuracy": float(np.mean(prob.argmax(1) == labels))}
            if len(np.unique(labels)) == prob.shape[1]:
                from sklearn.metrics import roc_auc_score

                result["auc"] = float(roc_auc_score(labels, prob[:, 1]) if prob.shape[1] == 2 else
                                      roc_auc_score(labels, prob, multi_class="ovr"))
            return result
        mean = pred["mean"].cpu().numpy()
        target = truth["target"].cpu().numpy()
        rmse = np.sqrt(np.mean((mean - target) ** 2, axis=0))
        result = {f"rmse_{name}": float(v) for name, v in zip(self.targets, rmse, strict=True)}
        if "var" in pred:
            sigma = np.sqrt(pred["var"].cpu().numpy())
            result["coverage_1sigma"] = float(np.mean(np.abs(mean - target) <= sigma))
        return result

    def describe(self) -> str:
        """One line for logs."""
        if self.is_classification:
            return f"{self.kind} classification of {len(self.classes or [])} classes {self.classes}"
        return f"regression of {', '.join(self.targets)} ({self.loss_name} loss)"
