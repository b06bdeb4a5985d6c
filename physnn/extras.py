"""Optional dependencies, each imported in one place with the line that installs it.

Like ``uproot.extras``: a function per optional package returns the module or
raises :class:`~physnn.errors.MissingDependency` (exit code 2 on the command
line) naming the command that needs it and the ``pip install`` that adds it.
Everything else physnn imports is a core dependency (``pyproject.toml``).

Examples
--------
>>> from physnn import extras
>>> extras.onnx().__name__  # doctest: +SKIP
'onnx'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from physnn.errors import MissingDependency

#: package -> (what needs it, the extra that installs it)
OPTIONAL = {
    "onnx": ("physnn export --format onnx", "onnx"),
    "onnxscript": ("physnn export --format onnx", "onnx"),
    "dask": ("physnn scan", "dask"),
    "dask_awkward": ("physnn scan", "dask"),
    "skhep_testdata": ("a file named skhep_testdata:NAME (the real-data configs)", "testdata"),
}


def _require(package: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ImportError:
        needs, extra = OPTIONAL[package]
        msg = f"{needs} needs the {package} package: pip install 'physnn[{extra}]'"
        raise MissingDependency(msg) from None


def onnx() -> ModuleType:
    """:mod:`onnx`, with :mod:`onnxscript` (torch's ONNX exporter) checked too (``physnn[onnx]``)."""
    module = _require("onnx")
    _require("onnxscript")
    return module


def dask() -> ModuleType:
    """:mod:`dask`, with :mod:`dask_awkward` (which ``uproot.dask`` builds on) checked too (``physnn[dask]``)."""
    module = _require("dask")
    _require("dask_awkward")
    return module


def skhep_testdata() -> ModuleType:
    """:mod:`skhep_testdata`: the scikit-hep-testdata files named ``skhep_testdata:NAME`` (``physnn[testdata]``)."""
    return _require("skhep_testdata")
