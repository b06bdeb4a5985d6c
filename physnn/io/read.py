"""Read branches of a TTree or RNTuple into awkward/numpy arrays.

This module knows about ROOT and nothing about tensors: it returns one array
per requested branch for an entry range, and splits a list of files into
chunks of bounded memory for streaming. Branches that hold one ``TH2`` per
entry come back as a numpy ``(N, ny, nx)`` array of bin contents.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from physnn.errors import BranchError, ConfigError, InputFileError, PhysnnError, did_you_mean
from physnn.io.files import describe_read_error, expand_files, is_rntuple, open_root, resolve_tree


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
    """

    path: str
    tree: str
    start: int
    stop: int
    offset: int
    file_id: str = ""

    @property
    def where(self) -> str:
        """``"file.root:tree"`` for messages."""
        return f"{self.path}:{self.tree}"


def branch_names(obj: Any) -> list[str]:
    """All readable branch (TTree) or field (RNTuple) names."""
    if is_rntuple(obj):
        fields = obj.keys()  # top-level fields; "_collectionN" are internal
        return [k for k in fields if not k.startswith("_collection")]
    return list(obj.keys(recursive=True, full_paths=True))


def is_histogram_branch(obj: Any, name: str) -> bool:
    """True for a TTree branch that holds one TH2 (or TH1) object per entry."""
    if is_rntuple(obj):
        return False
    return bool(re.match(r"^TH[123][CSIFD]$", obj[name].typename or ""))


def check_branches(obj: Any, names: Sequence[str], where: str) -> None:
    """Raise :class:`BranchError` naming the first missing branch, with suggestions."""
    available = branch_names(obj)
    known = set(available)
    for name in names:
        if name not in known:
            hint = did_you_mean(name, available)
            msg = f"{where}: no branch {name!r}{hint}"
            if not hint:
                shown = ", ".join(available[:12]) + (", ..." if len(available) > 12 else "")
                msg += f"; the tree has {shown}"
            raise BranchError(msg)


def _histograms_to_numpy(objects: np.ndarray, where: str, name: str) -> np.ndarray:
    if len(objects) == 0:
        return np.zeros((0, 0, 0), dtype=np.float32)
    values = [h.values(flow=False) for h in objects]
    shapes = {v.shape for v in values}
    if len(shapes) > 1:
        msg = f"{where}: branch {name!r} holds histograms of different binnings {sorted(shapes)}"
        raise BranchError(msg)
    stacked = np.stack(values).astype(np.float32, copy=False)
    # TH2 values are indexed [ix][iy]; images are [row=y][column=x].
    return np.ascontiguousarray(np.swapaxes(stacked, -1, -2)) if stacked.ndim == 3 else stacked


def read_chunk(chunk: Chunk, names: Sequence[str], obj: Any | None = None) -> dict[str, Any]:
    """Read branches for one chunk.

    Parameters
    ----------
    chunk
        The file, tree and entry range.
    names
        Branch names; duplicates are read once.
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
    check_branches(obj, names, chunk.where)
    hist = [n for n in names if is_histogram_branch(obj, n)]
    plain = [n for n in names if n not in hist]
    out: dict[str, Any] = {}
    try:
        if plain:
            arrays = obj.arrays(plain, entry_start=chunk.start, entry_stop=chunk.stop, library="ak")
            for n in plain:
                out[n] = arrays[n]
        for n in hist:
            objects = obj[n].array(entry_start=chunk.start, entry_stop=chunk.stop, library="np")
            out[n] = _histograms_to_numpy(objects, chunk.where, n)
    except PhysnnError:
        raise
    except Exception as err:
        raise InputFileError(describe_read_error(chunk.path, err)) from err
    return out


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

    probe = Chunk(chunk.path, chunk.tree, chunk.start, min(chunk.stop, chunk.start + 1000), chunk.offset,
                  chunk.file_id)
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
    """
    paths = expand_files(files)
    entries, size = parse_step_size(step_size) if step_size is not None else (None, None)
    offset = 0
    for path in paths:
        handle = open_root(path)
        name, obj = resolve_tree(handle, path, tree)
        n = int(obj.num_entries)
        start, stop, _ = slice(entry_start, entry_stop).indices(n)
        whole = Chunk(path, name, start, max(start, stop), offset, file_identity(handle, name))
        if step_size is None:
            step = max(whole.stop - whole.start, 1)
        elif entries is not None:
            step = entries
        else:
            assert size is not None
            step = max(int(size // _bytes_per_entry(obj, whole, names)), 1)
        for lo in range(whole.start, whole.stop, step):
            yield Chunk(path, name, lo, min(lo + step, whole.stop), offset, whole.file_id), obj
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


__all__ = ["Chunk", "branch_names", "check_branches", "entries_for", "is_histogram_branch",
           "open_tree", "parse_step_size", "plan_chunks", "read", "read_chunk"]
