"""``physnn generate``: fast-simulated showers from a trained GAN, written like the simulator's.

The output tree has the training data's tree name and branch names (for the
demo: ``showers`` with ``image``, ``energy``, ``pdgid``, ``label``, ``x0``,
``y0``), so an analysis runs unchanged on simulated or generated showers.
Events are made in chunks (bounded memory) with a seed per chunk, so the same
seed gives the same file; conditions not fixed by the user are drawn like the
training showers'. A background thread writes chunk *i* while chunk *i + 1*
is generated. The file carries ``physnn_meta`` (JSON): the run, the seed, the
conditions asked for and the timing (``showers_per_s`` with ROOT writing,
``forward_showers_per_s`` for the network alone), which ``physnn compare``
reports.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physnn.errors import ConfigError
from physnn.inference.loading import LoadedRun, load_run
from physnn.inference.pipeline import Sink, drain
from physnn.io.metadata import provenance
from physnn.io.write import check_output
from physnn.prefetch import prefetch

#: Events per chunk written to the file.
CHUNK = 10_000

Range = float | tuple[float, float]


@dataclass
class GenerationResult:
    """What :func:`generate` wrote and how fast.

    Attributes
    ----------
    path, tree
        The output file and tree.
    events
        Showers written.
    seconds
        Wall time of generation and ROOT writing (model loading excluded).
    forward_seconds
        Time spent in the generator network (and zero suppression).
    meta
        The ``physnn_meta`` written into the file.
    """

    path: Path
    tree: str
    events: int
    seconds: float
    forward_seconds: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Showers per second, ROOT writing included."""
        return self.events / self.seconds if self.seconds > 0 else float("inf")

    @property
    def forward_rate(self) -> float:
        """Showers per second of the generator network alone."""
        return self.events / self.forward_seconds if self.forward_seconds > 0 else float("inf")


def _spec(value: Range | None, option: str) -> Any:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    lo, hi = (float(v) for v in value)
    if hi < lo:
        msg = f"{option} {lo}:{hi}: the maximum is below the minimum"
        raise ConfigError(msg)
    return (lo, hi)


def _fixed_conditions(loaded: LoadedRun, energy: Range | None, spectrum: str,
                      conditions: Mapping[str, Range] | None) -> dict[str, Any]:
    task = loaded.task
    fixed = {k: _spec(v, f"--condition {k}") for k, v in (conditions or {}).items()}
    if spectrum not in ("uniform", "log-uniform"):
        msg = f"--spectrum {spectrum!r}: expected uniform or log-uniform"
        raise ConfigError(msg)
    if energy is not None:
        if task.incident is None:  # type: ignore[attr-defined]
            msg = f"--energy: this run is not conditioned on an incident energy (conditions: {task.scalars})"  # type: ignore[attr-defined]
            raise ConfigError(msg)
        spec = _spec(energy, "--energy")
        if (spec if isinstance(spec, float) else spec[0]) <= 0:
            msg = f"--energy {energy}: incident energies must be positive"
            raise ConfigError(msg)
        if isinstance(spec, tuple) and spectrum == "log-uniform":
            spec = (*spec, "log")
        fixed[task.scalars[task.incident]] = spec  # type: ignore[attr-defined]
    return fixed


