"""Read branches of a TTree or RNTuple into awkward/numpy arrays.

This module knows about ROOT and nothing about tensors: it returns one array
per requested branch for an entry range, and splits a list of files into
chunks of bounded memory for streaming. Branches that hold one ``TH2`` per
entry come back as a numpy ``(N, ny, nx)`` array of bin contents. Members of
leaf lists, objects and split classes are columns of their own (``pos.x``,
``jets.fE``, see :mod:`physnn.io.columns`), and branches of friend trees are
read over the same entry range (see :mod:`physnn.io.friends`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from physnn.errors import BranchError, ConfigError, did_you_mean
from physnn.io.columns import Column, is_histogram_column, layout_of, read_columns
from physnn.io.files import expand_files, is_rntuple, open_root, resolve_tree
from physnn.io.friends import Friend, config_friends, open_friend, saved_friends


@dataclass(frozen=True)
class Chunk:
    """An entry range of one file, the unit of streaming.

    Attributes
    ----------
    path
        The file.
    tree
        The tree's name in the file.
    start, stop
        The entry range in the file.
    offset
        The global entry number of this file's entry 0 across the file list,
        so that ``offset + start + i`` numbers the events of the list (the
        order of the outputs).
    file_id
        The file's identity, independent of its path and of the list:
        ``"<uuid>/<tree>"`` with the UUID from the ROOT file's header.
    friends
        The file's friend trees, read over the same entry range.
    """

    path: str
    tree: str
    start: int
    stop: int
    offset: int
    file_id: str = ""
    friends: tuple[Friend, ...] = ()

    @property
    def where(self) -> str:
        """``"file.root:tree"`` for messages."""
        return f"{self.path}:{self.tree}"


def branch_names(obj: Any) -> list[str]:
    """uproot's names of every branch (TTree, full paths such as ``hit/e``) or field (RNTuple)."""
    return list(layout_of(obj).raw)


def column_names(obj: Any) -> list[str]:
    """Every column a config can name: branches, and members as ``pos.x`` or ``jets.fP.fX``."""
    return layout_of(obj).names()


def is_histogram_branch(obj: Any, name: str) -> bool:
    """True for a TTree branch that holds one TH2 (or TH1) object per entry."""
    column = layout_of(obj).resolve(name)
    return column is not None and is_histogram_column(column)


def _missing_message(obj: Any, name: str, where: str, extra: Sequence[str] = (), why: str = "") -> str:
    """The line for a name ``obj`` lacks: a record's members, else suggestions or the tree's branches; ``why`` the
    branch is needed follows its name."""
    layout = layout_of(obj)
    because = f", {why}" if why else ""
    members = (layout.groups.get(name) or layout.groups.get(name.rstrip("."))
               or [c for c in layout.names() if c.startswith(name.rstrip(".") + ".")])  # jets.fP: jets.fP.fX, ...
    if members:
        shown = ", ".join(members[:6]) + (", ..." if len(members) > 6 else "")
        return (f"{where}: branch {name!r}{because + ',' if why else ''} holds a record of several values per "
                f"entry; name one of them: {shown}")
    available = [*layout.names(), *extra]
    hint = did_you_mean(name, available)
    msg = f"{where}: no branch {name!r}{because}{hint}"
    if not hint:
        shown = ", ".join(available[:12]) + (", ..." if len(available) > 12 else "")
        msg += f"; the tree has {shown}"
    return msg


def check_branches(obj: Any, names: Sequence[str], where: str) -> None:
    """Raise :class:`BranchError` naming the first missing branch, with suggestions."""
    layout = layout_of(obj)
    for name in names:
        if layout.resolve(name) is None:
            raise BranchError(_missing_message(obj, name, where))


def _resolve(chunk: Chunk, obj: Any, names: Sequence[str]) -> list[tuple[Any, Friend | None, Column, str]]:
    """Where each name is: ``(tree, friend or None, column, name)``; friends are opened only when needed."""
    layout = layout_of(obj)
    found: list[tuple[Any, Friend | None, Column, str]] = []
    missing = []
    for name in names:
        column = layout.resolve(name)
        if column is None:
            missing.append(name)
        else:
            found.append((obj, None, column, name))
    if not missing:
        return found
    opened = _open_friends(chunk, obj)
    for name in missing:
        column = None
        for friend, tree in opened:
            rest = name[len(friend.alias) + 1:] if name.startswith(friend.alias + ".") else None
            column = (layout_of(tree).resolve(rest) if rest else None) or layout_of(tree).resolve(name)
            if column is not None:
                found.append((tree, friend, column, name))
                break
        if column is None:
            raise missing_branch(chunk, obj, name, opened=opened)
    return found


