"""Describe what a ROOT file holds and which branches can feed a model.

:func:`inspect_file` lists every TTree/RNTuple with its entries and, for each
branch, its type and the role physnn can give it: an ``image`` (fixed-size
array or a TH2 per entry, with its shape), a ``sequence`` (jagged, with
length quantiles) or a ``scalar`` (one number or string per event). Members
of leaf lists and objects are rows of their own (``pos.x``, ``jets.fE``);
a branch of a type uproot cannot deserialise is an ``unreadable`` row with
the reason, and the other branches are still listed. Branches of friend
trees saved with the tree are listed as ``alias.branch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from physnn.errors import InputFileError, TreeError
from physnn.io.columns import UnreadableBranch, layout_of, member_name, read_columns
from physnn.io.files import (
    describe_read_error,
    expand_files,
    is_rntuple,
    list_trees,
    no_tree_message,
    open_root,
    resolve_tree,
)
from physnn.io.friends import open_friend, saved_friends
from physnn.io.metadata import META, read_metadata


@dataclass
class BranchInfo:
    """One branch: name, type, role and role details (shape or lengths)."""

    name: str
    type: str
    role: str
    shape: list[int] | None = None
    lengths: dict[str, float] | None = None
    collection: str | None = None
    #: Why an ``unreadable`` branch cannot be read.
    note: str | None = None


@dataclass
class TreeInfo:
    """One TTree or RNTuple of a file."""

    file: str
    name: str
    kind: str
    entries: int
    probed: int
    branches: list[BranchInfo] = field(default_factory=list)
    #: The file's ``physnn_meta`` provenance (empty for files physnn did not write).
    meta: dict[str, Any] = field(default_factory=dict)
    #: Friend trees saved with the tree: ``"w (weights.root:w)"``, with a note when they cannot be read.
    friends: list[str] = field(default_factory=list)


def _describe(name: str, arr: Any) -> BranchInfo:
    import awkward as ak

    if isinstance(arr, np.ndarray):
        return BranchInfo(name, f"TH2 {arr.shape[1]}x{arr.shape[2]}" if arr.ndim == 3 else str(arr.dtype),
                          "image", shape=list(arr.shape[1:]))
    layout = ak.to_layout(arr)
    text = str(ak.without_parameters(arr).type.content)  # a bitset: var * bool, not [var * bool, parameters=...]
    if layout.parameter("__array__") == "string":
        return BranchInfo(name, "string", "scalar")
    depth = layout.purelist_depth - 1
    if depth == 0:
        return BranchInfo(name, text, "scalar")
    if "var" not in text:
        return BranchInfo(name, text, "image", shape=list(ak.to_numpy(arr[:1]).shape[1:]) if len(arr) else None)
    if depth == 1:
        counts = ak.to_numpy(ak.num(arr, axis=1))
        lengths = ({"median": float(np.median(counts)), "q95": float(np.quantile(counts, 0.95)),
                    "max": int(counts.max())} if counts.size else None)
        return BranchInfo(name, text, "sequence", lengths=lengths)
    return BranchInfo(name, text, "other")


def _rows(obj: Any, path: str, where: str, stop: int, prefix: str = "") -> list[BranchInfo]:
    """One row per column of a tree (members included), unreadable branches as one row each."""
    import awkward as ak

    columns = list(layout_of(obj).columns.values())
    failures: dict[str, UnreadableBranch] = {}
    arrays = read_columns(obj, columns, 0, stop, path, where, failures) if columns else {}
    rows: list[BranchInfo] = []
    counts: dict[str, tuple] = {}
    failed: set[str] = set()
    for column in columns:
        name = prefix + column.name
        if column.name in failures:  # one row per branch read: a member of a split class by its own name
            if column.read not in failed:
                failed.add(column.read)
                rows.append(BranchInfo(prefix + member_name(column.read), column.typename or "?", "unreadable",
                                       note=failures[column.name].reason))
            continue
        row = _describe(name, arrays[column.name])
        if row.role == "sequence":
            counts[name] = tuple(ak.to_numpy(ak.num(arrays[column.name], axis=1)).tolist())
        rows.append(row)
    _group_collections(rows, counts)
    return rows


def inspect_file(files: str | list[str], *, probe: int = 10000) -> list[TreeInfo]:
    """Describe every tree of one or several files.

    Parameters
    ----------
    files
        Path, glob or list.
    probe
        Entries read per tree to find shapes and sequence lengths.
    """
    out = []
    for path in expand_files(files):
        handle = open_root(path)
        try:
            meta = read_metadata(path) if META in handle else {}
        except Exception as err:  # a file cut short where its metadata lies
            raise InputFileError(describe_read_error(path, err)) from err
        trees = list_trees(handle)
        if not trees:
            raise TreeError(no_tree_message(handle, path))
        for name, cls in trees.items():
            _, obj = resolve_tree(handle, path, name)
            n = int(obj.num_entries)
            info = TreeInfo(path, name, "RNTuple" if is_rntuple(obj) else cls, n, min(n, probe), meta=meta)
            info.branches = _rows(obj, path, f"{path}:{name}", min(n, probe))
            for friend in [] if is_rntuple(obj) else saved_friends(path, name):
                try:
                    tree = open_friend(friend, n, f"{path}:{name}")
                except (InputFileError, TreeError) as err:
                    info.friends.append(f"{friend.describe()}: {err}")
                    continue
                info.friends.append(friend.describe())
                info.branches += _rows(tree, str(friend.path), f"{friend.path}:{friend.tree}", min(n, probe),
                                       prefix=f"{friend.alias}.")
            out.append(info)
    return out


def _group_collections(rows: list[BranchInfo], counts: dict[str, tuple]) -> None:
    """Name collections: jagged branches with a common prefix and equal lengths."""
    groups: dict[tuple[str, tuple], list[BranchInfo]] = {}
    for row in rows:
        if row.role == "sequence":
            prefix = row.name.split(".")[0] if "." in row.name else row.name.split("_")[0]
            groups.setdefault((prefix, counts[row.name]), []).append(row)
    for (prefix, _), members in groups.items():
        if len(members) > 1:
            for row in members:
                row.collection = prefix
