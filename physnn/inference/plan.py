"""What a run needs of a file it is applied to, and what it leaves out (data without the truth of simulation).

``predict``, ``denoise`` and ``encode`` need only what the model reads: its
inputs (after a branch mapping, :mod:`physnn.inference.branch_map`) and the
``define:`` expressions that build them. A missing one is one line naming
the branch and why it is needed. The rest of the run's data config is used
where the file has it: the label, targets, weight, target images and
observers (also those of a config friend, which belongs to the training
files) are written when present and left out when absent, and a training
selection or a define that reads an absent branch is not applied.
:class:`PredictionPlan` says which: ``left_out`` and ``not_applied``, both
recorded in ``physnn_meta``, and one note each.

The tree of a new file is the one named, else the file's only tree (whatever
its name); a file with several trees and none named is one line listing them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from physnn.config import DataConfig
from physnn.data.convert import is_jagged
from physnn.errors import BranchError, did_you_mean
from physnn.inference.branch_map import check_mapping, map_config, parse_mapping
from physnn.io.read import Chunk, available_names, first_chunk, missing_branch, read
from physnn.io.selection import Expression

__all__ = ["PredictionPlan", "plan_prediction", "vector_image_shape"]


@dataclass
class PredictionPlan:
    """The run's data config pointed at new files, and what of it the files cannot give.

    Attributes
    ----------
    config
        The data config to read the files with: the inputs, the truth and observers present, the defines that
        can be computed, the caller's selection (in the file's names).
    flag
        The training selection in the file's names (its pass/fail becomes ``in_selection``), None when the run
        has none or it reads an absent branch.
    where
        ``"file.root:tree"`` of the first file.
    tree
        The tree read in the first file (the one named, else its only tree).
    left_out
        The run's truth and observers the file lacks, under the run's names: ``label``, ``weight`` (a name),
        ``targets``, ``target_images``, ``observers`` (lists).
    not_applied
        ``selection``: ``{"expression", "absent"}`` for a training selection that reads absent branches;
        ``define``: ``{name: {"expression", "absent"}}`` for defines that cannot be computed.
    """

    config: DataConfig
    flag: str | None
    where: str
    tree: str
    left_out: dict[str, Any] = field(default_factory=dict)
    not_applied: dict[str, Any] = field(default_factory=dict)

    @property
    def notes(self) -> list[str]:
        """One line for what is left out, one for what is not applied (none when the file has everything)."""
        notes = []
        if self.left_out:
            items = []
            for role, value in self.left_out.items():
                names = [value] if isinstance(value, str) else value
                role = role.rstrip("s").replace("_", " ") + ("s" if len(names) > 1 else "")
                items.append(f"{role} {', '.join(repr(n) for n in names)}")
            notes.append(f"left out of the output, {self.where} lacks them: {'; '.join(items)}")
        if self.not_applied:
            items = []
            if "selection" in self.not_applied:
                sel = self.not_applied["selection"]
                items.append(f"the training selection {sel['expression']!r} ({_absent(sel['absent'])}; no "
                             "in_selection)")
            for name, define in self.not_applied.get("define", {}).items():
                items.append(f"define {name!r} = {define['expression']!r} ({_absent(define['absent'])})")
            notes.append(f"not applied, {self.where} lacks a branch they read: {'; '.join(items)}")
        return notes

    def meta(self) -> dict[str, Any]:
        """The entries of ``physnn_meta``: ``left_out`` and ``not_applied`` (empty when nothing is)."""
        return {"left_out": self.left_out, "not_applied": self.not_applied}


def _absent(names: Sequence[str]) -> str:
    return "no branch " + ", ".join(repr(n) for n in names)


def plan_prediction(cfg: DataConfig, files: str | Sequence[str] | None, tree: str | None, selection: str | None, *,
                    mapping: Mapping[str, str] | Sequence[str] | None = None,
                    image_shape: Sequence[int] | None = None, flag: bool = True) -> PredictionPlan:
    """The training data config ``cfg`` pointed at new files: no cut, truth only where present.

    Parameters
    ----------
    cfg
        The run's data config.
    files, tree
        The files to process (default: the training files) and their tree (default: the training tree for
        the training files, the only tree of a new file).
    selection
        A cut on the new files, in their names.
    mapping
        The run's branch -> the file's (:mod:`physnn.inference.branch_map`); each new name must be in the
        (first) file.
    image_shape
        The run's image shape, for image branches the file stores as a vector per event (an RDataFrame
        ``RVec``).
    flag
        Tag the events with the training selection (``predict``); False where it is never applied.

    Raises
    ------
    BranchError
        A mapped branch, an input of the model or a branch a define that builds an input reads is missing.
    """
    mapping = parse_mapping(mapping)
    check_mapping(mapping, cfg)
    data = map_config(cfg.model_dump(), mapping)
    training_selection = data["selection"] if flag else None
    if files is not None:
        data["files"] = [os.fspath(files)] if isinstance(files, (str, os.PathLike)) else [os.fspath(f) for f in files]
        data["tree"] = tree
        data["friends"] = [f for f in data["friends"] if not f.get("files")]  # they belong to the training files
    elif tree is not None:
        data["tree"] = tree
    data.update(selection=selection, entry_start=None, entry_stop=None)
    chunk, obj = first_chunk(data["files"], data["tree"], data["friends"])
    where, present = chunk.where, available_names(chunk, obj)
    inputs = _inputs(data)
    for old, new in mapping.items():  # a mapped branch is asked for by name: missing is an error
        if new not in present:
            why = ", an input of the model" if new in inputs else ""
            msg = f"{where}: no branch {new!r} (the run's {old!r}){why}{did_you_mean(new, sorted(present))}"
            raise BranchError(msg)
    defines, skipped = _defines(data["define"], present)
    _check_inputs(data, inputs, skipped, present, chunk, obj)
    available = present | defines.keys()
    data["define"] = defines
    inverse = {new: old for old, new in mapping.items()}
    left_out = _leave_out(data, available, inverse)
    not_applied: dict[str, Any] = {}
    if training_selection and not Expression(training_selection).branches <= available:
        absent = _roots(Expression(training_selection).branches - available, skipped)
        training_selection = None
        not_applied["selection"] = {"expression": cfg.selection, "absent": absent}
    if skipped:
        not_applied["define"] = {n: {"expression": cfg.define[n], "absent": a} for n, a in skipped.items()}
    if image_shape is not None and data["images"] and data["images"]["shape"] is None:
        data["images"]["shape"] = vector_image_shape(data, image_shape)
    return PredictionPlan(DataConfig.model_validate(data), training_selection, where, chunk.tree, left_out,
                          not_applied)


def _inputs(data: Mapping[str, Any]) -> list[str]:
    """The names the model reads (images, sequence features, kinematics and ordering, scalars): branches or
    defines."""
    names = list(data["images"]["branches"]) if data.get("images") else []
    if data.get("sequence"):
        seq = data["sequence"]
        names += [*seq["features"], *(seq.get("kinematics") or []), *([seq["sort_by"]] if seq.get("sort_by") else [])]
    return names + list(data["scalars"]) + [b for b in data.get("baselines", {}).values() if b]


def _why(data: Mapping[str, Any], name: str) -> str:
    """Why the model reads ``name``: an input, or the baseline its target is predicted relative to."""
    targets = [t for t, b in data.get("baselines", {}).items() if b == name]
    if targets and name not in data["scalars"]:
        return f"the baseline of target {targets[0]!r}, an input of the model"
    return "an input of the model"


def _defines(define: Mapping[str, str], present: set[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The defines computable from ``present`` (in order: one may read another), and the others with the
    branches they lack."""
    usable: dict[str, str] = {}
    skipped: dict[str, list[str]] = {}
    for name, expression in define.items():
        missing = Expression(expression).branches - present - usable.keys()
        if missing:
            skipped[name] = _roots(missing, skipped)
        else:
            usable[name] = expression
    return usable, skipped


