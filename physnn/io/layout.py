"""The layout of an input tree that an output copies: which branches, in which order, with which counters.

An output "in the layout of its input" (``physnn denoise``) has the input's branch names in the
input's order, each written by uproot:

- numbers and fixed-size arrays (``image[3][24][24]/F``) keep their type;
- a jagged branch keeps its counter: ``Muon_pt[nMuon]`` and ``Muon_eta[nMuon]`` still share
  ``nMuon``; a ``std::vector<T>`` (which has no counter, and which uproot cannot write) becomes
  ``T[n_<name>]`` with a new counter ``n_<name>`` just before it (``TTreeReaderArray<T>`` and
  RDataFrame's ``RVec<T>`` read both alike; ``SetBranchAddress`` with a ``std::vector*`` does not);
- a ``std::string`` becomes a C string (``char*``, leaf type ``/C``);
- an RNTuple is written as an RNTuple with the same top-level fields (records such as a zipped
  ``Muon`` collection included).

Whatever uproot cannot write (``vector<vector<T>>``, objects, split records, one histogram per
entry) is skipped. :func:`plan_layout` decides all this from the first file's types, by asking
uproot to declare each branch in an in-memory file, before any data is read.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from physnn.io.files import is_rntuple
from physnn.io.read import is_histogram_branch


@dataclass
class Layout:
    """What an output copies of its input tree.

    Attributes
    ----------
    rntuple
        The input is an RNTuple (the output is one too).
    branches
        The branches (RNTuple: top-level fields) to read and write, in the input's order.
    counters
        Jagged branch -> the name of its counter branch (TTree only).
    skipped
        Branch -> why it is not copied, in the input's order.
    """

    rntuple: bool
    branches: list[str]
    counters: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _leaf_type(value: Any) -> Any:
    """The awkward type below the event dimension and any fixed-size dimensions."""
    import awkward as ak

    kind = value.type.content
    while isinstance(kind, ak.types.RegularType):
        kind = kind.content
    return kind


def as_written(value: Any) -> Any:
    """A branch's array as the writer takes it: numpy for numbers and fixed-size arrays, else awkward."""
    import awkward as ak

    if isinstance(value, np.ndarray):
        return value
    kind = _leaf_type(value)
    if isinstance(kind, ak.types.NumpyType) and kind.parameter("__array__") is None:
        return ak.to_numpy(value)
    return value


def branch_type(value: Any, *, rntuple: bool = False) -> Any:
    """The type to declare a branch (uproot ``mktree``) or field (``mkrntuple``) of this array."""
    if isinstance(value, np.ndarray):
        return np.dtype((value.dtype, value.shape[1:])) if value.ndim > 1 else value.dtype
    return value.type.content if rntuple else value.type


def is_list(value: Any) -> bool:
    """True for a jagged array (a variable-length dimension first), False for numbers, strings, records."""
    import awkward as ak

    if isinstance(value, np.ndarray):
        return False
    kind = value.type.content
    return isinstance(kind, ak.types.ListType) and kind.parameter("__array__") not in ("string", "bytestring")


def _is_record(value: Any) -> bool:
    import awkward as ak

    if isinstance(value, np.ndarray):
        return False
    kind = value.type.content
    while isinstance(kind, (ak.types.ListType, ak.types.RegularType, ak.types.OptionType)):
        kind = kind.content
    return isinstance(kind, ak.types.RecordType)


def counter_name(counted: str) -> str:
    """Name of the counter branch of a jagged collection: ``part`` -> ``n_part``."""
    return f"n_{counted}"


def declare(out: Any, name: str, types: Mapping[str, Any], *, rntuple: bool,
            counters: Mapping[str, str] | None = None, title: str = "") -> Any:
    """Create the TTree (uproot ``mktree``) or RNTuple (``mkrntuple``) ``name`` in the open file ``out``."""
    if rntuple:
        return out.mkrntuple(name, dict(types), description=title)
    counters = dict(counters or {})
    return out.mktree(name, dict(types), title=title, counter_name=lambda b: counters.get(b, counter_name(b)))


