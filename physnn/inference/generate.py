"""``physnn generate``: fast-simulated showers from a trained GAN, written like the simulator's.

The output tree has the training data's tree name and branch names (for the
demo: ``showers`` with ``image``, ``energy``, ``pdgid``, ``label``, ``x0``,
``y0``), so an analysis runs unchanged on simulated or generated showers.
Events are made in chunks (bounded memory); conditions not fixed by the user
are drawn like the training showers', or read per event from a ROOT file
(:mod:`physnn.inference.conditions`: one shower per entry, in its order). A
background thread writes chunk *i* while chunk *i + 1* is generated.

Sample production runs many jobs: job *K* of seed *S* draws from the random
stream ``numpy.random.SeedSequence(S, spawn_key=(K,))`` (the *K*-th child of
the seed's sequence), split again into one stream per chunk, and seeds a
torch ``Generator`` for the network's noise from it. The same ``(S, K)`` gives
the same file (on the same device); different jobs give independent showers.
The file's UUID, which the training splits hash (:mod:`physnn.data.split`),
is derived from everything that determines its showers: the run's weights,
the seed, the job index, the events and the conditions (and the conditions
file's identity), so files of different jobs never share an identity.

The file carries ``physnn_meta`` (JSON): the run, the seed, the job index,
the conditions asked for and the timing (``showers_per_s`` with ROOT writing,
``forward_showers_per_s`` for the network alone), which ``physnn compare``
reports.
"""

from __future__ import annotations

import hashlib
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
from physnn.inference.conditions import FileConditions, read_conditions
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
    notes
        What to know about the showers (conditions outside the training range).
    """

    path: Path
    tree: str
    events: int
    seconds: float
    forward_seconds: float
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

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


def job_stream(seed: int, job_index: int) -> np.random.SeedSequence:
    """The random stream of job ``job_index`` of ``seed``: the ``job_index``-th child of ``SeedSequence(seed)``.

    Examples
    --------
    >>> job_stream(7, 2).spawn_key == np.random.SeedSequence(7).spawn(3)[2].spawn_key
    True
    """
    return np.random.SeedSequence(seed, spawn_key=(job_index,))


def _chunks(loaded: LoadedRun, events: int, fixed: Mapping[str, Any], classes: Sequence[Any] | None,
            stream: np.random.SeedSequence, given: FileConditions | None, batch_size: int, chunk_size: int,
            timer: dict[str, float]) -> Iterator[dict[str, np.ndarray]]:
    """Generated chunks in the simulator's layout; ``timer["forward"]`` accumulates the network's time.
    ``given``: the conditions of every event (read from a file), else they are drawn."""
    task, model, device = loaded.task, loaded.model, loaded.device
    layout = task.layout  # type: ignore[attr-defined]
    n_chunks = -(-events // chunk_size)
    for i, chunk_seed in enumerate(stream.spawn(n_chunks)):
        n = min(chunk_size, events - i * chunk_size)
        rng = np.random.default_rng(chunk_seed)
        if given is not None:
            raw = given.chunk(i * chunk_size, i * chunk_size + n)
        else:
            raw = task.sample_conditions(n, rng, fixed=fixed, classes=None if classes is None else list(classes))  # type: ignore[attr-defined]
        # the chunk's latents and readout noise from its own 128-bit stream, drawn for the whole chunk: no 32-bit
        # torch seed that two chunks could share, and the same showers whatever the batch size
        z_all = torch.from_numpy(rng.standard_normal((n, model.latent_dim), dtype=np.float32))
        shape = task.readout_shape(model)  # type: ignore[attr-defined]
        draws = None if shape is None else torch.from_numpy(rng.standard_normal((n, *shape), dtype=np.float32))
        t0 = time.perf_counter()
        cond = task.conditions_tensor(raw, device)  # type: ignore[attr-defined]
        incident = task.incident_of(raw, device)  # type: ignore[attr-defined]
        images = np.empty((n, *_image_shape(task)), dtype=np.float32)
        with torch.inference_mode():
            for lo in range(0, n, batch_size):
                hi = min(lo + batch_size, n)
                batch_draws = None if draws is None else draws[lo:hi].to(device)
                x = task.to_phys(task.generate(model, z_all[lo:hi].to(device), cond[lo:hi],  # type: ignore[attr-defined]
                                                incident[lo:hi], readout_draws=batch_draws))
                images[lo:hi] = x.cpu().numpy()
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


def _identity(meta: dict[str, Any], events: int, weights: str, given: FileConditions | None) -> str:
    """What determines the generated showers (not the time, paths or library versions): the file's identity.
    ``weights``: a hash of the networks (two trainings of one config differ); ``given``: the conditions file."""
    keys = ("config_hash", "seed", "job_index", "epoch", "energy", "spectrum", "classes", "conditions")
    return json.dumps({"command": "physnn generate", "events": events, "weights": weights,
                       "conditions_from": None if given is None else given.identity,
                       **{k: meta.get(k) for k in keys}}, sort_keys=True, default=str)


def _weights_hash(loaded: LoadedRun) -> str:
    """``sha256:`` and 16 hex digits of the networks' parameters and buffers (names and values)."""
    digest = hashlib.sha256()
    for model in loaded.models:
        for name, value in model.state_dict().items():
            digest.update(name.encode())
            digest.update(value.detach().cpu().flatten().view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:16]


