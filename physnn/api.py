"""The public Python API: everything the ``physnn`` command does, one import away.

Examples
--------
>>> import physnn
>>> physnn.simulate("showers", "showers.root", events=1000, seed=1)  # doctest: +SKIP
>>> data = physnn.load("configs/data/showers.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from physnn.config import load_config
from physnn.data.dataset import DataBundle, TensorData, fit, load, stream
from physnn.data.transform import Transform
from physnn.errors import ConfigError
from physnn.evaluation.denoising import evaluate_denoising
from physnn.evaluation.fastsim import ComparisonResult, compare, evaluate_generator
from physnn.evaluation.judge import judge as evaluate
from physnn.evaluation.report import EvaluationResult
from physnn.evaluation.side_by_side import SideBySide, side_by_side
from physnn.inference.autoencode import AutoencoderResult, denoise, encode
from physnn.inference.export import ExportResult, export
from physnn.inference.generate import GenerationResult, generate
from physnn.inference.loading import LoadedRun, load_run
from physnn.inference.predict import PredictionResult, predict
from physnn.io.inspect import TreeInfo, inspect_file
from physnn.io.metadata import config_hash, provenance, read_metadata
from physnn.io.read import read
from physnn.io.scan import BranchScan, scan
from physnn.io.write import write_tree
from physnn.models.registry import ModelConfig, ModelEntry, ModelIO, build_model
from physnn.models.registry import available as _available
from physnn.prefetch import prefetch
from physnn.simulation import EventConfig, ShowerConfig, iter_events, iter_showers
from physnn.training.config import RunConfig, load_run_config
from physnn.training.run import train as _train
from physnn.training.trainer import TrainResult

__all__ = ["AutoencoderResult", "BranchScan", "ComparisonResult", "DataBundle", "EvaluationResult", "ExportResult",
           "GenerationResult", "LoadedRun", "ModelConfig", "ModelIO", "PredictionResult", "RunConfig", "SideBySide",
           "SimulationResult", "TensorData", "TrainResult", "Transform", "build_model", "compare", "denoise", "encode",
           "evaluate", "evaluate_denoising", "evaluate_generator", "export", "fit", "generate", "inspect",
           "list_models", "load", "load_run", "load_run_config", "predict", "read", "read_metadata", "scan",
           "side_by_side", "simulate", "simulator_floor", "stream", "train"]


@functools.wraps(_train)
def train(config: Any = None, *, image_format: str = "png", **kwargs: Any) -> TrainResult:
    """:func:`physnn.training.run.train` with the loss curves (and a GAN's samples) drawn into ``out/plots`` as
    ``image_format`` files: ``png``, or vector ``svg`` or ``pdf``."""
    if "plots" not in kwargs:
        from physnn.evaluation.plots import training_plots

        kwargs["plots"] = training_plots(image_format)
    return _train(config, **kwargs)


#: Tree names written by the simulator.
TREE_NAMES = {"showers": "showers", "events": "events"}


@dataclass
class SimulationResult:
    """What :func:`simulate` wrote and how fast."""

    path: Path
    tree: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        """Events per second, ROOT writing included."""
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def simulate(
    kind: Literal["showers", "events"],
    out: str | os.PathLike,
    *,
    events: int,
    seed: int = 0,
    config: ShowerConfig | EventConfig | Mapping[str, Any] | str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
    compression: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Simulate events with the built-in detector simulator and write a ROOT file.

    Parameters
    ----------
    kind
        ``"showers"`` (calorimeter images, TTree ``showers``) or ``"events"``
        (particle lists, TTree ``events``).
    out
        Output ROOT file; written atomically.
    events
        Number of events.
    seed
        Random seed; the same seed gives the same file.
    config
        :class:`~physnn.simulation.ShowerConfig` / :class:`~physnn.simulation.EventConfig`,
        a dict or a YAML file of their fields.
    overrides
        ``["energy_min=10"]``-style overrides of ``config``.
    overwrite
        Replace an existing output.
    compression
        ``"zlib:1"`` (default), ``"lz4"``, ``"zstd:5"``, ``"lzma"`` or ``"none"``.
    progress
        Called with the number of events after each written chunk.
    """
    if kind not in TREE_NAMES:
        msg = f"simulate: unknown kind {kind!r}, expected 'showers' or 'events'"
        raise ConfigError(msg)
    model = ShowerConfig if kind == "showers" else EventConfig
    cfg = load_config(config if config is not None else {}, model, overrides)
    if events <= 0:
        msg = f"--events must be positive, got {events}"
        raise ConfigError(msg)
    start = time.perf_counter()
    if kind == "showers":
        assert isinstance(cfg, ShowerConfig)
        chunks = iter_showers(events, cfg, seed=seed)
        title = f"physnn showers: layers_x0={cfg.layers_x0} cells={cfg.height}x{cfg.width} GeV/cm"
    else:
        assert isinstance(cfg, EventConfig)
        chunks = iter_events(events, cfg, seed=seed)
        title = f"physnn events: mass {cfg.mass_min}-{cfg.mass_max} GeV"

    def meta() -> dict[str, Any]:  # with the timing that physnn compare reports next to a fast simulation's
        seconds = time.perf_counter() - start
        meta = provenance(f"physnn simulate {kind}", config=cfg, seed=seed, inputs=[],
                          generator=f"physnn simulate {kind}", events=events, seconds=round(seconds, 4))
        meta["showers_per_s" if kind == "showers" else "events_per_s"] = events / seconds
        meta["config"] = cfg.model_dump(mode="json")
        meta["units"] = {"image": "GeV", "energy": "GeV"} if kind == "showers" else {"momentum": "GeV", "mass": "GeV"}
        if isinstance(cfg, ShowerConfig):  # the electronics, for the GAN, the denoiser and evaluation to read
            meta["readout"] = cfg.readout()
        return meta

    # the next chunk is simulated while this one is compressed into the file (both release the GIL)
    n = write_tree(out, TREE_NAMES[kind], prefetch(chunks, name="physnn-simulate"), overwrite=overwrite,
                   compression=compression, title=title, on_chunk=progress, meta=meta,
                   identity=f"physnn simulate {kind} {config_hash(cfg)} seed={seed} events={events}")
    return SimulationResult(Path(out), TREE_NAMES[kind], n, time.perf_counter() - start)


def simulator_floor(out: str | os.PathLike | None = None, *, events: int = 10_000, seed: int = 1000,
                    config: ShowerConfig | Mapping[str, Any] | str | os.PathLike | None = None,
                    overrides: Sequence[str] = (), **compare_options: Any) -> ComparisonResult:
    """The floor of :func:`compare`: two independent simulator samples judged as a fast simulation is.

    Even two full simulations are not told apart at exactly AUC 0.5 (pions, with their large fluctuations, sit
    above it in the CaloChallenge); a candidate is as good as the simulation where its figures reach these. The
    samples (``events`` showers each, seeds ``seed`` and ``seed + 1``, ``config`` and ``overrides`` as
    :func:`simulate`) live in a temporary folder; ``result.classifier[kind]["per_type"]`` holds each particle
    type's floor.

    Parameters
    ----------
    out
        Report folder, as :func:`compare`'s (None: no files).
    compare_options
        Passed to :func:`compare` (``classifier``, ``max_events``, ``classifier_options``, ``device``, ``plots``,
        ``overwrite`` ...).

    Examples
    --------
    >>> floor = physnn.simulator_floor(events=10_000, classifier_options={"width": 256})  # doctest: +SKIP
    >>> {k: v["auc"] for k, v in floor.classifier["low"]["per_type"].items()}  # doctest: +SKIP
    {'e-': 0.50, 'gamma': 0.51, 'pi+': 0.52}
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="physnn-floor-") as tmp:
        a, b = Path(tmp) / "simulation_a.root", Path(tmp) / "simulation_b.root"
        for path, s in ((a, seed), (b, seed + 1)):
            simulate("showers", path, events=events, seed=s, config=config, overrides=overrides)
        return compare(a, b, out=out, **compare_options)


def inspect(files: str | os.PathLike | Sequence[str], *, probe: int = 10000) -> list[TreeInfo]:
    """Describe the trees and branches of ROOT files (see :func:`physnn.io.inspect.inspect_file`)."""
    spec = os.fspath(files) if isinstance(files, (str, os.PathLike)) else [os.fspath(f) for f in files]
    return inspect_file(spec, probe=probe)


def list_models() -> dict[str, ModelEntry]:
    """The model registry: name -> entry (``params`` is the pydantic parameter class)."""
    return _available()