def _open_friends(chunk: Chunk, obj: Any) -> list[tuple[Friend, Any]]:
    """``(friend, its tree)`` of each friend of the chunk whose file can be found."""
    return [(f, open_friend(f, int(obj.num_entries), chunk.where)) for f in chunk.friends if f.path is not None]


def missing_branch(chunk: Chunk, obj: Any, name: str, why: str = "", *,
                   opened: Sequence[tuple[Friend, Any]] | None = None) -> BranchError:
    """The one-line error for a name neither the tree ``obj`` nor its friends have.

    Parameters
    ----------
    chunk, obj
        The chunk and its opened tree.
    name
        The missing name.
    why
        Why the branch is needed (``"an input of the model"``), said after its name; empty for nothing.
    opened
        The chunk's friends already opened (``(friend, tree)``), to save opening them again.

    Returns
    -------
    BranchError
        Suggestions among the tree's and the friends' names, else the tree's branches, and a friend tree whose
        file cannot be found.
    """
    opened = _open_friends(chunk, obj) if opened is None else opened
    extra = [f"{f.alias}.{n}" for f, t in opened for n in layout_of(t).names()]
    msg = _missing_message(obj, name, chunk.where, extra, why)
    lost = [f for f in chunk.friends if f.path is None]
    if lost:
        msg += f" (its friend tree {lost[0].alias!r}, {lost[0].origin}, cannot be found)"
    return BranchError(msg)


def available_names(chunk: Chunk, obj: Any) -> set[str]:
    """Every name :func:`read_chunk` accepts for a chunk: branches, members, and its friends' branches (plain and
    as ``alias.branch``; friends whose file cannot be found are left out)."""
    layout = layout_of(obj)
    names = {*layout.raw, *layout.names()}
    for friend in chunk.friends:
        if friend.path is not None:
            columns = layout_of(open_friend(friend, int(obj.num_entries), chunk.where)).names()
            names |= {*columns, *(f"{friend.alias}.{c}" for c in columns)}
    return names


def first_chunk(files: str | Sequence[str], tree: str | None, friends: Sequence[Any] = ()) -> tuple[Chunk, Any]:
    """The first file as one chunk with its friends, and its opened tree (for :func:`available_names` and
    :func:`missing_branch`); a file without entries has an empty chunk, without friends."""
    first = expand_files(files)[0]
    for chunk, obj in plan_chunks([first], tree, [], friends=friends):
        return chunk, obj
    handle = open_root(first)
    name, obj = resolve_tree(handle, first, tree)
    return Chunk(first, name, 0, 0, 0, file_identity(handle, name)), obj


def read_chunk(chunk: Chunk, names: Sequence[str], obj: Any | None = None) -> dict[str, Any]:
    """Read branches for one chunk.

    Parameters
    ----------
    chunk
        The file, tree, entry range and friend trees.
    names
        Branch names (``n``, members such as ``pos.x``, branches of friend
        trees as ``weight`` or ``w.weight``); duplicates are read once.
    obj
        The already opened tree, to save re-opening the file.

    Returns
    -------
    dict
        Branch name to awkward array (or numpy array for histogram branches).
    """
    if obj is None:
        obj = open_tree(chunk.path, chunk.tree)
    names = list(dict.fromkeys(names))
    located = _resolve(chunk, obj, names)
    out: dict[str, Any] = {}
    for tree in {id(t): t for t, *_ in located}.values():
        mine = [(friend, column, name) for t, friend, column, name in located if t is tree]
        friend = mine[0][0]
        path = chunk.path if friend is None else str(friend.path)
        where = chunk.where if friend is None else f"{friend.path}:{friend.tree or tree.name}"
        arrays = read_columns(tree, [c for _, c, _ in mine], chunk.start, chunk.stop, path, where)
        for _, column, name in mine:
            out[name] = arrays[column.name]
    return {name: out[name] for name in names}


def file_identity(handle: Any, tree: str) -> str:
    """``"<uuid>/<tree>"``: the identity of a tree that copies and renames of its file keep."""
    return f"{handle.file.uuid}/{tree}"


def open_tree(path: str, tree: str | None) -> Any:
    """Open ``path`` and return its tree (the only one when ``tree`` is None)."""
    handle = open_root(path)
    return resolve_tree(handle, path, tree)[1]


