"""``--resume``: continue a killed run, or extend a finished one with ``--set train.epochs=N``.

A resumed run keeps its own config: the data, model, task and training
settings made the weights in ``last.pt`` and cannot change. Only how long it
trains can: ``train.epochs`` (extend a finished run) and
``train.early_stopping.patience`` (continue a run that stopped early). How the
learning-rate schedule goes on is in :mod:`physnn.training.schedule`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from physnn.errors import ConfigError
from physnn.fmt import plural
from physnn.training.checkpoint import LAST, load_checkpoint
from physnn.training.config import RunConfig, load_run_config
from physnn.training.schedule import describe_extension

#: the settings ``--resume --set`` may change
RESUMABLE = ("train.epochs", "train.early_stopping.patience")


def check_resume_options(config: Any, sections: Mapping[str, Any] | None, init_from: Any, freeze: Any) -> None:
    """Refuse the options that would make a resumed run another run, in one line."""
    if config is not None:
        msg = "--resume continues the run with its own config; do not give a run config"
        raise ConfigError(msg)
    given = [f"--{k}" for k, v in (sections or {}).items() if v is not None]
    given += ["--init-from"] * (init_from is not None) + ["--freeze"] * (freeze is not None)
    if given:
        msg = (f"--resume continues the run with its own data, model and settings; {', '.join(given)} cannot "
               f"change it (start a new run with another --out)")
        raise ConfigError(msg)


def resume_run(out: Path, overrides: Sequence[str]) -> tuple[RunConfig, dict[str, Any], list[str]]:
    """The config and ``last.pt`` of the run in ``out``, with the allowed ``overrides`` applied.

    Returns
    -------
    config, state, notes
        The run's config (``train.epochs``, patience as overridden), the
        contents of ``last.pt`` and one-line notes on what happens.

    Raises
    ------
    ConfigError
        For an override of another setting, a finished run with nothing to
        extend, or an early-stopped run whose patience is not raised.
    """
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key not in RESUMABLE:
            msg = (f"--resume: {item.strip()}: {key} cannot change in a run that is continued (only "
                   f"{' and '.join(RESUMABLE)} can); start a new run with another --out for other settings")
            raise ConfigError(msg)
    state = load_checkpoint(out, LAST)
    old = RunConfig.model_validate(state["config"])
    cfg = load_run_config(state["config"], overrides) if overrides else old
    done, epochs = int(state["epoch"]), cfg.train.epochs
    if epochs <= done:
        msg = (f"--set train.epochs={epochs}: the run in {out} has already done {plural(done, 'epoch')}; give more "
               "to extend it" if any(item.partition("=")[0].strip() == "train.epochs" for item in overrides) else
               f"{out}: the run already finished ({plural(done, 'epoch')}); extend it with --set train.epochs=N "
               f"(N > {done})")
        raise ConfigError(msg)
    patience, waited = cfg.train.early_stopping.patience, int(state["waited"])
    if state.get("stopped") and patience is not None and waited >= patience:
        msg = (f"{out}: the run stopped early after epoch {done} ({cfg.train.early_stopping.monitor} did not "
               f"improve for {plural(waited, 'epoch')}); to continue it, raise --set "
               "train.early_stopping.patience "
               f"(now {patience}) or set it to null")
        raise ConfigError(msg)
    notes = []
    if epochs != old.train.epochs:
        notes.append(f"extending {out} from {old.train.epochs} to {epochs} epochs (last finished epoch {done}); "
                     f"{describe_extension(cfg.train, done)}")
    else:
        notes.append(f"resuming {out} after epoch {done} of {epochs}")
    if patience != old.train.early_stopping.patience:
        notes.append(f"early-stopping patience: {old.train.early_stopping.patience} -> {patience} epochs "
                     f"({waited} without improvement so far)")
    return cfg, state, notes