def _roots(missing: set[str], skipped: Mapping[str, list[str]]) -> list[str]:
    """The absent branches behind ``missing`` (a skipped define stands for the branches it lacks)."""
    out: list[str] = []
    for name in sorted(missing):
        out += skipped.get(name, [name])
    return list(dict.fromkeys(out))


def _check_inputs(data: Mapping[str, Any], inputs: Sequence[str], skipped: Mapping[str, list[str]],
                  present: set[str], chunk: Chunk, obj: Any) -> None:
    """One line naming a missing input branch, or the branch a define that builds an input lacks: the reader's
    (:func:`~physnn.io.read.missing_branch`: suggestions, the tree's branches, a lost friend tree) with why it
    is needed."""
    define = data["define"]
    for name in inputs:
        if name in skipped:
            why = f"which define {name!r} = {define[name]!r} reads to build {_why(data, name).split(', an ')[0]}"
            raise missing_branch(chunk, obj, skipped[name][0], why)
        if name not in define and name not in present:
            raise missing_branch(chunk, obj, name, _why(data, name))


def _leave_out(data: dict[str, Any], available: set[str], inverse: Mapping[str, str]) -> dict[str, Any]:
    """Drop from ``data`` the truth and observers not in ``available``; what was dropped, in the run's names."""
    left_out: dict[str, Any] = {}

    def run_names(names: Sequence[str]) -> list[str]:
        return [inverse.get(n, n) for n in names]

    for key in ("label", "weight"):
        if data[key] is not None and data[key] not in available:
            left_out[key] = inverse.get(data[key], data[key])
            data[key] = None
    if data["targets"] and not set(data["targets"]) <= available:
        left_out["targets"] = run_names(data["targets"])
        data["targets"] = []
    if data.get("target_images") and not set(data["target_images"]["branches"]) <= available:
        left_out["target_images"] = run_names(data["target_images"]["branches"])
        data["target_images"] = None
    missing = [o for o in data["observers"] if o not in available]
    if missing:
        left_out["observers"] = run_names(missing)
        data["observers"] = [o for o in data["observers"] if o in available]
    return left_out


def vector_image_shape(data: Mapping[str, Any], image_shape: Sequence[int]) -> list[int] | None:
    """The run's shape of one image branch when the file stores its images as a vector per event (RDataFrame
    writes an ``RVec`` column so), else None; the cell count of every event is checked when it is read."""
    branches = data["images"]["branches"]
    first = read(data["files"], branches[:1], tree=data["tree"], entry_stop=1)[branches[0]]
    if not is_jagged(first):
        return None
    shape = list(image_shape)
    return shape[1:] if len(branches) > 1 or shape[0] == 1 else shape  # the channel axis is physnn's