def _chunks(loaded: LoadedRun, events: int, fixed: Mapping[str, Any], classes: Sequence[Any] | None, seed: int,
            batch_size: int, chunk_size: int, timer: dict[str, float]) -> Iterator[dict[str, np.ndarray]]:
    """Generated chunks in the simulator's layout; ``timer["forward"]`` accumulates the network's time."""
    task, model, device = loaded.task, loaded.model, loaded.device
    layout = task.layout  # type: ignore[attr-defined]
    n_chunks = -(-events // chunk_size)
    for i, chunk_seed in enumerate(np.random.SeedSequence(seed).spawn(n_chunks)):
        n = min(chunk_size, events - i * chunk_size)
        rng = np.random.default_rng(chunk_seed)
        raw = task.sample_conditions(n, rng, fixed=fixed, classes=None if classes is None else list(classes))  # type: ignore[attr-defined]
        torch_gen = torch.Generator(device=device).manual_seed(int(rng.integers(2**62)))
        t0 = time.perf_counter()
        cond = task.conditions_tensor(raw, device)  # type: ignore[attr-defined]
        incident = task.incident_of(raw, device)  # type: ignore[attr-defined]
        images = np.empty((n, *_image_shape(task)), dtype=np.float32)
        with torch.inference_mode():
            for lo in range(0, n, batch_size):
                c = cond[lo:lo + batch_size]
                z = torch.randn(len(c), model.latent_dim, device=device, generator=torch_gen)
                x = task.to_phys(task.generate(model, z, c, incident[lo:lo + batch_size],  # type: ignore[attr-defined]
                                                generator=torch_gen))
                images[lo:lo + len(c)] = x.cpu().numpy()
        timer["forward"] += time.perf_counter() - t0
        labels: dict[str, np.ndarray] = {}
        if task.label is not None:  # type: ignore[attr-defined]
            index = np.asarray(raw["class"], dtype=np.int32)
            values = np.asarray(task.classes)[index]  # type: ignore[attr-defined]
            if values.dtype.kind in "iu":
                labels[layout["label"]] = values.astype(np.int32)
            elif values.dtype.kind == "f":
                labels[layout["label"]] = values.astype(np.float32)
            if layout.get("class_index") or layout["label"] not in labels:
                labels[layout.get("class_index") or "label"] = index
        # the simulator's order: image, the first scalar (energy), the particle type, the other scalars
        names = list(task.scalars)  # type: ignore[attr-defined]
        out = {layout["image"]: images, **{k: raw[k] for k in names[:1]}, **labels, **{k: raw[k] for k in names[1:]}}
        yield out


def _image_shape(task: Any) -> tuple[int, ...]:
    return tuple(task.shape[1:]) if task.squeeze else tuple(task.shape)


def _identity(meta: dict[str, Any], events: int) -> str:
    """What determines the generated showers (not the time, paths or library versions): the file's identity."""
    keys = ("config_hash", "seed", "epoch", "energy", "spectrum", "classes", "conditions")
    return json.dumps({"command": "physnn generate", "events": events, **{k: meta.get(k) for k in keys}},
                      sort_keys=True, default=str)


def generate(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    events: int,
    energy: Range | None = None,
    spectrum: str = "uniform",
    classes: Sequence[Any] | None = None,
    conditions: Mapping[str, Range] | None = None,
    seed: int = 0,
    batch_size: int = 2048,
    chunk_size: int = CHUNK,
    device: str = "auto",
    overwrite: bool = False,
    compression: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Generate showers with a trained GAN run and write them to ROOT in the training data's layout.

    Parameters
    ----------
    run
        A GAN run folder or checkpoint (``task.kind: generation``).
    out
        The output ROOT file (written atomically).
    events
        Number of showers.
    energy
        Incident energy: one value, or a ``(low, high)`` range sampled per
        ``spectrum``; None: like the training showers.
    spectrum
        ``uniform`` or ``log-uniform`` sampling of an energy range.
    classes
        Label values to generate (e.g. ``[11]`` for electrons when the run is
        conditioned on ``pdgid``), mixed uniformly; None: the training mix.
    conditions
        Other condition scalars fixed to a value or a ``(low, high)`` range,
        e.g. ``{"x0": 0.0}``; the others are drawn like the training showers'.
    seed
        The same seed gives the same file (on the same device).
    batch_size, chunk_size
        Showers per network call and per written chunk (memory bound).
    device
        ``auto``, ``cpu``, ``cuda``...
    overwrite, compression
        As for :func:`physnn.simulate`.
    progress
        Called with the number of showers after each written chunk.

    Examples
    --------
    >>> res = physnn.generate("runs/fastsim", "out.root", events=10000, energy=(1, 100), classes=[11])  # doctest: +SKIP
    >>> f"{res.rate:,.0f} showers/s"  # doctest: +SKIP
    """
    if events <= 0:
        msg = f"--events must be positive, got {events}"
        raise ConfigError(msg)
    if batch_size <= 0 or chunk_size <= 0:
        msg = "generate: batch_size and chunk_size must be positive"
        raise ConfigError(msg)
    check_output(out, overwrite=overwrite)
    loaded = load_run(run, device=device)
    loaded.task.check_command("generate", loaded.checkpoint.parent)
    fixed = _fixed_conditions(loaded, energy, spectrum, conditions)
    task = loaded.task
    # check the classes before starting the writer
    task.sample_conditions(1, np.random.default_rng(0), fixed=fixed, classes=None if classes is None else list(classes))  # type: ignore[attr-defined]
    tree = task.layout.get("tree") or "showers"  # type: ignore[attr-defined]
    timer = {"forward": 0.0}
    meta = provenance("physnn generate", config=loaded.config, seed=seed, inputs=[loaded.checkpoint],
                      generator="physnn generate", run=os.fspath(loaded.checkpoint), epoch=loaded.epoch,
                      device=str(loaded.device), energy=energy, spectrum=spectrum,
                      classes=None if classes is None else list(classes), conditions=dict(conditions or {}),
                      model=loaded.config.model.name, training_files=list(loaded.config.data.files))
    unit = loaded.config.data.image_unit()
    if unit:
        meta["units"] = {"image": unit}
    meta["readout"] = task.cells.readout()  # type: ignore[attr-defined]
    start = time.perf_counter()

    def finish() -> dict[str, Any]:
        seconds = time.perf_counter() - start
        meta.update(events=events, seconds=round(seconds, 4), forward_seconds=round(timer["forward"], 4),
                    showers_per_s=events / max(seconds, 1e-12),
                    forward_showers_per_s=events / max(timer["forward"], 1e-12))
        return meta

    chunks = prefetch(_chunks(loaded, events, fixed, classes, seed, batch_size, chunk_size, timer),
                      name="physnn-generate")
    sink = Sink(out, tree, collect=False, overwrite=overwrite, compression=compression, meta=finish,
                title=f"physnn generate: {loaded.config.model.name} from {loaded.checkpoint}", on_chunk=progress,
                identity=_identity(meta, events))
    n, _ = drain(chunks, sink)
    return GenerationResult(Path(out), tree, n, float(meta["seconds"]), float(meta["forward_seconds"]), meta)
