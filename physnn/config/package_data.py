"""The configs that ship with physnn, found from any folder: ``"physnn:train/epi.yaml"`` or :func:`shipped`.

An installed physnn carries the repository's ``configs/`` as ``physnn/configs/`` (``pyproject.toml``:
``[tool.hatch.build.targets.wheel.force-include]``); a source checkout (``pip install -e .``) reads the
repository's ``configs/``. A config path that starts with ``physnn:`` names a shipped config, wherever a
config file is read (:func:`physnn.config.load_config`, run configs, ``physnn train physnn:train/epi.yaml``).

The data files a shipped config names are relative to it, like every path in a config file: the demo configs
read ``physnn-demo/`` beside the repository's ``configs/``. Point them at your own files with an override
(``overrides=["data.files=showers.root"]``, relative to the current folder).

Examples
--------
>>> from physnn.config import shipped
>>> shipped("train/epi.yaml").name
'epi.yaml'
"""

from __future__ import annotations

import os
from pathlib import Path

from physnn.errors import ConfigError, did_you_mean

#: The prefix of a shipped config's name: ``physnn:train/epi.yaml``.
PREFIX = "physnn:"

_PACKAGE = Path(__file__).resolve().parents[1]


def shipped_root() -> Path:
    """The folder of the shipped configs: ``physnn/configs`` in an installed package, else the source checkout's
    ``configs/``."""
    installed = _PACKAGE / "configs"
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "configs").is_dir():
        return checkout / "configs"
    msg = f"physnn's configs are not installed (looked in {installed} and {checkout / 'configs'})"
    raise ConfigError(msg)


def shipped_names() -> list[str]:
    """The shipped configs, e.g. ``["data/events.yaml", ..., "train/epi.yaml", ...]``."""
    root = shipped_root()
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml"))


def shipped(name: str) -> Path:
    """The path of a shipped config.

    Parameters
    ----------
    name
        Its path under ``configs/``, e.g. ``"train/epi.yaml"`` (a leading ``physnn:`` is allowed).

    Raises
    ------
    ConfigError
        If physnn ships no such config (with the closest names).
    """
    name = name.removeprefix(PREFIX)
    path = shipped_root() / name
    if not path.is_file():
        msg = f"{PREFIX}{name}: physnn ships no such config{did_you_mean(name, shipped_names())}"
        raise ConfigError(msg)
    return path


def resolve_config_path(source: str | os.PathLike) -> str | os.PathLike:
    """``physnn:NAME`` as the path of the shipped config; any other path as it is."""
    text = os.fspath(source)
    return shipped(text) if text.startswith(PREFIX) else source
