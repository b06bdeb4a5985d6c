"""What a model is trained to do: its output width, loss and predictions.

- **binary** classification: one logit, binary cross-entropy;
- **multiclass**: K logits, cross-entropy;
- **regression** of K targets: ``mse``/``huber`` (a mean), or ``gaussian`` (a mean and a variance per
  target, trained with the Gaussian negative log-likelihood so that the predicted spread includes the
  data's own, aleatoric, resolution);
- **reconstruction** (autoencoders): :mod:`physnn.models.reconstruction`;
- **generation** (GANs): :mod:`physnn.models.generation`. Both register
  their kind (:func:`register_task`).

Regression targets are standardised with the training split's mean and
standard deviation inside the task (stored in the checkpoint), so a model
predicts O(1) numbers whatever the units of the target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from physnn.config import DataConfig
from physnn.data.targets import baseline_names, forward, target_transforms
from physnn.errors import ConfigError
from physnn.models.conformal import conformal_bounds
from physnn.models.graph import PhysicsModel
from physnn.models.mc_dropout import classification_summary, summary_weight
from physnn.models.target_maps import split_outputs, summary_in_units, to_network, to_units
from physnn.models.task_config import TaskConfig

MIN_VAR = 1e-6
#: the probability inside ±1σ of a Gaussian: the nominal coverage of an error bar
ONE_SIGMA = 0.682689492


def class_counts(classes: list[Any], train: Mapping[str, torch.Tensor],
                 summary: Mapping[str, Any] | None) -> torch.Tensor:
    """Training events per class (in class order): exact from the summary of the whole training split, else
    counted in the ``train`` tensors."""
    if summary is not None and "label_counts" in summary:
        counts = dict(summary["label_counts"])
        return torch.tensor([counts.get(c, 0) for c in classes], dtype=torch.int64)
    return torch.bincount(train["label"], minlength=len(classes))


TaskT = TypeVar("TaskT", bound="Task")

#: Task classes by kind beyond the discriminative ones (``reconstruction``, ``generation``, ...), each
#: registered by its module with :func:`register_task`.
TASK_TYPES: dict[str, type[Task]] = {}


def register_task(kind: str) -> Callable[[type[TaskT]], type[TaskT]]:
    """Class decorator: ``kind`` in a task config or a checkpoint is built by the decorated class."""

    def decorate(cls: type[TaskT]) -> type[TaskT]:
        TASK_TYPES[kind] = cls
        return cls

    return decorate


def task_type(kind: str) -> type[Task] | None:
    """The class registered for ``kind`` (None: a classification or regression, :class:`Task` itself)."""
    if kind not in TASK_TYPES:
        from physnn.models.registry import discover

        discover()
    return TASK_TYPES.get(kind)


class Task:
    """A resolved task: knows the classes or targets and the target scaling.

    Use :meth:`from_config` to build one for a dataset and :meth:`state` /
    :meth:`from_state` to store it in a checkpoint.
    """

    def __init__(self, kind: str, loss: str, *, classes: list[Any] | None = None,
                 targets: list[str] | None = None, center: list[float] | None = None,
                 scale: list[float] | None = None, class_weight: list[float] | None = None,
                 huber_delta: float = 1.0, sigma_scale: dict[str, Any] | None = None,
                 transforms: list[str] | None = None, gaussian_mean: str = "nll",
                 conformal: dict[str, Any] | None = None, signal: int = 1,
                 baselines: list[str | None] | None = None) -> None:
        self.kind = kind  # "binary" | "multiclass" | "regression"
        self.loss_name = loss
        self.classes = classes
        self.targets = targets or []
        self.center = torch.tensor(center or [0.0] * len(self.targets))
        self.scale = torch.tensor(scale or [1.0] * len(self.targets))
        self.class_weight = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
        self.huber_delta = huber_delta
        self.gaussian_mean = gaussian_mean
        #: what the network regresses for each target: ``none`` or ``log`` (:mod:`physnn.data.targets`)
        self.transforms = list(transforms or ["none"] * len(self.targets))
        #: σ scale factors per target, fitted on the validation split (physnn.training.calibration):
        #: ``{"deterministic": [s per target], "mc": [s per target]}``
        self.sigma_scale = dict(sigma_scale or {})
        #: split-conformal quantiles per mode, fitted on the validation split (physnn.models.conformal)
        self.conformal = dict(conformal or {})
        #: each target's baseline column (None: none), empty when the targets are absolute (:mod:`.target_maps`)
        self.baselines = list(baselines or [])
        self.signal = signal  #: binary: the class index whose probability ``score`` is (data config's ``signal``)

    # -- construction and storage ------------------------------------------
    @classmethod
    def from_config(cls, cfg: TaskConfig, data: DataConfig, classes: list[Any] | None,
                    train: Mapping[str, torch.Tensor], transform: Any = None,
                    summary: Mapping[str, Any] | None = None) -> Task:
        """Resolve ``auto`` choices and fit the target scaling and class weights on the training split.

        ``transform`` (the data's fitted :class:`~physnn.data.transform.Transform`)
        is needed for reconstruction: noise is added in physical units.
        ``summary`` (:meth:`~physnn.data.transform.TransformFitter.summary`)
        holds the exact label counts and target moments of the whole training
        split; without it they come from the ``train`` tensors (which, when
        streaming, are only a sample).
        """
        kind = cls.resolved_kind(cfg.kind, data)
        special = task_type(kind)
        if special is not None and special is not cls:
            return special.from_config(cfg, data, classes, train, transform, summary)
        if cfg.noise or data.target_images is not None:
            msg = "task.noise and data.target_images are for task.kind reconstruction (autoencoders)"
            raise ConfigError(msg)
        if cfg.loss == "balanced":
            msg = "task.loss balanced is for reconstruction (autoencoders)"
            raise ConfigError(msg)
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
            weights = cls._class_weights(cfg, classes, class_counts(classes, train, summary))
            signal = data.signal_index()  # binary: whose probability ``score`` is (default class 1)
            return cls("binary" if len(classes) == 2 else "multiclass", loss, classes=list(classes),
                       class_weight=weights, signal=1 if signal is None else signal)
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
        transforms = target_transforms(data)
        if summary is not None and "target_center" in summary:
            center, scale = torch.tensor(summary["target_center"]), torch.tensor(summary["target_scale"])
        else:
            base = train.get("baseline")
            t = torch.from_numpy(forward(train["target"].numpy(), transforms,
                                         baseline=None if base is None else base.numpy()))
            center = t.mean(0)
            scale = t.std(0) if len(t) > 1 else torch.ones_like(center)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return cls("regression", loss, targets=list(data.targets), center=center.tolist(), scale=scale.tolist(),
                   huber_delta=cfg.huber_delta, transforms=transforms, gaussian_mean=cfg.gaussian_mean,
                   baselines=baseline_names(data))

    @staticmethod
    def resolved_kind(kind: str, data: DataConfig) -> str:
        """``task.kind`` with ``auto`` resolved from the data: classification with a label, regression with
        targets, else reconstruction (a GAN model makes it generation, see :func:`physnn.training.run.train`)."""
        if kind != "auto":
            return kind
        return "classification" if data.label is not None else "regression" if data.targets else "reconstruction"

    @staticmethod
    def _class_weights(cfg: TaskConfig, classes: list[Any], counts: torch.Tensor) -> list[float] | None:
        if cfg.class_weight is None:
            return None
        if cfg.class_weight == "balanced":
            counts = counts.double()
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
                "huber_delta": self.huber_delta, "sigma_scale": self.sigma_scale, "transforms": self.transforms,
                "gaussian_mean": self.gaussian_mean, "conformal": self.conformal,
                "signal": self.signal, "baselines": self.baselines}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Task:
        """Rebuild from :meth:`state`."""
        special = task_type(state["kind"])
        if special is not None and special is not cls:
            return special.from_state(state)
        return cls(state["kind"], state["loss"], classes=state["classes"], targets=state["targets"],
                   center=state["center"], scale=state["scale"], class_weight=state["class_weight"],
                   huber_delta=state.get("huber_delta", 1.0), sigma_scale=state.get("sigma_scale"),
                   transforms=state.get("transforms"), gaussian_mean=state.get("gaussian_mean", "nll"),
                   conformal=state.get("conformal"), signal=state.get("signal", 1),
                   baselines=state.get("baselines"))

    #: The commands that use a run of this task (besides train, evaluate and export).
    COMMANDS: ClassVar[tuple[str, ...]] = ("predict",)
    #: whether ``physnn train --ensemble N`` may train several members of a run of this task (their outputs
    #: stacked like MC-dropout passes: :mod:`physnn.models.ensemble`)
    ENSEMBLES: ClassVar[bool] = True
    #: What a run for each command is, in refusals ("not a GAN run ...").
    RUN_FOR: ClassVar[dict[str, str]] = {"predict": "a classifier or regressor run",
                                         "denoise": "an image autoencoder run", "encode": "an autoencoder run",
                                         "generate": "a GAN run"}

    def check_command(self, command: str, run: Any) -> None:
        """Refuse, in one line, a command that does not use a run of this task, naming the one that does."""
        if command not in self.COMMANDS:
            uses = " or ".join([self.next_command(run), *self.other_commands(run)])
            msg = f"{run}: not {self.RUN_FOR[command]} ({self.describe()}); physnn {command} needs one; use: {uses}"
            raise ConfigError(msg)

    @property
    def calibrated_error_bars(self) -> bool:
        """Whether the predictions carry error bars whose scale is fitted on the validation split (regression)."""
        return self.kind == "regression"

    def io_fields(self) -> dict[str, Any]:
        """What the model needs beyond the data's shapes and :attr:`n_outputs` (:class:`ModelIO` fields)."""
        return {"baselines": len(self.targets)} if self.baselines else {}

    def training_step(self) -> Any:
        """How this task trains (a :class:`~physnn.models.steps.TrainingStep`); None: the supervised step."""
        return None

    def next_command(self, run: Any) -> str:
        """The command that uses a finished run of this task (printed after training)."""
        return f"physnn predict {run} FILE --mc-samples 50 --out preds.root"

    def other_commands(self, run: Any) -> list[str]:
        """Further commands that use a run of this task (named in refusals after :meth:`next_command`)."""
        return []

    # -- shapes ------------------------------------------------------------
    @property
    def is_classification(self) -> bool:
        return self.kind in ("binary", "multiclass")

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
    def augment(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        """The batch the model trains on (reconstruction adds noise here); as it is by default."""
        return batch

    @property
    def alters_inputs(self) -> bool:
        """Whether training feeds the network other inputs than the files' (:meth:`augment` adds noise): then
        the network's features of the files' events are not those it learnt on."""
        return False

    def weights(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """Per-event weights: the weight branch times the class weight (None if neither)."""
        w = batch.get("weight")
        if self.class_weight is not None and "label" in batch:
            cw = self.class_weight.to(batch["label"].device)[batch["label"]]
            w = cw if w is None else w * cw
        return w

    def loss(self, out: torch.Tensor, batch: Mapping[str, torch.Tensor], *, training: bool = True) -> torch.Tensor:
        """Per-event loss, shape (N,); ``training=False``: the proper score reported for validation (the plain
        Gaussian NLL, also with ``gaussian_mean: mse``), comparable between epochs."""
        out = out.float()
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(out[:, 0], batch["label"].float(), reduction="none")
        if self.kind == "multiclass":
            return F.cross_entropy(out, batch["label"], reduction="none")
        k = len(self.targets)
        out, baseline = split_outputs(out, self.n_outputs, bool(self.baselines))
        y = (to_network(batch["target"], self.transforms, baseline) - self.center.to(out.device, out.dtype)
             ) / self.scale.to(out.device, out.dtype)
        mu = out[:, :k]
        if self.loss_name == "gaussian":
            var = F.softplus(out[:, k:]) + MIN_VAR
            if self.gaussian_mean == "mse" and training:  # the mean as in a plain regression, the variance by NLL
                return (F.mse_loss(mu, y, reduction="none")
                        + F.gaussian_nll_loss(mu.detach(), y, var, reduction="none")).mean(dim=1)
            return F.gaussian_nll_loss(mu, y, var, reduction="none").mean(dim=1)
        if self.loss_name == "huber":
            return F.huber_loss(mu, y, reduction="none", delta=self.huber_delta).mean(dim=1)
        return F.mse_loss(mu, y, reduction="none").mean(dim=1)

    # -- predictions -------------------------------------------------------
    def predict(self, out: torch.Tensor, *, units: bool = True) -> dict[str, torch.Tensor]:
        """Raw outputs (..., outputs) -> ``prob``, or ``mean`` (+ ``var``) in target units (``units=False``: log E)."""
        out = out.float()
        if self.kind == "binary":
            p = torch.sigmoid(out[..., 0])
            return {"prob": torch.stack([1 - p, p], dim=-1)}
        if self.kind == "multiclass":
            return {"prob": torch.softmax(out, dim=-1)}
        k = len(self.targets)
        center, scale = self.center.to(out.device, out.dtype), self.scale.to(out.device, out.dtype)
        out, baseline = split_outputs(out, self.n_outputs, bool(self.baselines))
        mean = out[..., :k] * scale + center
        var = (F.softplus(out[..., k:]) + MIN_VAR) * scale**2 if self.gaussian else None
        if units:
            return to_units(mean, var, self.transforms, baseline)
        return {"mean": mean, **({} if var is None else {"var": var}),
                **({} if baseline is None else {"baseline": baseline})}

    def regression_summary(self, outs: torch.Tensor, central: torch.Tensor | None, scale: torch.Tensor,
                           weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The error bars of raw outputs of T passes (T, N, outputs) around the deterministic pass of each member
        (M, N, outputs; None: the passes' mean), in the target's unit; ``weight``: rho (:func:`.summary_in_units`)."""
        centre = None if central is None else self.predict(central, units=False)
        return summary_in_units(self.predict(outs, units=False), centre, scale, self.transforms, weight)

    def sigma_scales(self, mc: bool) -> torch.Tensor:
        """The σ scale factor of each target (K,) for MC-dropout or deterministic predictions; ones when the
        run was not calibrated (a single pooled factor of older runs applies to every target)."""
        value = self.sigma_scale.get("mc" if mc else "deterministic", 1.0)
        values = value if isinstance(value, list) else [float(value)] * len(self.targets)
        return torch.tensor(values, dtype=torch.float32)

    # -- what predict writes and export returns ------------------------------
    def summarize(self, outs: torch.Tensor, *, keep_samples: bool = False, mc: bool | None = None,
                  conformal: float | None = None, central: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The per-event summary of raw outputs of T passes (T, N, outputs), T = 1 without MC dropout: the one
        place where ``physnn predict`` and an exported graph compute their outputs. An ensemble's members are
        stacked on the first axis (M x T, N, outputs), and their spread enters as MC dropout's does.

        ``mc`` says whether the passes had dropout on, which picks the σ scale factor (``"mc"`` or
        ``"deterministic"``, fitted for this run or ensemble); default: T > 1. ``conformal`` (regression): also
        ``low`` and ``high``, the split-conformal interval at that level (:mod:`physnn.models.conformal`).

        Returns
        -------
        dict
            Classification: :func:`~physnn.models.mc_dropout.classification_summary`. Regression: its
            ``regression_summary`` around ``central``, each member's deterministic outputs (M, N, outputs) with
            dropout off, (N, K) each, and with ``keep_samples`` the T passes per event, ``samples`` (N, T, targets).
        """
        if not self.is_classification:
            mc = outs.shape[0] > 1 if mc is None else mc
            weight = summary_weight(self.sigma_scale, mc, len(self.targets))
            out = self.regression_summary(outs, central, self.sigma_scales(mc), weight)
            if conformal is not None:
                fitted = self.conformal.get("mc" if mc else "deterministic")
                out["low"], out["high"] = conformal_bounds(out, fitted, conformal, self.sigma_scales(mc))
            if keep_samples:
                out["samples"] = self.predict(outs)["mean"].transpose(0, 1)
            return out
        return classification_summary(self.predict(outs)["prob"], binary=self.kind == "binary",
                                      keep_samples=keep_samples, signal=self.signal)

    def prediction_branches(self, summary: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The branches ``physnn predict`` writes per event from :meth:`summarize`: a classifier's under
        their own names, a regressor's per target as ``<target>_<key>`` (``energy_pred``, ``energy_std``)."""
        if self.is_classification:
            return {key: _column(value) for key, value in summary.items()}
        return {f"{name}_{key}": _column(value[..., j]) for j, name in enumerate(self.targets)
                for key, value in summary.items()}

    def export_outputs(self, spread: bool) -> dict[str, str]:
        """The outputs of an exported graph: graph output name -> :meth:`summarize` key, in order; ``spread``:
        the graph stacks several passes (MC dropout, an ensemble's members) and returns their spread too."""
        if self.is_classification:
            names = ["prob", "score"] if self.kind == "binary" else ["prob"]
            return {name: name for name in names + ([f"{n}_std" for n in names] if spread else [])}
        if not spread:  # one pass: the calibrated σ of a Gaussian head as ``sigma``
            return {"pred": "pred", **({"sigma": "std"} if self.gaussian else {})}
        return {key: key for key in ["pred", *(["aleatoric"] if self.gaussian else []), "epistemic", "std"]}

    def graph(self, model: Any, transform: Any, io: Any, mc_samples: int = 0) -> torch.nn.Module:
        """The run as an exportable graph (:class:`~physnn.models.graph.ExportGraph`) from physical inputs to
        :meth:`export_outputs`; ``mc_samples`` T > 0: with T MC-dropout passes inside."""
        return PhysicsModel(model, self, transform, io, mc_samples)

    def record(self, out: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> Any:
        """What validation keeps of one batch for :meth:`metrics_of` (here: the outputs, on the CPU)."""
        return out.float().cpu()

    def metrics_of(self, records: list[Any], truth: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """Validation metrics from the :meth:`record` of every batch and the split's truth tensors."""
        return self.metrics(torch.cat(records), truth)

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

    def metric_goals(self) -> dict[str, str | float]:
        """How each validation metric of :meth:`metrics` is judged: ``"min"``, ``"max"`` or its nominal value."""
        if self.is_classification:
            return {"loss": "min", "accuracy": "max", "auc": "max"}
        goals: dict[str, str | float] = {"loss": "min", **{f"rmse_{t}": "min" for t in self.targets}}
        if self.gaussian:
            goals["coverage_1sigma"] = ONE_SIGMA
        return goals

    def describe(self) -> str:
        """One line for logs."""
        if self.is_classification:
            return f"{self.kind} classification of {len(self.classes or [])} classes {self.classes}"
        return f"regression of {', '.join(self.targets)} ({self.loss_name} loss)"


def _column(value: torch.Tensor) -> np.ndarray:
    """A branch of per-event values: float32, or int32 for an index."""
    dtype = np.float32 if value.is_floating_point() else np.int32
    return np.ascontiguousarray(value.detach().cpu().numpy(), dtype=dtype)