def _check_job(events: int | None, seed: int, job_index: int, batch_size: int, chunk_size: int) -> None:
    if events is not None and events <= 0:
        msg = f"--events must be positive, got {events}"
        raise ConfigError(msg)
    if seed < 0 or job_index < 0:
        msg = f"--seed {seed} --job-index {job_index}: both must be non-negative integers"
        raise ConfigError(msg)
    if batch_size <= 0 or chunk_size <= 0:
        msg = "generate: batch_size and chunk_size must be positive"
        raise ConfigError(msg)


def _given_conditions(loaded: LoadedRun, events: int | None, path: str | os.PathLike, tree: str | None,
                      asked: Mapping[str, Any]) -> tuple[FileConditions, int]:
    """The conditions file's conditions and the number of events (its entries); options that would fix
    conditions too, or an ``events`` other than its entries, are refused."""
    clash = [k for k, v in asked.items() if v]
    if clash:
        msg = f"--conditions {os.fspath(path)}: the conditions come from the file, not to be combined with {clash[0]}"
        raise ConfigError(msg)
    given = read_conditions(path, tree, loaded.task)
    if events is not None and events != given.entries:
        msg = (f"--events {events}: {given.path}:{given.tree} has {given.entries} entries and one shower is "
               "generated per entry (leave --events out)")
        raise ConfigError(msg)
    return given, given.entries


def generate(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    events: int | None = None,
    energy: Range | None = None,
    spectrum: str = "uniform",
    classes: Sequence[Any] | None = None,
    conditions: Mapping[str, Range] | None = None,
    seed: int = 0,
    job_index: int = 0,
    conditions_file: str | os.PathLike | None = None,
    conditions_tree: str | None = None,
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
        Number of showers; with ``conditions_file``, None (or the file's number of entries).
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
        The production's seed (a non-negative integer).
    job_index
        The job's index among the production's jobs (0, 1, ...): its random stream is :func:`job_stream`
        of ``(seed, job_index)``, so the same pair gives the same file (on the same device), different jobs
        give independent showers, and every pair gives the file another identity (UUID). Both are recorded
        in ``physnn_meta``.
    conditions_file, conditions_tree
        A ROOT file (and its tree; None: its only tree) of conditions per event: the run's condition
        scalars (e.g. ``energy``, ``x0``, ``y0``) and its label (e.g. ``pdgid``), named as in the training
        data. One shower is generated per entry, in the file's order, with that entry's conditions; then
        ``energy``, ``classes`` and ``conditions`` must be left out.
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

    Job 3 of a production, the conditions of a physics sample's events read from ``sample.root:events``:

    >>> physnn.generate("runs/fastsim", "job3.root", seed=42, job_index=3,
    ...                 conditions_file="sample.root", conditions_tree="events")  # doctest: +SKIP
    """
    _check_job(events, seed, job_index, batch_size, chunk_size)
    check_output(out, overwrite=overwrite)
    loaded = load_run(run, device=device)
    loaded.task.check_command("generate", loaded.checkpoint.parent)
    given = None
    if conditions_file is not None:
        given, events = _given_conditions(loaded, events, conditions_file, conditions_tree,
                                          {"--energy": energy is not None, "--pdgid": classes is not None,
                                           "--condition": bool(conditions),
                                           "--spectrum": spectrum != "uniform"})
    elif events is None:
        msg = "generate: give the number of showers (--events) or a conditions file (--conditions)"
        raise ConfigError(msg)
    fixed = _fixed_conditions(loaded, energy, spectrum, conditions)
    task = loaded.task
    # check the classes before starting the writer
    task.sample_conditions(1, np.random.default_rng(0), fixed=fixed, classes=None if classes is None else list(classes))  # type: ignore[attr-defined]
    tree = task.layout.get("tree") or "showers"  # type: ignore[attr-defined]
    timer = {"forward": 0.0}
    meta = provenance("physnn generate", config=loaded.config, seed=seed, inputs=[loaded.checkpoint],
                      generator="physnn generate", job_index=job_index, run=os.fspath(loaded.checkpoint),
                      epoch=loaded.epoch,
                      device=str(loaded.device), energy=energy, spectrum=spectrum,
                      classes=None if classes is None else list(classes), conditions=dict(conditions or {}),
                      model=loaded.config.model.name, training_files=list(loaded.config.data.files))
    if given is not None:
        meta["conditions_file"] = {"path": given.path, "tree": given.tree, "identity": given.identity}
        meta["notes"] = given.outside(task.quantiles)  # type: ignore[attr-defined]
    unit = loaded.config.data.image_unit()
    if unit:
        meta["units"] = {"image": unit}
    meta["readout"] = task.cells.readout(loaded.model.generator.declared_noise(task.cells))  # type: ignore[attr-defined,union-attr]
    start = time.perf_counter()

    def finish() -> dict[str, Any]:
        seconds = time.perf_counter() - start
        meta.update(events=events, seconds=round(seconds, 4), forward_seconds=round(timer["forward"], 4),
                    showers_per_s=events / max(seconds, 1e-12),
                    forward_showers_per_s=events / max(timer["forward"], 1e-12))
        return meta

    chunks = prefetch(_chunks(loaded, events, fixed, classes, job_stream(seed, job_index), given, batch_size,
                              chunk_size, timer),
                      name="physnn-generate")
    sink = Sink(out, tree, collect=False, overwrite=overwrite, compression=compression, meta=finish,
                title=f"physnn generate: {loaded.config.model.name} from {loaded.checkpoint}", on_chunk=progress,
                identity=_identity(meta, events, _weights_hash(loaded), given))
    n, _ = drain(chunks, sink)
    return GenerationResult(Path(out), tree, n, float(meta["seconds"]), float(meta["forward_seconds"]), meta,
                            list(meta.get("notes", [])))