_SIZE = re.compile(r"^\s*([0-9.]+)\s*([kKMGT]?i?B)\s*$")
_UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
          "KiB": 2**10, "kiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def parse_step_size(step: str | int) -> tuple[int | None, float | None]:
    """``1000`` -> (1000 entries, None); ``"100 MB"`` -> (None, 1e8 bytes)."""
    if isinstance(step, int) or (isinstance(step, str) and step.strip().isdigit()):
        entries = int(step)
        if entries <= 0:
            msg = f"step_size must be positive, got {step}"
            raise ConfigError(msg)
        return entries, None
    match = _SIZE.match(str(step))
    if not match or match.group(2) not in _UNITS:
        msg = f"step_size {step!r}: expected a number of entries or a size such as '100 MB'"
        raise ConfigError(msg)
    return None, float(match.group(1)) * _UNITS[match.group(2)]


def _bytes_per_entry(obj: Any, chunk: Chunk, names: Sequence[str]) -> float:
    """Measure the in-memory size of one entry by reading a small probe."""
    import awkward as ak

    probe = replace(chunk, stop=min(chunk.stop, chunk.start + 1000))
    if probe.stop <= probe.start:
        return 1.0
    arrays = read_chunk(probe, names, obj)
    total = sum(a.nbytes if isinstance(a, np.ndarray) else ak.Array(a).nbytes for a in arrays.values())
    return max(total / (probe.stop - probe.start), 1.0)


def plan_chunks(
    files: str | Sequence[str],
    tree: str | None,
    names: Sequence[str],
    *,
    step_size: str | int | None = None,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    friends: Sequence[Any] = (),
) -> Iterator[tuple[Chunk, Any]]:
    """Split files into chunks of bounded memory, yielding ``(chunk, tree)``.

    Parameters
    ----------
    files
        Path, glob or list of them.
    tree
        Tree name, or None for the only tree of each file.
    names
        The branches that will be read (used to size the chunks).
    step_size
        Entries per chunk (int) or memory per chunk (``"100 MB"``); ``None``
        reads each file's range in one chunk.
    entry_start, entry_stop
        Entry range applied to each file, with Python slice semantics.
    friends
        The config's friend trees (entries with ``tree``, ``files``,
        ``alias``); friends saved with each tree are added.
    """
    paths = expand_files(files)
    entries, size = parse_step_size(step_size) if step_size is not None else (None, None)
    given = config_friends(friends, paths) if friends else [[] for _ in paths]
    offset = 0
    for path, mine in zip(paths, given, strict=True):
        handle = open_root(path)
        name, obj = resolve_tree(handle, path, tree)
        n = int(obj.num_entries)
        for friend in mine:  # the config's friends must match now, before any chunk is read
            open_friend(friend, n, f"{path}:{name}")
        aliases = {f.alias for f in mine}
        saved = [] if is_rntuple(obj) else [f for f in saved_friends(path, name) if f.alias not in aliases]
        start, stop, _ = slice(entry_start, entry_stop).indices(n)
        whole = Chunk(path, name, start, max(start, stop), offset, file_identity(handle, name),
                      (*mine, *saved))
        if step_size is None:
            step = max(whole.stop - whole.start, 1)
        elif entries is not None:
            step = entries
        else:
            assert size is not None
            step = max(int(size // _bytes_per_entry(obj, whole, names)), 1)
        for lo in range(whole.start, whole.stop, step):
            yield replace(whole, start=lo, stop=min(lo + step, whole.stop)), obj
        offset += n


def read(
    files: str | Sequence[str],
    branches: Sequence[str],
    *,
    tree: str | None = None,
    entry_start: int | None = None,
    entry_stop: int | None = None,
) -> dict[str, Any]:
    """Read branches from one or several files into one array per branch.

    A convenience for scripts: physnn's data layer reads chunk by chunk
    through :func:`plan_chunks` and :func:`read_chunk` instead.

    Examples
    --------
    >>> arrays = read("showers.root", ["image", "energy"])  # doctest: +SKIP
    """
    import awkward as ak

    parts: dict[str, list[Any]] = {b: [] for b in branches}
    for chunk, obj in plan_chunks(files, tree, branches, entry_start=entry_start, entry_stop=entry_stop):
        for key, value in read_chunk(chunk, branches, obj).items():
            parts[key].append(value)
    out: dict[str, Any] = {}
    for key, values in parts.items():
        if len(values) == 1:
            out[key] = values[0]
        elif values and isinstance(values[0], np.ndarray):
            out[key] = np.concatenate(values)
        else:
            out[key] = ak.concatenate(values)
    return out


def entries_for(files: str | Sequence[str], tree: str | None) -> int:
    """Total number of entries in the tree across files."""
    total = 0
    for path in expand_files(files):
        total += int(resolve_tree(open_root(path), path, tree)[1].num_entries)
    return total


__all__ = ["Chunk", "available_names", "branch_names", "check_branches", "column_names", "entries_for",
           "first_chunk", "is_histogram_branch", "missing_branch", "open_tree", "parse_step_size", "plan_chunks",
           "read", "read_chunk"]
