"""Reading configs: YAML files, ``--set KEY=VALUE`` overrides, paths relative to the file, and pydantic's
validation errors as one line that names the file, the key and what was expected."""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from physnn.config.package_data import resolve_config_path
from physnn.errors import ConfigError, did_you_mean
from physnn.io.files import TESTDATA

M = TypeVar("M", bound=BaseModel)


def _members(annotation: Any) -> list[Any]:
    """The member types of ``X | Y``, ``Annotated[X | Y, ...]``, ``list[X]`` (element) and ``X | None``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    if origin in (list, tuple, set):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    if origin is dict:
        return _members(typing.get_args(annotation)[1])
    return [annotation]


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    args = typing.get_args(field.annotation) if field is not None else ()
    return args[0] if len(args) == 1 else None


def _walk(model: type[BaseModel], loc: Sequence[Any]) -> tuple[type[BaseModel] | None, list[Any]]:
    """Follow an error location through nested models, lists and tagged unions.

    Returns the model holding the last key and the location without list
    indices' union tags (``features.0.conv.filterz`` -> ``features.0.filterz``).
    """
    clean: list[Any] = []
    current: type[BaseModel] | None = model
    candidates: list[Any] = []
    keyed = False  # the next part is a key of a dict of models
    for part in loc:
        if current is None and candidates:
            if isinstance(part, int) or keyed:
                clean.append(part)
                models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
                if len(models) == 1:
                    current, candidates = models[0], []
                keyed = False
                continue
            tagged = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel) and _tag(c) == part]
            if tagged:
                current, candidates = tagged[0], []
                continue
            models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
            current, candidates = (models[0] if len(models) == 1 else None), []
        clean.append(part)
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            current = None
            continue
        members = _members(current.model_fields[part].annotation)
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        origin = typing.get_origin(current.model_fields[part].annotation)
        keyed = origin is dict
        if len(models) == 1 and origin not in (list, tuple, set, dict):
            current = models[0]
        else:
            current, candidates = None, members
    return current, clean


#: Fields filled from another key's mapping form: errors name the key the user wrote.
_SHOWN_AS = {"target_specs": "targets"}


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str) -> str:
    """Turn the first pydantic error into one line naming the key."""
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith(("function-", "union[")))]
    parent, clean = _walk(model, loc[:-1]) if loc else (model, [])
    key = ".".join(str(_SHOWN_AS.get(p, p)) for p in [*clean, *loc[-1:]]) or "(top level)"
    if first["type"] == "extra_forbidden":
        hint = did_you_mean(str(loc[-1]), parent.model_fields) if parent else ""
        if not hint and parent:
            hint = f" (expected one of: {', '.join(parent.model_fields)})"
        return f"{source}: unknown key {key!r}{hint}"
    if first["type"] == "missing":
        return f"{source}: missing required key {key!r}"
    text = first["msg"]
    if text.startswith("Value error, "):
        text = text[len("Value error, "):]
    return f"{source}: {key}: {text}"


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping from a file with one-line errors."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        msg = f"{path}: no such config file"
        raise ConfigError(msg) from None
    except OSError as err:
        msg = f"{path}: cannot read config ({err.strerror})"
        raise ConfigError(msg) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        msg = f"{path}:{where} not valid YAML ({getattr(err, 'problem', err)})"
        raise ConfigError(msg) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        msg = f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}"
        raise ConfigError(msg)
    return data


def relative_to(base: Path, paths: Any) -> Any:
    """Relative paths (a string or a list of them; globs too) taken from the folder ``base``, the folder of the
    config file that names them: every path in a config file is relative to that file."""
    if isinstance(paths, str) and paths.startswith(TESTDATA):  # a package's file, not a path
        return paths
    if isinstance(paths, str) and paths and not os.path.isabs(os.path.expanduser(paths)):
        return os.path.normpath(os.path.join(base, paths))
    if isinstance(paths, list):
        return [relative_to(base, p) for p in paths]
    return paths


def rebase_data_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """A data config read from a file in ``base``: its ``files`` and its friends' ``files`` relative to that file."""
    if "files" in data:
        data = {**data, "files": relative_to(base, data["files"])}
    friends = data.get("friends")
    if isinstance(friends, Mapping):
        friends = [friends]
    if isinstance(friends, list):
        data = {**data, "friends": [{**f, "files": relative_to(base, f["files"])}
                                    if isinstance(f, Mapping) and "files" in f else f for f in friends]}
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a dict."""
    import yaml

    out = dict(data)
    for item in overrides:
        if "=" not in item:
            msg = f"--set {item!r}: expected KEY=VALUE, e.g. split.seed=7"
            raise ConfigError(msg)
        key, _, raw = item.partition("=")
        value = yaml.safe_load(raw) if raw else None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, Mapping) else {}
            node[part] = child
            node = child
        node[parts[-1]] = value
    return out


def load_config(
    source: str | os.PathLike | Mapping[str, Any] | M,
    model: type[M],
    overrides: Sequence[str] = (),
) -> M:
    """Validate a YAML file, a dict or an existing object into ``model``.

    Parameters
    ----------
    source
        Path to a YAML file (``physnn:NAME``: a config shipped with physnn, :mod:`physnn.config.package_data`), a
        mapping, or an instance of ``model``.
    model
        The pydantic class to validate against, e.g. :class:`DataConfig`.
    overrides
        ``["split.seed=7", "selection=energy > 10"]``-style overrides.

    Raises
    ------
    ConfigError
        With the file name and the offending key.
    """
    if isinstance(source, model):
        if not overrides:
            return source
        data, name = source.model_dump(), f"{model.__name__}"
    elif isinstance(source, Mapping):
        data, name = dict(source), "config"
    else:  # a file: its paths are relative to it; paths in overrides are relative to the current folder
        name, source = os.fspath(source), resolve_config_path(source)
        data = read_yaml(source)
        if model.__name__ == "DataConfig":
            data = rebase_data_paths(data, Path(source).parent)
    data = apply_overrides(data, overrides)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, model, name)) from None