def _refusal(arrays: Mapping[str, Any], rntuple: bool, counters: Mapping[str, str]) -> str | None:
    """Why uproot cannot declare and fill these branches in a file (None: it can)."""
    import uproot

    try:
        with uproot.recreate(io.BytesIO()) as out:
            declare(out, "probe", {k: branch_type(v, rntuple=rntuple) for k, v in arrays.items()},
                    rntuple=rntuple, counters=counters).extend(dict(arrays))
    except Exception as err:  # uproot's TypeError/ValueError/NotImplementedError: the type is not writable
        lines = str(err).strip().splitlines()
        return f"uproot cannot write it ({lines[0].rstrip(':') if lines else type(err).__name__})"
    return None


def _read_empty(obj: Any, names: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Zero entries of each branch (their types), and the branches uproot cannot read."""
    try:
        arrays = obj.arrays(list(names), entry_stop=0, library="ak")
        return {n: arrays[n] for n in names}, {}
    except Exception:  # one of them is unreadable: find which
        pass
    out: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    for name in names:
        try:
            out[name] = obj.arrays([name], entry_stop=0, library="ak")[name]
        except Exception as err:
            unreadable[name] = f"uproot cannot read it ({str(err).strip().splitlines()[0] if str(err) else err!r})"
    return out, unreadable


def _fresh(name: str, taken: set[str]) -> str:
    candidate, i = counter_name(name), 2
    while candidate in taken:
        candidate, i = f"{counter_name(name)}_{i}", i + 1
    taken.add(candidate)
    return candidate


def _counters(obj: Any, arrays: Mapping[str, Any], written: Iterable[str], taken: set[str]) -> dict[str, str]:
    """Each jagged branch's counter: the input's own when it is a branch that is copied, else a new name."""
    written = set(written)
    counters: dict[str, str] = {}
    for name, value in arrays.items():
        if not is_list(value):
            continue
        count = getattr(obj[name], "count_branch", None)
        own = getattr(count, "name", None)
        counters[name] = own if own in written and not is_list(arrays.get(own)) else _fresh(name, taken)
    return counters


def plan_layout(obj: Any, keep: Sequence[str] = ()) -> Layout:
    """Decide, from the types alone, which branches of the tree ``obj`` an output copies and how.

    Parameters
    ----------
    obj
        The uproot TTree or RNTuple of the first input file.
    keep
        Branches the caller writes itself (replaced images): always in the layout, never probed.

    Returns
    -------
    Layout
        Branches in the input's order, their counters and the skipped ones with the reason.
    """
    rntuple = is_rntuple(obj)
    top = [n for n in obj.keys(recursive=False) if not (rntuple and n.startswith("_collection"))]
    names = top + [k for k in keep if k not in top]
    skipped: dict[str, str] = {}
    if not rntuple:
        skipped = {n: "one histogram object per entry" for n in names if n not in keep and is_histogram_branch(obj, n)}
    probe = [n for n in names if n not in skipped and not (n in keep and not rntuple and is_histogram_branch(obj, n))]
    arrays, unreadable = _read_empty(obj, probe)
    skipped.update(unreadable)
    arrays = {n: as_written(v) for n, v in arrays.items()}
    if not rntuple:
        skipped.update({n: "an object split in members; uproot would rename them" for n, v in arrays.items()
                        if n not in keep and _is_record(v)})
    candidates = {n: v for n, v in arrays.items() if n not in skipped}
    counters = {} if rntuple else _counters(obj, candidates, candidates, set(obj.keys(recursive=True)) | set(names))
    if _refusal({n: v for n, v in candidates.items() if n not in keep}, rntuple, counters) is not None:
        for name, value in candidates.items():  # one at a time, to name the culprits
            if name in keep:
                continue
            own = {name: counters[name]} if name in counters else {}
            why = _refusal({name: value}, rntuple, own)
            if why is not None:
                skipped[name] = why
    branches = [n for n in names if n not in skipped]
    return Layout(rntuple, branches, {k: v for k, v in counters.items() if k not in skipped},
                  {n: skipped[n] for n in names if n in skipped})


__all__ = ["Layout", "as_written", "branch_type", "counter_name", "declare", "is_list", "plan_layout"]
