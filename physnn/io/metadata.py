"""Provenance metadata written into every ROOT file that physnn makes.

Each output file (``simulate``, ``predict``, ``denoise``, ``encode``,
``generate``) carries a ``physnn_meta`` object next to its tree: a
``TObjString`` holding one JSON document with at least

``physnn``
    the physnn version that wrote the file;
``command``
    what wrote it, e.g. ``"physnn predict"``;
``created``
    UTC time of writing (ISO 8601);
``config_hash``
    ``sha256:`` + 16 hex digits of the canonical JSON of the config that
    determined the output (the run config of the model, or the simulator
    config); :func:`config_hash` of ``run/config.yaml`` gives the same value;
``seed``
    the random seed of the job;
``inputs``
    the input file names (data files and checkpoint);
``versions``
    python, torch, uproot, awkward and numpy versions.

``units``
    (where known) the unit of stored quantities, e.g. ``{"image": "GeV"}``
    for the cell values; the plots read it (see :func:`unit_of`).

Commands add their own keys (timings, MC-dropout samples, ...). In ROOT::

    TFile f("predictions.root");
    f.Get<TObjString>("physnn_meta")->GetString().Data();

and in Python ``physnn.read_metadata("predictions.root")``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
from collections.abc import Mapping, Sequence
from typing import Any

from physnn._version import __version__

#: Name of the metadata object in output files.
META = "physnn_meta"
#: Keys every ``physnn_meta`` has.
REQUIRED = ("physnn", "command", "created", "config_hash", "seed", "inputs", "versions")


def _canonical(config: Any) -> Any:
    if hasattr(config, "model_dump"):
        return config.model_dump(mode="json")
    return json.loads(json.dumps(config, default=str))


def config_hash(config: Any) -> str:
    """A short stable hash of a config: ``"sha256:" + 16 hex digits``.

    Parameters
    ----------
    config
        A pydantic config or its plain dict (``model_dump(mode="json")``, or
        the YAML of ``run/config.yaml`` loaded back): both give the same hash.
    """
    text = json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    """Versions of python and the libraries that shape physnn's numbers."""
    import awkward
    import numpy
    import torch
    import uproot

    return {"python": platform.python_version(), "torch": torch.__version__, "uproot": uproot.__version__,
            "awkward": awkward.__version__, "numpy": numpy.__version__}


def provenance(command: str, *, config: Any, seed: int | None, inputs: Sequence[str | os.PathLike],
               **extra: Any) -> dict[str, Any]:
    """The ``physnn_meta`` document of an output file.

    Parameters
    ----------
    command
        ``"physnn predict"``, ``"physnn simulate showers"``, ...
    config
        The config that determined the output (hashed, see :func:`config_hash`).
    seed
        The job's random seed.
    inputs
        Input files: data and checkpoints.
    **extra
        Command-specific keys.
    """
    meta: dict[str, Any] = {
        "physnn": __version__, "command": command,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config_hash": config_hash(config), "seed": seed, "inputs": [os.fspath(p) for p in inputs],
        "versions": versions()}
    meta.update(extra)
    return meta


def check_metadata(meta: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` when a metadata document lacks a required key (a physnn bug, not a user error)."""
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        msg = f"physnn_meta lacks {', '.join(missing)}"
        raise ValueError(msg)


def unit_of(what: str, *metas: Mapping[str, Any]) -> str | None:
    """The unit the first of ``metas`` that declares one gives ``what`` (``"image"``: the cell values).

    Examples
    --------
    >>> unit_of("image", {}, {"units": {"image": "GeV"}})
    'GeV'
    """
    for meta in metas:
        unit = (meta.get("units") or {}).get(what)
        if unit:
            return str(unit)
    return None


def declared_image_unit(unit: str | None, files: Sequence[str | os.PathLike]) -> str | None:
    """``unit`` (a data config's ``images.unit``) or else the one the first file's ``physnn_meta`` declares."""
    if unit or not files:
        return unit
    try:
        return unit_of("image", read_metadata(files[0]))
    except Exception:  # a unit is a label; an unreadable file is reported where it is read
        return None


def readout_of(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The readout a ``physnn_meta`` document declares (a mapping with a numeric ``threshold``), else None.

    Examples
    --------
    >>> readout_of({"readout": {"threshold": 0.03, "suppression": "symmetric"}})["threshold"]
    0.03
    >>> readout_of({"readout": {"threshold": None}}) is None
    True
    """
    readout = meta.get("readout")
    if not isinstance(readout, Mapping) or not isinstance(readout.get("threshold"), (int, float)):
        return None
    return dict(readout)


def declared_readout(files: Sequence[str | os.PathLike]) -> dict[str, Any] | None:
    """The readout the first of ``files`` declares in ``physnn_meta["readout"]`` (noise σ per cell, the
    zero-suppression threshold, ``suppression``: ``symmetric`` or ``positive``), as physnn's simulator
    writes it; None when it declares none.

    Examples
    --------
    >>> declared_readout(["showers.root"])  # doctest: +SKIP
    {'noise': 0.01, 'threshold': 0.03, 'threshold_sigma': 3.0, 'suppression': 'symmetric'}
    """
    if not files:
        return None
    try:
        meta = read_metadata(files[0])
    except Exception:  # metadata is a hint; an unreadable file is reported where it is read
        return None
    return readout_of(meta)


def suppression_text(readout: Mapping[str, Any]) -> str:
    """Which cells a readout keeps: ``|E| > 0.03`` (symmetric) or ``E > 0.03`` (positive), in its units."""
    cut = "|E|" if readout.get("suppression") == "symmetric" else "E"
    return f"{cut} > {readout['threshold']:.3g}"


def readout_line(readout: Mapping[str, Any]) -> str:
    """A declared readout in words.

    Examples
    --------
    >>> readout_line({"noise": 0.01, "threshold": 0.03, "threshold_sigma": 3.0, "suppression": "symmetric"})
    'readout: noise 0.01 GeV per cell; cells with |E| > 0.03 GeV (3σ) kept, noise of both signs'
    """
    noise = readout.get("noise")
    sigma = readout.get("threshold_sigma")
    symmetric = readout.get("suppression") == "symmetric"
    cut = f"cells with {suppression_text(readout)} GeV"
    return (f"readout: {f'noise {noise:.3g} GeV per cell' if noise else 'noise not declared'}; {cut}"
            f"{f' ({sigma:.3g}σ)' if sigma else ''} kept{', noise of both signs' if symmetric else ''}")


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``physnn_meta`` of a ROOT file as a dict (empty when absent or not JSON).

    Examples
    --------
    >>> physnn.read_metadata("predictions.root")["config_hash"]  # doctest: +SKIP
    'sha256:3f1c0a9b2d4e5f60'
    """
    from physnn.io.files import open_root

    handle = open_root(path)
    if META not in handle:
        return {}
    try:
        meta = json.loads(str(handle[META]))
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}
