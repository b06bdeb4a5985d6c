"""The run config: data + model + task + training settings, validated in one object.

A run YAML holds four sections. Each may be written inline or given as the
path of another YAML file (relative to the run file), so data and model
configs are shared between runs::

    data: ../data/showers.yaml
    model: ../model/cnn.yaml
    task: {kind: classification}
    train: {epochs: 10, optimizer: {name: adam, lr: 1.0e-3}}

``--set train.epochs=3`` / ``--set data.files=other.root`` overrides apply
after the sections are read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from physnn.config import (
    DataConfig,
    Strict,
    apply_overrides,
    format_validation_error,
    read_yaml,
    rebase_data_paths,
    relative_to,
    resolve_config_path,
)
from physnn.errors import ConfigError
from physnn.models.registry import ModelConfig
from physnn.models.task_config import TaskConfig

SECTIONS = ("data", "model", "task", "train")


class OptimizerConfig(Strict):
    """The optimiser (torch.optim).

    Attributes
    ----------
    name
        ``adam``, ``adamw``, ``sgd`` or ``rmsprop``.
    lr
        Learning rate.
    weight_decay
        Decoupled for adamw, L2 for the others.
    momentum
        For sgd and rmsprop.
    betas
        For adam and adamw.
    """

    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    betas: tuple[float, float] = (0.9, 0.999)


class SchedulerConfig(Strict):
    """The learning-rate schedule (torch.optim.lr_scheduler).

    Attributes
    ----------
    name
        ``none``, ``cosine`` (to ``min_lr`` over the epochs), ``step``
        (times ``gamma`` every ``step_size`` epochs), ``exponential``,
        ``plateau`` (times ``factor`` after ``patience`` epochs without
        improvement of the monitored metric) or ``onecycle`` (per batch).
    """

    name: Literal["none", "cosine", "step", "exponential", "plateau", "onecycle"] = "none"
    step_size: int = Field(default=10, gt=0)
    gamma: float = Field(default=0.5, gt=0.0, le=1.0)
    factor: float = Field(default=0.5, gt=0.0, lt=1.0)
    patience: int = Field(default=3, ge=0)
    min_lr: float = Field(default=0.0, ge=0.0)


class EarlyStopping(Strict):
    """Stop when the monitored validation metric has not improved for ``patience`` epochs.

    Attributes
    ----------
    monitor
        ``val_loss`` or another metric of the task (``val_auc``,
        ``val_accuracy``, ``val_rmse_<target>``, ``val_coverage_1sigma``,
        ``val_sep_energy``, ...). It also picks the best checkpoint.
    mode
        ``auto``: the direction the task declares for the metric (losses,
        RMSEs and separation powers are minimised, AUCs maximised, a coverage
        is best at its nominal 68.27%; :mod:`physnn.training.monitor`);
        ``min`` or ``max`` overrides it.
    patience
        Epochs without improvement before stopping; None never stops early.
    min_delta
        Smallest change that counts as an improvement.
    """

    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int | None = Field(default=5, ge=1)
    min_delta: float = Field(default=0.0, ge=0.0)


class TrainConfig(Strict):
    """How to train.

    Attributes
    ----------
    epochs
        Maximum number of passes over the training split.
    batch_size
        Events per optimisation step.
    optimizer, scheduler, early_stopping
        See their classes.
    seed
        Seeds the weights, the shuffling and dropout: the same seed gives the
        same metrics on the CPU.
    device
        ``auto`` (CUDA, else MPS, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    amp
        Mixed precision (bfloat16 autocast): ``auto`` turns it on on CUDA.
    grad_clip
        Clip the gradient norm to this value (None: no clipping).
    init_from
        A checkpoint (or run folder) whose feature extractor initialises this
        model (transfer learning).
    freeze
        ``features``: keep the transferred feature extractor fixed;
        ``none``: train everything.
    features_lr
        Learning-rate factor for the feature extractor when fine-tuning
        (e.g. 0.1); ignored when frozen.
    metrics_format
        Per-epoch metrics file: ``csv`` (metrics.csv) or ``jsonl`` (metrics.jsonl).
    eval_batch_size
        Events per batch for validation.
    calibrate_sigma
        Regression: after training, fit one scale factor of the predicted σ
        (deterministic and MC dropout) on the validation split so the pulls
        have unit width (see :mod:`physnn.training.calibration`).
    critic_optimizer
        GANs: the critic's optimiser (``optimizer`` is the generator's);
        None: the same settings as ``optimizer``.
    samples_every
        GANs: save a figure of generated showers every this many epochs
        (``plots/samples_epoch_NNN.png``); 0: never.
    memory_budget
        Peak resident memory of the training process, e.g. ``"4 GB"``. When
        the data do not fit comfortably, training streams them from the
        files every epoch through a shuffle buffer sized to the budget
        (:mod:`physnn.data.streaming`); None (default) loads every split
        into memory.
    ensemble
        Train this many members with seeds ``seed``, ``seed + 1``, ... into
        one run folder (a deep ensemble, :mod:`physnn.training.ensemble`):
        their spread is an epistemic error bar that grows where they
        extrapolate; 1: one model.
    """

    epochs: int = Field(default=20, gt=0)
    batch_size: int = Field(default=128, gt=0)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    seed: int = 0
    device: str = "auto"
    amp: bool | Literal["auto"] = "auto"
    grad_clip: float | None = Field(default=None, gt=0.0)
    init_from: str | None = None
    freeze: Literal["none", "features"] = "none"
    features_lr: float = Field(default=1.0, gt=0.0)
    metrics_format: Literal["csv", "jsonl"] = "csv"
    eval_batch_size: int = Field(default=1024, gt=0)
    calibrate_sigma: bool = True
    critic_optimizer: OptimizerConfig | None = None
    samples_every: int = Field(default=1, ge=0)
    memory_budget: str | None = None
    ensemble: int = Field(default=1, ge=1)

    @field_validator("memory_budget")
    @classmethod
    def _budget(cls, v: str | None) -> str | None:
        if v is not None:
            from physnn.io.read import parse_step_size

            try:
                size = parse_step_size(v)[1]
            except Exception:
                size = None
            if size is None:
                msg = f"memory_budget {v!r}: expected a size such as '4 GB' or '1500 MiB'"
                raise ValueError(msg)
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        ok = v in ("auto", "cpu", "cuda", "mps") or (v.startswith("cuda:") and v[5:].isdigit())
        if not ok:
            msg = f"device {v!r}: expected auto, cpu, cuda, cuda:N or mps"
            raise ValueError(msg)
        return v


class RunConfig(Strict):
    """Everything a training run needs; stored resolved in the run folder and checkpoints."""

    data: DataConfig
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(name="cnn"))
    task: TaskConfig = Field(default_factory=TaskConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


def load_run_config(source: str | os.PathLike | Mapping[str, Any] | RunConfig, overrides: Sequence[str] = (),
                    *, sections: Mapping[str, str | os.PathLike | Mapping[str, Any] | None] | None = None) -> RunConfig:
    """Read a run config: YAML file, dict or object, with sections given as paths or inline.

    Parameters
    ----------
    source
        The run YAML, a mapping or a :class:`RunConfig`.
    overrides
        ``["train.epochs=3"]``-style overrides, applied last.
    sections
        Replace whole sections, e.g. ``{"data": "configs/data/showers.yaml"}``
        (the CLI's ``--data``/``--model``/``--train`` options).

    A path ``physnn:NAME`` (source or section) is a config shipped with physnn (:mod:`physnn.config.package_data`).
    """
    if isinstance(source, RunConfig):
        data, name, base = source.model_dump(mode="json"), "RunConfig", None
    elif isinstance(source, Mapping):
        data, name, base = dict(source), "config", None
    else:  # every path in a config file is relative to that file ("physnn:NAME": a shipped config)
        name, source = os.fspath(source), resolve_config_path(source)
        data, base = read_yaml(source), Path(source).parent
        data = {k: _rebase(k, v, base) if isinstance(v, Mapping) else v for k, v in data.items()}
    for key, value in (sections or {}).items():
        if value is not None:
            data[key] = _section(value, key, Path("."), name) if isinstance(value, (str, os.PathLike)) else dict(value)
    for key in SECTIONS:
        if isinstance(data.get(key), (str, os.PathLike)):
            data[key] = _section(data[key], key, base or Path("."), name)
    data = apply_overrides(data, overrides)  # paths given here are relative to the current folder
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, RunConfig, name)) from None


def _section(path: str | os.PathLike, key: str, base: Path, source: str) -> dict[str, Any]:
    path = resolve_config_path(path)
    full = Path(path) if Path(path).is_absolute() else base / path
    if not full.is_file():
        msg = f"{source}: {key}: no such config file {full}"
        raise ConfigError(msg)
    return _rebase(key, read_yaml(full), full.parent)


def _rebase(key: str, section: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The paths of a section read from a file in ``base`` (data files, ``train.init_from``), relative to it."""
    section = dict(section)
    if key == "data":
        return rebase_data_paths(section, base)
    if key == "train" and section.get("init_from"):
        section["init_from"] = relative_to(base, section["init_from"])
    return section


def write_config(out: Path, cfg: RunConfig) -> None:
    """The resolved run config as ``out/config.yaml``."""
    import yaml

    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
