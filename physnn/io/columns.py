"""The columns of a tree: plain branches, members of structs and objects, and why a branch cannot be read.

ROOT stores more than flat numbers: a leaf list (``tree.Branch("pos", addr,
"x/F:y/F:z/F")``) is one branch of records, a ``std::vector<TLorentzVector>``
is a list of objects per event, a class written with splitting becomes a
branch with one sub-branch per member. physnn addresses each number inside
them as its own column, named as ROOT and RDataFrame name them:
``pos.x``, ``jets.fE``, ``jets.fP.fX``, ``hit.e``. :func:`layout_of` lists
those columns without reading any entry (from the branches' types), and
:func:`branch_failure` turns an exception of uproot into one line that says
whether the file is damaged or uproot cannot deserialise the branch's type.
"""

from __future__ import annotations

import contextlib
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from physnn.errors import BranchError, InputFileError, PhysnnError
from physnn.io.files import describe_read_error, is_damage, is_rntuple

#: What physnn reads, for messages about branches it cannot.
SUPPORTED = ("physnn reads numbers, fixed-size arrays, std::vector of numbers, strings, a TH1/TH2 per entry "
             "and the members of structs, leaf lists and split classes (as branch.member)")


class UnreadableBranch(BranchError):
    """A branch of a type uproot cannot deserialise (the file itself is fine)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Column:
    """One addressable column of a tree.

    Attributes
    ----------
    name
        What a config calls it: ``"n"``, ``"pos.x"``, ``"jets.fP.fX"``.
    read
        The key given to uproot's ``arrays`` (a branch's full path).
    path
        The fields to follow in the array uproot returns, starting with its
        own key: ``("pos", "x")``.
    branch
        The top-level branch (or RNTuple field) the column belongs to.
    typename
        The ROOT type of the branch read.
    """

    name: str
    read: str
    path: tuple[str, ...]
    branch: str
    typename: str = ""


@dataclass
class Layout:
    """Every column of a tree, and the branches that hold records of them."""

    columns: dict[str, Column] = field(default_factory=dict)
    #: branch name -> its member columns (leaf lists, objects, split classes)
    groups: dict[str, list[str]] = field(default_factory=dict)
    #: uproot's own full branch paths (``hit./hit.e``), also accepted as names
    raw: list[str] = field(default_factory=list)

    def resolve(self, name: str) -> Column | None:
        """The column a name means: a column name first, then one of uproot's branch paths."""
        if name in self.columns:
            return self.columns[name]
        if name in self.raw:
            return Column(name, name, (name,), name.split("/")[0])
        return None

    def names(self) -> list[str]:
        """The column names, in the tree's order."""
        return list(self.columns)


_CACHE: weakref.WeakKeyDictionary[Any, Layout] = weakref.WeakKeyDictionary()


def member_name(path: str) -> str:
    """``"hit./hit.e"`` -> ``"hit.e"`` and ``"hit/e"`` -> ``"hit.e"``: a sub-branch as ROOT users call it."""
    parts = path.split("/")
    name = parts[0]
    for part in parts[1:]:
        base = name.rstrip(".")
        name = part if part.startswith(base + ".") else f"{base}.{part}"
    return name.rstrip(".") or path


