"""Scan every entry of many files in parallel with ``uproot.dask`` and dask-awkward.

:func:`physnn.io.inspect.inspect_file` probes the first entries of each
file; before training on a large data set one wants the exact numbers over
all of it: how long the sequences are (to choose ``sequence.max_length``),
the ranges of the inputs, how many NaN/inf values there are. :func:`scan`
builds one lazy dask-awkward array over all files (``uproot.dask``, one
partition per ``step_size`` of each file) and reduces it with dask's own
schedulers (threads, processes, or a ``dask.distributed`` cluster the user
has started: ``scheduler=client``). physnn adds no scheduler of its own.

Needs the ``dask`` extra: ``pip install 'physnn[dask]'``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from physnn import extras
from physnn.errors import ConfigError
from physnn.io.files import FileSpec, check_length, expand_files, open_root, resolve_tree

QUANTILES = (0.5, 0.95, 0.99)


@dataclass
class BranchScan:
    """What a full scan found for one branch.

    Attributes
    ----------
    kind
        ``jagged`` (a length per event), ``scalar`` (one number per event)
        or ``array`` (a fixed-size array per event, e.g. an image).
    entries
        Events scanned.
    lengths
        For jagged branches: ``median``, ``q95``, ``q99``, ``max`` and
        ``mean`` of the per-event lengths.
    minimum, maximum, mean
        Over all finite values.
    nonfinite
        Number of NaN or infinite values.
    """

    name: str
    kind: str
    type: str
    entries: int
    lengths: dict[str, float] = field(default_factory=dict)
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    nonfinite: int = 0


def _kind(type_text: str) -> str | None:
    """``var * float32`` -> jagged, ``float32`` -> scalar, ``3 * 24 * float32`` -> array; else None."""
    parts = [p.strip() for p in type_text.split("*")]
    leaf = parts[-1]
    if not (leaf.startswith(("float", "int", "uint")) or leaf == "bool"):
        return None
    dims = parts[:-1]
    if not dims:
        return "scalar"
    if dims == ["var"]:
        return "jagged"
    if all(d.isdigit() for d in dims):
        return "array"
    return None


def scan(files: FileSpec, *, tree: str | None = None, branches: Sequence[str] | None = None,
         step_size: str | int = "100 MB", scheduler: Any = "threads", workers: int | None = None) -> list[BranchScan]:
    """Exact per-branch statistics over every entry of ``files``, computed in parallel by dask.

    Parameters
    ----------
    files
        Path, glob or list.
    tree
        Tree name (default: the only tree of the first file).
    branches
        Branch names or patterns (``part_*``); default: every branch.
    step_size
        Partition size per file, as for ``uproot.dask``.
    scheduler
        ``"threads"``, ``"processes"``, ``"synchronous"`` or a
        ``dask.distributed.Client``.
    workers
        Number of workers of the local schedulers (default: dask's).

    Returns
    -------
    list of BranchScan
        One per numeric branch; others (strings, objects) are left out.

    Examples
    --------
    >>> for b in physnn.scan("data/*.root", branches=["part_*"]):  # doctest: +SKIP
    ...     print(b.name, b.lengths.get("q99"))
    """
    dask = extras.dask()
    import uproot

    paths = expand_files(files)
    name, obj = resolve_tree(open_root(paths[0]), paths[0], tree)
    for path in paths[1:]:  # the others are opened by dask's workers: a file cut short is said here
        check_length(path)
    filter_name = list(branches) if branches else None
    if filter_name and not obj.keys(filter_name=filter_name):
        msg = f"{paths[0]}:{name}: no branch matches {filter_name}"
        raise ConfigError(msg)
    try:
        array = uproot.dask({os.fspath(p): name for p in paths}, filter_name=filter_name, step_size=step_size)
    except Exception as err:
        msg = f"{', '.join(paths[:3])}: cannot scan tree {name!r} ({str(err).splitlines()[0][:200]})"
        raise ConfigError(msg) from None
    if not array.fields:
        msg = f"{paths[0]}:{name}: no branch matches {list(branches or [])}"
        raise ConfigError(msg)
    plan: dict[str, tuple[str, str]] = {}
    for field_name in array.fields:
        column = array[field_name]
        type_text = str(column.type.content) if hasattr(column.type, "content") else str(column.type)
        kind = _kind(type_text)
        if kind is not None:
            plan[field_name] = (kind, type_text)
    # map: statistics of each partition (numpy on one chunk); reduce: merge them here
    stats = [dask.delayed(_partition_stats)(part, plan) for part in array.to_delayed()]
    options: dict[str, Any] = {"scheduler": scheduler}
    if workers is not None and isinstance(scheduler, str):
        options["num_workers"] = workers
    parts = dask.compute(*stats, **options)
    entries = sum(p["entries"] for p in parts)
    out = []
    for field_name, (kind, type_text) in plan.items():
        merged = _merge([p[field_name] for p in parts])
        row = BranchScan(field_name, kind, type_text, entries, nonfinite=merged["nonfinite"])
        if merged["n"]:
            row.minimum, row.maximum = merged["min"], merged["max"]
            row.mean = merged["sum"] / merged["n"]
        if kind == "jagged":
            row.lengths = _length_summary(merged["lengths"])
        out.append(row)
    return out


def _partition_stats(chunk: Any, plan: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Counts, extremes, sums and the length histogram of one partition."""
    import awkward as ak

    out: dict[str, Any] = {"entries": len(chunk)}
    for name, (kind, _) in plan.items():
        column = chunk[name]
        lengths = None
        if kind == "jagged":
            lengths = np.bincount(ak.to_numpy(ak.num(column, axis=1)))
            column = ak.flatten(column, axis=1)
        values = np.asarray(ak.to_numpy(column), dtype=np.float64).reshape(-1)
        finite = np.isfinite(values)
        good = values[finite]
        out[name] = {"n": int(good.size), "nonfinite": int(values.size - good.size), "lengths": lengths,
                     "min": float(good.min()) if good.size else np.inf,
                     "max": float(good.max()) if good.size else -np.inf, "sum": float(good.sum())}
    return out


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    hists = [p["lengths"] for p in parts if p["lengths"] is not None]
    lengths = None
    if hists:
        lengths = np.zeros(max(len(h) for h in hists), dtype=np.int64)
        for h in hists:
            lengths[: len(h)] += h
    return {"n": sum(p["n"] for p in parts), "nonfinite": sum(p["nonfinite"] for p in parts), "lengths": lengths,
            "min": min(p["min"] for p in parts), "max": max(p["max"] for p in parts),
            "sum": sum(p["sum"] for p in parts)}


def _length_summary(hist: np.ndarray | None) -> dict[str, float]:
    """Quantiles of per-event lengths from their histogram (``hist[k]`` = events with length k)."""
    if hist is None or hist.sum() == 0:
        return {}
    total = hist.sum()
    if total == 0:
        return {}
    cdf = np.cumsum(hist) / total
    out = {f"q{round(q * 100)}" if q != 0.5 else "median": float(np.searchsorted(cdf, q)) for q in QUANTILES}
    out["max"] = float(np.flatnonzero(hist)[-1])
    out["mean"] = float((np.arange(len(hist)) * hist).sum() / total)
    return out
