"""A training run from a config: data -> task -> model -> trainer -> run folder.

The run folder holds everything needed to use or continue the run::

    run/
      config.yaml       the resolved run config
      transform.json    the fitted standardisation, padding and class map
      metrics.csv       one row per epoch (or metrics.jsonl)
      best.pt last.pt   checkpoints (weights_only-safe)
      plots/            loss curves (physnn evaluate adds more)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physnn.data.augment import flips_for
from physnn.data.dataset import DataBundle, TensorData, load
from physnn.data.domain import Domain
from physnn.data.streaming import StreamingBundle, StreamingSplit, prepare
from physnn.data.transform import Transform
from physnn.errors import ConfigError, OutputError
from physnn.io.files import absolute_file
from physnn.io.write import check_folder, make_folder
from physnn.models.base import StagedModel
from physnn.models.feature_domain import FeatureDomain
from physnn.models.registry import ModelIO, build_model
from physnn.models.registry import get as get_model
from physnn.models.tasks import Task
from physnn.training.checkpoint import BEST, RUN_FILES, clear_run_files, load_checkpoint, save_checkpoint
from physnn.training.config import RunConfig, load_run_config, write_config
from physnn.training.device import resolve_device
from physnn.training.distributed import Dist, device_for, setup, teardown
from physnn.training.ensemble import check_ensemble, check_not_ensemble, train_ensemble
from physnn.training.interrupt import EpochTracker, interrupted
from physnn.training.progress import interactive, note_printer, progress_interval
from physnn.training.resume import check_resume_options, resume_run
from physnn.training.trainer import EpochCallback, Plots, Trainer, TrainResult
from physnn.training.transfer import describe_transfer, transfer_features

ConfigSource = RunConfig | Mapping[str, Any] | str | os.PathLike


def _in_memory(split: TensorData | StreamingSplit) -> TensorData:
    """The split's tensors, or a streamed split's sample (a seeded uniform sample of its events)."""
    return split.sample if isinstance(split, StreamingSplit) else split


def model_io(data: DataBundle | StreamingBundle, task: Task) -> ModelIO:
    """Input and output shapes of a model for these data and this task."""
    inputs = _in_memory(data.train).inputs
    return ModelIO(image=tuple(inputs["image"].shape[1:]) if "image" in inputs else None,
                   sequence=tuple(inputs["sequence"].shape[1:]) if "sequence" in inputs else None,
                   scalars=int(inputs["scalars"].shape[1]) if "scalars" in inputs else 0,
                   outputs=task.n_outputs, **task.io_fields())


def _check_dir(out: Path, overwrite: bool) -> None:
    """Refuse a run folder that cannot be (re)used, before any work; nothing is touched yet."""
    if out.exists() and not out.is_dir():
        msg = f"{out}: exists and is not a folder; give a folder for the run"
        raise OutputError(msg)
    if not overwrite and out.is_dir() and any(out.iterdir()):
        msg = (f"{out}: the run folder exists and is not empty; pass overwrite=True to replace it, "
               f"or resume=True to continue it")
        raise OutputError(msg, options=["overwrite", "resume"])
    check_folder(out)


def _prepare_dir(out: Path) -> None:
    """Empty (of physnn's files) or create the run folder, once the data and model are known to be good."""
    clear_run_files(out)
    make_folder(out)


def train(
    config: ConfigSource | None = None,
    *,
    out: str | os.PathLike,
    overrides: Sequence[str] = (),
    sections: Mapping[str, Any] | None = None,
    resume: bool = False,
    init_from: str | os.PathLike | None = None,
    freeze: str | None = None,
    device: str | None = None,
    overwrite: bool = False,
    progress: bool | None = True,
    on_epoch_end: EpochCallback | None = None,
    say: Callable[[str], None] | None = None,
    plots: Plots | None = None,
) -> TrainResult:
    """Train a model from a run config and write a run folder.

    Parameters
    ----------
    config
        Run YAML, dict or :class:`RunConfig` (not needed with ``resume``).
    out
        The run folder.
    overrides
        ``["train.epochs=5", "model.params.dims=3"]``.
    sections
        Replace sections by files or dicts: ``{"data": "configs/data/showers.yaml"}``.
    resume
        Continue the run in ``out`` from its ``last.pt`` with its own config;
        ``overrides`` may only change ``train.epochs`` (extend a finished
        run) and ``train.early_stopping.patience``
        (:mod:`physnn.training.resume`).
    init_from
        Checkpoint or run folder whose feature extractor initialises the model.
    freeze
        ``"features"`` to freeze the transferred feature extractor.
    device
        Overrides ``train.device``.
    overwrite
        Replace an existing run folder.
    progress
        Progress on stderr as ``physnn train`` shows it (a rich bar on a terminal and in Jupyter, a line every
        10 s in a log, one line per epoch: :mod:`physnn.training.progress`), and the notes (see ``say``);
        ``False``: silent; ``None``: only on a terminal or in Jupyter.
    on_epoch_end
        Called with each epoch's metrics.
    say
        Called with one-line notes as training starts (what ``--init-from``
        transferred and froze, how a resumed run goes on); they are also in
        ``result.notes``. Default: printed on stderr when ``progress`` is on.
    plots
        The figures to draw (:class:`~physnn.training.trainer.Plots`); ``physnn.train`` draws the loss
        curves into ``out/plots`` (and a GAN's samples), this function alone none.

    Raises
    ------
    TrainingInterrupted
        On Ctrl-C during training (a :class:`KeyboardInterrupt`): its message
        says whether the run folder is resumable
        (:mod:`physnn.training.interrupt`).

    Examples
    --------
    >>> result = physnn.train("configs/train/epi.yaml", out="runs/epi")  # doctest: +SKIP
    >>> result.best["val_auc"]  # doctest: +SKIP
    0.991
    """
    out = Path(out)
    progress = interactive() if progress is None else progress
    if say is None and progress:
        say = note_printer()
    if progress:
        progress_interval()  # a bad PHYSNN_PROGRESS_INTERVAL is refused before any work
    state, notes = None, []
    if resume:
        check_resume_options(config, sections, init_from, freeze)
        check_not_ensemble(out)
        cfg, state, notes = resume_run(out, overrides)
    else:
        if config is None:
            msg = "train: give a run config (or resume=True)"
            raise ConfigError(msg)
        extra = [f"train.init_from={os.fspath(init_from)}"] if init_from is not None else []
        extra += [f"train.freeze={freeze}"] if freeze is not None else []
        cfg = load_run_config(config, [*overrides, *extra], sections=sections)
        # the run folder travels: its config names the data by absolute paths (predict's default input)
        cfg.data.files = [absolute_file(f) for f in cfg.data.files]
        _check_dir(out, overwrite)
    if cfg.train.ensemble > 1:
        check_ensemble(cfg, get_model(cfg.model.name).generates)

        def member(member_cfg: RunConfig, folder: Path) -> TrainResult:
            return train(member_cfg, out=folder, device=device, overwrite=True, progress=progress,
                         on_epoch_end=on_epoch_end, say=say, plots=plots)

        return train_ensemble(cfg, out, member, device=device)
    if device is not None:
        cfg.train.device = device
    dev = resolve_device(cfg.train.device)
    dist = setup(dev)  # torchrun: join the process group, one GPU per process
    try:
        return _train(cfg, out, state, device_for(dev, dist), dist, progress, on_epoch_end, Notes(notes, say), plots)
    finally:
        teardown(dist)


@dataclass
class Notes:
    """The notes of a run (``result.notes``) and who tells them to the user."""

    lines: list[str]
    say: Callable[[str], None] | None

    def tell(self, dist: Dist) -> None:
        """Say every note (in the main process only under torchrun)."""
        if self.say is not None and dist.main:
            for line in self.lines:
                self.say(line)


def _train(cfg: RunConfig, out: Path, state: dict[str, Any] | None, dev: torch.device, dist: Dist,
           progress: bool, on_epoch_end: EpochCallback | None, notes: Notes, plots: Plots | None) -> TrainResult:
    """The body of :func:`train`, in each process of a torchrun run."""
    torch.manual_seed(cfg.train.seed)
    data = _load_data(cfg, state, dist)
    if cfg.task.kind == "auto" and get_model(cfg.model.name).generates:
        cfg.task.kind = "generation"  # a GAN learns to generate the images given the scalars and label
    task = (Task.from_state(state["task"]) if state else
            Task.from_config(cfg.task, cfg.data, data.transform.classes, _in_memory(data.train).tensors(),
                             data.transform, data.summary))
    io = model_io(data, task)
    augment = flips_for(cfg.data, data.transform, io.image)  # refused before the run folder is written
    model, transferred = _build_model(cfg, io, state, notes.lines)
    notes.tell(dist)
    created = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
    tracker = EpochTracker(int(state["epoch"]) if state else 0, on_epoch_end)
    try:
        if dist.main and state is None:
            _prepare_dir(out)
            _write_run_files(out, cfg, data.transform)
        elif dist.main and cfg.model_dump(mode="json") != state["config"]:  # extended: config.yaml says how long
            write_config(out, cfg)
        dist.barrier()
        base = {"config": cfg.model_dump(mode="json"), "transform": data.transform.state(), "task": task.state(),
                "io": io.state(), "data_info": _plain(data.info),
                "domain": Domain.fit(_in_memory(data.train).inputs).state()}
        trainer = Trainer(model, task, cfg.train, out, dev, checkpoint_base=base, transferred=transferred,
                          progress=progress, dist=dist, plots=plots, augment=augment)
        result = trainer.fit(data.train, data.val, resume=state, on_epoch_end=tracker)
    except KeyboardInterrupt:
        raise interrupted(out, cfg.train.epochs, tracker.finished, new=state is None, created=created,
                          files=RUN_FILES, main=dist.main) from None
    result.notes = notes.lines
    dist.barrier()  # rank 0 has written the last checkpoints
    best = load_checkpoint(out, BEST)
    result.model.load_state_dict(best["model"])
    if not dist.main:
        return result
    fitted = False  # what best.pt gains from the validation split
    if task.calibrated_error_bars and cfg.train.calibrate_sigma and len(data.val):
        from physnn.training.calibration import fit_sigma_scale

        task.sigma_scale, task.conformal = fit_sigma_scale(result.model, task, data.val.batches(1024), device=dev)
        best["task"], fitted = task.state(), True
    if isinstance(result.model, StagedModel) and len(data.val) and not task.alters_inputs:
        feature_domain = _fit_feature_domain(result.model, data, dev, notes)
        if feature_domain is not None:
            best["feature_domain"], fitted = feature_domain.state(), True
    if fitted:
        save_checkpoint({k: v for k, v in best.items() if k not in ("path", "format", "physnn")}, out / BEST)
    if plots is not None and plots.curves is not None:
        plots.curves(out, out / "plots")
    return result


def _fit_feature_domain(model: StagedModel, data: DataBundle | StreamingBundle, dev: torch.device,
                        notes: Notes) -> FeatureDomain | None:
    """The Mahalanobis domain of the trained model's features: fitted on (at most 20,000 of) the training
    events, its cut set on (at most 20,000 of) the validation events (:mod:`physnn.models.feature_domain`);
    None, with a note, when the features cannot be fitted (the run is kept either way)."""
    from physnn.models.feature_domain import MAX_EVENTS, features

    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(0)
        train = features(model, _in_memory(data.train).batches(1024, shuffle=True, generator=gen), dev, MAX_EVENTS)
        val = features(model, _in_memory(data.val).batches(1024, shuffle=True, generator=gen), dev, MAX_EVENTS)
    try:
        return FeatureDomain.fit(train, val)
    except (ValueError, np.linalg.LinAlgError) as err:
        line = f"no feature domain for this run ({err}): predictions flag events by their inputs only"
        notes.lines.append(line)
        if notes.say is not None:
            notes.say(line)
        return None


def _load_data(cfg: RunConfig, state: dict[str, Any] | None, dist: Dist) -> DataBundle | StreamingBundle:
    """The splits, in memory or streamed (with a resumed run's fitted transform)."""
    fitted = Transform.from_state(state["transform"]) if state else None
    data: DataBundle | StreamingBundle
    if cfg.train.memory_budget is not None:  # stream from the files when the data do not fit the budget
        data = prepare(cfg.data, cfg.train.memory_budget, transform=fitted, dist=dist)
    else:
        data = load(cfg.data, transform=fitted)
    if len(data.train) == 0:
        msg = f"{', '.join(cfg.data.files)}: the training split is empty"
        raise ConfigError(msg)
    return data


def _build_model(cfg: RunConfig, io: ModelIO, state: dict[str, Any] | None,
                 notes: list[str]) -> tuple[Any, bool]:
    """The model, its feature extractor transferred (``--init-from``, noted) and frozen as configured."""
    model = build_model(cfg.model, io)
    if not cfg.train.init_from:
        return model, False
    if state is None:
        info = transfer_features(model, cfg.train.init_from, freeze=cfg.train.freeze == "features")
        notes.append(describe_transfer(info, cfg.train.features_lr))
    elif cfg.train.freeze == "features":  # resumed: the weights come from last.pt
        for module in model.feature_modules():
            module.requires_grad_(False)
    return model, True


def _plain(value: Any) -> Any:
    """JSON round trip: only plain types go into checkpoints."""
    return json.loads(json.dumps(value, default=str))


def _write_run_files(out: Path, cfg: RunConfig, transform: Transform) -> None:
    write_config(out, cfg)
    (out / "transform.json").write_text(json.dumps(transform.state(), indent=1))