def _record_leaves(form: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The field paths to every non-record value of an awkward form; ``[]`` when it holds no record."""
    kind = type(form).__name__
    if kind == "RecordForm":
        out: list[tuple[str, ...]] = []
        for name, content in zip(form.fields, form.contents, strict=True):
            out += _record_leaves(content, (*prefix, name)) or [(*prefix, name)]
        return out or ([prefix] if prefix else [])
    if form.parameter("__array__") in ("string", "bytestring"):
        return []
    content = getattr(form, "content", None)
    return _record_leaves(content, prefix) if content is not None else []


def _is_histogram(typename: str) -> bool:
    return bool(re.match(r"^TH[123][CSIFD]$", typename or ""))


def _ttree_layout(obj: Any) -> Layout:
    """Columns from branch types: sub-branches of split objects, fields of records (leaf lists, objects)."""
    out = Layout(raw=list(obj.keys(recursive=True, full_paths=True)))
    for path in out.raw:
        branch = obj[path]
        name, top = member_name(path), path.split("/")[0]
        if branch.branches:  # a split object: its members are its sub-branches
            out.groups.setdefault(name, [])
            continue
        typename = branch.typename or ""
        fields: list[tuple[str, ...]] = []
        if not _is_histogram(typename):
            try:
                fields = _record_leaves(branch.interpretation.awkward_form(branch.file))
            except Exception:  # an uninterpretable type: reading it says why
                fields = []
        if not fields:
            out.columns.setdefault(name, Column(name, path, (path,), top, typename))
            _add_member(out, path, name)
            continue
        for leaf in fields:
            full = ".".join((name, *leaf))
            out.columns.setdefault(full, Column(full, path, (path, *leaf), top, typename))
            out.groups.setdefault(name, []).append(full)
            _add_member(out, path, full)
    return out


def _add_member(out: Layout, path: str, name: str) -> None:
    """Register ``name`` as a member of each split branch above ``path``."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        parent = member_name("/".join(parts[:i]))
        if name not in out.groups.setdefault(parent, []):
            out.groups[parent].append(name)


def _rntuple_layout(obj: Any) -> Layout:
    """Columns from an RNTuple's fields: every field without sub-fields (``pos.x``)."""
    keys = [k for k in obj.keys() if not k.startswith("_collection")]  # noqa: SIM118 - an RNTuple
    out = Layout(raw=keys)
    known = set(keys)
    parents = {p for k in keys for p in (k[:i] for i, ch in enumerate(k) if ch == ".") if p in known}
    for key in keys:
        if key in parents:
            out.groups.setdefault(key, [])
            continue
        parts = tuple(key.split("."))
        out.columns[key] = Column(key, key, parts, parts[0])
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in parents:
                out.groups.setdefault(parent, []).append(key)
    return out


def layout_of(obj: Any) -> Layout:
    """The :class:`Layout` of an uproot TTree or RNTuple (computed once per object, from types only)."""
    with contextlib.suppress(KeyError, TypeError):
        return _CACHE[obj]
    layout = _rntuple_layout(obj) if is_rntuple(obj) else _ttree_layout(obj)
    with contextlib.suppress(TypeError):  # not weakly referenceable: computed again next time
        _CACHE[obj] = layout
    return layout


def _is_object(interpretation: Any) -> bool:
    """True when uproot deserialises the branch object by object (classes, STL containers of classes)."""
    text = type(interpretation).__name__ + repr(interpretation)[:200]
    return any(k in text for k in ("AsObjects", "AsStridedObjects", "AsGrouped", "Unknown"))


def unsupported_reason(err: BaseException, interpretation: Any, typename: str) -> str | None:
    """A few words on why uproot cannot read a branch's type, or None when the failure is damage to the file."""
    first = str(err).strip().splitlines()[0][:80] if str(err).strip() else type(err).__name__
    if "UnknownInterpretation" in type(err).__name__ or "Unknown" in type(interpretation).__name__:
        return f"uproot does not know the type {typename or '?'}"
    if isinstance(err, NotImplementedError):
        return f"uproot does not support it ({first})"
    if is_damage(err) or not _is_object(interpretation):
        return None
    return f"uproot cannot deserialise {typename or 'its class'} ({type(err).__name__})"


def branch_failure(obj: Any, column: Column, err: BaseException, path: str, where: str) -> PhysnnError:
    """The one-line error for ``column`` failing to read: an unsupported type or a damaged file."""
    if isinstance(err, PhysnnError):
        return err
    interpretation, typename = None, column.typename
    if not is_rntuple(obj):
        try:
            branch = obj[column.read]
            typename = branch.typename or typename
            interpretation = branch.interpretation
        except Exception:  # the branch was listed: a failure here is the same failure
            pass
    reason = unsupported_reason(err, interpretation, typename)
    if reason is None:
        return InputFileError(describe_read_error(path, err))
    msg = f"{where}: branch {member_name(column.read)!r} ({typename}) cannot be read: {reason}; {SUPPORTED}"
    return UnreadableBranch(msg, reason)

def is_histogram_column(column: Column) -> bool:
    """True for a branch with one TH1/TH2 per entry (read as a numpy array of bin contents)."""
    return len(column.path) == 1 and bool(re.match(r"^TH[123][CSIFD]$", column.typename or ""))


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


def _follow(array: Any, column: Column) -> Any:
    for name in column.path[1:]:
        array = array[name]
    return array


def read_columns(obj: Any, columns: Sequence[Column], start: int, stop: int, path: str, where: str,
                 failures: dict[str, UnreadableBranch] | None = None) -> dict[str, Any]:
    """Read columns of one tree over an entry range.

    Parameters
    ----------
    obj
        The uproot TTree or RNTuple.
    columns
        What to read (from :func:`physnn.io.columns.layout_of`).
    start, stop
        The entry range.
    path, where
        The file and ``"file:tree"``, for messages.
    failures
        None: the first column that cannot be read raises its one-line
        error. A dict: the columns of types uproot cannot read are put
        there (by column name) and the others are read; damage to the file
        still raises.
    """
    hist = [c for c in columns if is_histogram_column(c)]
    plain = [c for c in columns if c not in hist]
    keys = list(dict.fromkeys(c.read for c in plain))
    out: dict[str, Any] = {}
    arrays: dict[str, Any] = {}
    try:
        if keys:
            result = obj.arrays(keys, entry_start=start, entry_stop=stop, library="ak")
            arrays = {c.read: result[c.path[0]] for c in plain}
    except Exception as err:
        arrays = {}
        for key in keys:  # find the branch that fails, to name it
            column = next(c for c in plain if c.read == key)
            try:
                arrays[key] = obj.arrays([key], entry_start=start, entry_stop=stop, library="ak")[column.path[0]]
            except Exception as one:
                problem = branch_failure(obj, column, one, path, where)
                if failures is None or not isinstance(problem, UnreadableBranch):
                    raise problem from one
                failures.update({c.name: problem for c in plain if c.read == key})
        if failures is None and len(arrays) == len(keys):
            raise branch_failure(obj, plain[0], err, path, where) from err
    for column in plain:
        if column.read in arrays:
            out[column.name] = _follow(arrays[column.read], column)
    for column in hist:
        try:
            objects = obj[column.read].array(entry_start=start, entry_stop=stop, library="np")
            out[column.name] = _histograms_to_numpy(objects, where, column.name)
        except Exception as err:
            problem = branch_failure(obj, column, err, path, where)
            if failures is None or not isinstance(problem, UnreadableBranch):
                raise problem from err
            failures[column.name] = problem
    return out


__all__ = ["SUPPORTED", "Column", "Layout", "UnreadableBranch", "branch_failure", "is_histogram_column", "layout_of",
           "member_name", "read_columns", "unsupported_reason"]
