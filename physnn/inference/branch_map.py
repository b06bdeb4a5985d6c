"""A run's branch names mapped to those of a new file (``physnn predict RUN new.root --map image=calo_image``).

The mapping ``{run's name: file's name}`` covers every branch the run reads:
inputs (images, sequence features and ``sort_by``, scalars), truth (label,
targets, target images, weight), observers, and the branches used by the
training selection and by ``define:`` expressions (rewritten name by name).
The outputs keep the run's names, so predictions of every file look alike
(``physnn evaluate`` and plotting scripts work unchanged); the mapping is
recorded in ``physnn_meta``. A prediction-time ``--selection`` is a cut on
the file as it is, so it uses the file's names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from physnn.config import DataConfig
from physnn.data.convert import needed_branches
from physnn.errors import ConfigError, did_you_mean
from physnn.io.selection import Expression

__all__ = ["check_mapping", "map_config", "parse_mapping", "rename_expression"]

_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")


def parse_mapping(mapping: Mapping[str, str] | Sequence[str] | str | None) -> dict[str, str]:
    """``{"image": "calo_image"}`` or ``["image=calo_image,energy=E", ...]`` (the CLI's ``--map``) as a dict.

    Raises
    ------
    ConfigError
        An item without ``=``, a name given two targets, or two names mapped to one branch.
    """
    if mapping is None:
        return {}
    if isinstance(mapping, Mapping):
        items = [(str(old).strip(), str(new).strip()) for old, new in mapping.items()]
    else:
        items = []
        for text in [mapping] if isinstance(mapping, str) else mapping:
            for part in (p.strip() for p in str(text).split(",")):
                old, sep, new = (s.strip() for s in part.partition("="))
                if part and not (sep and old and new):
                    msg = f"--map {part!r}: expected OLD=NEW (the run's branch = the file's), e.g. image=calo_image"
                    raise ConfigError(msg)
                if part:
                    items.append((old, new))
    out: dict[str, str] = {}
    for old, new in items:
        if out.get(old, new) != new:
            msg = f"--map {old}: given twice, as {out[old]!r} and {new!r}"
            raise ConfigError(msg)
        twin = next((o for o, n in out.items() if n == new and o != old), None)
        if twin is not None:
            msg = f"--map: {twin!r} and {old!r} both map to {new!r}; a branch of the file stands for one of the run's"
            raise ConfigError(msg)
        out[old] = new
    return out


def rename_expression(expression: str | None, mapping: Mapping[str, str]) -> str | None:
    """``expression`` (a selection or a ``define:``) with its branches renamed; functions and numbers untouched.

    Examples
    --------
    >>> rename_expression("hypot(px, py) > 1 && n >= 2", {"px": "PX", "n": "nPart"})
    'hypot(PX, py) > 1 && nPart >= 2'
    """
    if not expression or not mapping:
        return expression
    used = Expression(expression).branches & mapping.keys()
    for name in sorted(used):
        if not mapping[name].isidentifier():
            msg = (f"--map {name}={mapping[name]}: {name!r} is used in the expression {expression!r}, which needs "
                   "a branch name of letters, digits and _")
            raise ConfigError(msg)
    return _NAME.sub(lambda m: mapping[m.group(0)] if m.group(0) in used else m.group(0), expression)


def check_mapping(mapping: Mapping[str, str], cfg: DataConfig) -> None:
    """One line when a mapped name is not a branch the run reads (``cfg``: the run's data config), or when
    its new name is taken by another branch the run reads or a column it defines."""
    used = needed_branches(cfg, with_truth=True)
    for old, new in mapping.items():
        if old in cfg.define:
            msg = (f"--map {old}={new}: {old!r} is a column the run defines ({old} = {cfg.define[old]}), not a "
                   "branch; map the branches it uses")
            raise ConfigError(msg)
        if old not in used:
            msg = (f"--map {old}={new}: the run reads no branch {old!r}{did_you_mean(old, used)}; its branches: "
                   f"{', '.join(used)}")
            raise ConfigError(msg)
    taken = (set(used) - mapping.keys()) | set(cfg.define)
    for old, new in mapping.items():
        if new in taken:
            what = "defines" if new in cfg.define else "also reads"
            msg = f"--map {old}={new}: the run {what} {new!r} itself; map that one too (e.g. --map {new}=...)"
            raise ConfigError(msg)


def map_config(data: dict[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """A dumped :class:`~physnn.config.DataConfig` with the run's branch names replaced by the file's."""
    if not mapping:
        return data

    def one(name: str | None) -> str | None:
        return None if name is None else mapping.get(name, name)

    def many(names: list[str]) -> list[str]:
        return [mapping.get(n, n) for n in names]

    for key in ("images", "target_images"):
        if data.get(key):
            data[key] = {**data[key], "branches": many(data[key]["branches"])}
    if data.get("sequence"):
        seq = data["sequence"]
        data["sequence"] = {**seq, "features": many(seq["features"]), "sort_by": one(seq.get("sort_by")),
                            "kinematics": many(seq["kinematics"]) if seq.get("kinematics") else None}
    specs = {mapping.get(k, k): ({**v, "baseline": one(v["baseline"])} if v.get("baseline") else v)
             for k, v in data["target_specs"].items()}  # the validator rebuilds ``baselines`` from these
    data.update(scalars=many(data["scalars"]), targets=many(data["targets"]), observers=many(data["observers"]),
                label=one(data["label"]), weight=one(data["weight"]), target_specs=specs,
                baselines={mapping.get(k, k): one(v) for k, v in data.get("baselines", {}).items()},
                define={k: rename_expression(v, mapping) for k, v in data["define"].items()},
                selection=rename_expression(data["selection"], mapping))
    data["standardize"] = {**data["standardize"], "exclude": many(data["standardize"]["exclude"])}
    return data
