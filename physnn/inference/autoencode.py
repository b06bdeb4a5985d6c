"""Autoencoder outputs written to ROOT: denoised images and codes.

- :func:`denoise` writes a file with the **same layout as the input**: the
  same tree name, every branch copied in the input's order with its counter
  (:mod:`physnn.io.layout`), and the image branches replaced in place by
  their denoised version with the same names, shapes and types, so that an
  analysis runs unchanged on it. What uproot cannot write is skipped, said
  before any event is read. With MC dropout, ``<branch>_std`` holds the
  per-cell spread of T reconstructions (an uncertainty map); with
  ``add_noise`` the run's training noise is applied first (seeded) and the
  noisy image is kept as ``<branch>_noisy``, for studies on clean simulation.
- :func:`encode` writes the code of every event (the feature extractor's
  output) as branches ``code_0 ... code_{D-1}``, with ``entry``, ``split`` and
  the observer branches, and optionally a k-means ``cluster`` id
  (scikit-learn) fitted on the standardised codes.

Both keep every entry of the input in order (no selection), and write
atomically: a failure leaves nothing at the output path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physnn.data.convert import is_jagged
from physnn.data.dataset import Tagging, TensorData
from physnn.errors import ConfigError, DataError
from physnn.inference.loading import LoadedRun, load_run
from physnn.inference.outputs import truth_branches
from physnn.inference.pipeline import Sink, concat, domain_branches, domain_meta, drain, read_blocks, run_model
from physnn.inference.plan import plan_prediction
from physnn.io.files import expand_files, open_root, resolve_tree
from physnn.io.layout import Layout, as_written, plan_layout
from physnn.io.metadata import provenance
from physnn.io.write import check_output
from physnn.models.mc_dropout import check_samples, seeded
from physnn.models.reconstruction import ReconstructionTask

CODES_TREE = "codes"


@dataclass
class AutoencoderResult:
    """What :func:`denoise` or :func:`encode` wrote.

    Attributes
    ----------
    path
        The ROOT file (None when only arrays were asked for).
    events
        Number of events.
    seconds
        Wall time, reading and writing included.
    arrays
        The written branches as arrays (when ``collect=True``).
    meta
        The metadata stored next to the tree (``physnn_meta``).
    """

    path: Path | None
    events: int
    seconds: float
    arrays: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds > 0 else float("inf")

    @property
    def left_out(self) -> dict[str, Any]:
        """The run's truth and observers the input lacks (:class:`~physnn.inference.plan.PredictionPlan`)."""
        return self.meta.get("left_out", {})

    @property
    def not_applied(self) -> dict[str, Any]:
        """The defines (and training selection) that read a branch the input lacks."""
        return self.meta.get("not_applied", {})

    @property
    def notes(self) -> list[str]:
        """One line each for what was left out and not applied (as the command line prints them)."""
        return self.meta.get("notes", [])


def _load(run: str | os.PathLike | LoadedRun, device: str) -> LoadedRun:
    return run if isinstance(run, LoadedRun) else load_run(run, device=device)


def reconstruction_task(loaded: LoadedRun, command: str) -> ReconstructionTask:
    """The run's task, which must be an image reconstruction; a one-line error otherwise."""
    task = loaded.task
    if not isinstance(task, ReconstructionTask) or task.key != "image":
        msg = (f"{command}: {loaded.checkpoint} is a {task.describe()} run; it needs an autoencoder "
               "trained with task.kind: reconstruction on images")
        raise ConfigError(msg)
    return task


def reconstruct(loaded: LoadedRun, image: torch.Tensor, *, mc_samples: int = 0,
                batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Denoised images (physical units) and, with MC dropout, their per-cell spread.

    Parameters
    ----------
    loaded
        An autoencoder run.
    image
        Input images in the model's space (as :func:`~physnn.data.dataset.finalize` gives them).
    mc_samples
        T passes with dropout on (0: one deterministic pass, no spread).
    batch_size
        Events per forward pass.
    """
    task = reconstruction_task(loaded, "reconstruct")
    if len(image) == 0:
        empty = torch.zeros((0, *task.shape))
        return empty, (empty if mc_samples > 0 else None)
    summary = run_model(loaded, TensorData({"image": image}), task.summarize, mc_samples=mc_samples,
                        batch_size=batch_size)
    return summary["reconstruction"], summary.get("reconstruction_std")


def _image_like(original: Any, values: np.ndarray) -> Any:
    """``values`` (N, ...) in the layout and dtype of the branch ``original``."""
    import awkward as ak

    n = len(values)
    if is_jagged(original):
        counts = ak.to_numpy(ak.num(original, axis=1))
        dtype = ak.to_numpy(ak.flatten(original[:1], axis=None)).dtype if n else np.float32
        return ak.unflatten(values.reshape(-1).astype(dtype), counts)
    ref = np.asarray(as_written(original))
    dtype = ref.dtype if ref.dtype.kind == "f" else np.float32
    return np.ascontiguousarray(values.reshape(n, *ref.shape[1:]).astype(dtype, copy=False))


def _split_channels(block: np.ndarray, branches: list[str], arrays: dict[str, Any]) -> dict[str, Any]:
    """Undo :func:`~physnn.data.convert.image_block`: one array per image branch, in its own layout."""
    if len(branches) == 1:
        return {branches[0]: _image_like(arrays[branches[0]], block)}
    return {name: _image_like(arrays[name], block[:, i]) for i, name in enumerate(branches)}


def _denoised_branches(loaded: LoadedRun, arrays: dict[str, Any], x: torch.Tensor, layout: Layout,
                       images: list[str], *, noise: torch.Generator | None, mc_samples: int,
                       batch_size: int) -> dict[str, Any]:
    """One chunk's output: the input's branches in order, the images replaced, then ``_noisy`` and ``_std``."""
    task = reconstruction_task(loaded, "denoise")
    extras: dict[str, Any] = {}
    if noise is not None:
        x = task.noisy(x, generator=noise)
        extras.update({f"{k}_noisy": v for k, v in _split_channels(task.to_phys(x).numpy(), images, arrays).items()})
    mean, std = reconstruct(loaded, x, mc_samples=mc_samples, batch_size=batch_size)
    clean = _split_channels(mean.numpy(), images, arrays)
    if std is not None:
        extras.update({f"{k}_std": v for k, v in _split_channels(std.numpy(), images, arrays).items()})
    branches = {name: clean[name] if name in clean else as_written(arrays[name]) for name in layout.branches}
    branches.update(extras)
    return branches


def _plan(cfg: Any, images: list[str]) -> tuple[str, Layout, dict[str, str]]:
    """The first input's tree name, its layout, and the counters of the output (``_std``/``_noisy`` share the
    image's)."""
    first = expand_files(cfg.files)[0]
    tree_name, obj = resolve_tree(open_root(first), first, cfg.tree)
    layout = plan_layout(obj, images)
    counters = dict(layout.counters)
    for name in images:
        if name in layout.counters:
            counters.update({f"{name}_noisy": layout.counters[name], f"{name}_std": layout.counters[name]})
    return tree_name, layout, counters


def denoise(
    run: str | os.PathLike | LoadedRun,
    files: str | os.PathLike | Sequence[str] | None = None,
    *,
    out: str | os.PathLike | None = None,
    tree: str | None = None,
    mc_samples: int = 0,
    add_noise: bool = False,
    seed: int = 0,
    batch_size: int = 256,
    device: str = "auto",
    step_size: str | int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    collect: bool | None = None,
    on_skipped: Callable[[dict[str, str]], None] | None = None,
    mapping: Mapping[str, str] | Sequence[str] | None = None,
) -> AutoencoderResult:
    """Write denoised images in the layout of the input file.

    The output has the input's branches in the input's order, the images
    replaced in place, then ``<image>_noisy`` and ``<image>_std``; jagged
    branches keep their counters and an RNTuple stays an RNTuple
    (:mod:`physnn.io.layout` says exactly what uproot writes). Branches
    uproot cannot write are skipped: decided from the first file's types
    before any event is read, passed to ``on_skipped`` and recorded as
    ``skipped_branches`` in ``physnn_meta``. The run's truth and observers the
    file lacks and the defines it cannot compute are recorded as ``left_out``,
    ``not_applied`` and ``notes`` (as for :func:`encode`).

    Parameters
    ----------
    run
        An autoencoder run folder, checkpoint or :class:`LoadedRun`.
    files
        Input ROOT files (default: the training files).
    out
        Output ROOT file: the input's tree name and branches, images denoised.
    tree
        Input tree (default: the training config's).
    mc_samples
        T > 0: MC dropout; the image is the mean of T reconstructions and
        ``<branch>_std`` the per-cell spread.
    add_noise
        Apply the run's training noise (seeded by ``seed``) before denoising
        and keep the noisy images as ``<branch>_noisy``.
    batch_size, device, step_size, overwrite, compression
        As for :func:`physnn.predict`.
    collect
        Return the branches as arrays (default: when no ``out`` is given).
    on_skipped
        Called with ``{branch: why}`` before the work when some branches
        cannot be copied.
    mapping
        ``{run's branch: file's branch}`` when the file names them otherwise
        (as :func:`physnn.predict`); the output keeps the file's layout.

    Examples
    --------
    >>> physnn.denoise("runs/ae", "showers.root", out="showers_denoised.root")  # doctest: +SKIP
    """
    if mc_samples != 0:
        check_samples(mc_samples)
    if out is not None:
        check_output(out, overwrite=overwrite)
    loaded = _load(run, device)
    task = reconstruction_task(loaded, "denoise")
    if add_noise and not task.noise:
        msg = f"--add-noise: the run {loaded.checkpoint} was trained without task.noise; there is no noise to add"
        raise ConfigError(msg)
    plan = plan_prediction(loaded.config.data, files, tree, None, mapping=mapping, image_shape=loaded.io.image,
                           flag=False)
    # only the inputs are read: the output copies the file's branches
    cfg = plan.config.model_copy(update={"define": {}, "label": None, "targets": [], "weight": None, "observers": []})
    assert cfg.images is not None
    images = list(cfg.images.branches)
    tree_name, layout, counters = _plan(cfg, images)
    if layout.skipped and on_skipped is not None:
        on_skipped(dict(layout.skipped))
    noise = torch.Generator().manual_seed(seed) if add_noise else None
    files = expand_files(cfg.files)
    meta = provenance("physnn denoise", config=loaded.config, seed=seed, inputs=[*files, loaded.checkpoint],
                      checkpoint=str(loaded.checkpoint), epoch=loaded.epoch, model=loaded.config.model.name,
                      files=files, tree=tree_name, images=images, mc_samples=mc_samples, add_noise=add_noise,
                      noise=[n.model_dump() for n in task.noise] if add_noise else [],
                      skipped_branches=list(layout.skipped), counts={}, **domain_meta(loaded), **plan.meta(),
                      notes=plan.notes)

    def chunks() -> Iterator[dict[str, Any]]:
        count = 0
        for block in read_blocks(loaded, cfg, step_size=step_size, keep=layout.branches,
                                 tagging=Tagging(known_files=set(loaded.training_files))):
            if block.td is not None:
                assert block.arrays is not None
                count += len(block.td)
                branches = _denoised_branches(loaded, block.arrays, block.td.inputs["image"], layout, images,
                                              noise=noise, mc_samples=mc_samples, batch_size=batch_size)
                yield branches | domain_branches(loaded, block.td, meta["counts"])
        if count == 0:
            msg = f"{', '.join(cfg.files)}: no event to denoise"
            raise DataError(msg)

    sink = Sink(out, tree_name, out is None if collect is None else collect, meta=meta, overwrite=overwrite,
                compression=compression, title=f"denoised by physnn ({loaded.checkpoint})", counters=counters,
                rntuple=layout.rntuple)
    start = time.perf_counter()
    with seeded(seed, loaded.device):  # the dropout masks of --mc-samples
        events, arrays = drain(chunks(), sink)
    return AutoencoderResult(None if out is None else Path(out), events, time.perf_counter() - start, arrays, meta)


def _code(outs: torch.Tensor) -> dict[str, torch.Tensor]:
    """The feature extractor's output of one deterministic pass, (1, N, D) -> (N, D)."""
    return {"code": outs[0]}


def encode(
    run: str | os.PathLike | LoadedRun,
    files: str | os.PathLike | Sequence[str] | None = None,
    *,
    out: str | os.PathLike | None = None,
    tree: str | None = None,
    clusters: int = 0,
    seed: int = 0,
    batch_size: int = 1024,
    device: str = "auto",
    step_size: str | int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    collect: bool | None = None,
    mapping: Mapping[str, str] | Sequence[str] | None = None,
) -> AutoencoderResult:
    """Write the code of every event, optionally with a k-means cluster id.

    Parameters
    ----------
    run
        A run folder, checkpoint or :class:`LoadedRun`: an autoencoder (its
        bottleneck) or any model (the output of its feature extractor).
    files
        Input ROOT files (default: the training files).
    out
        Output ROOT file with the tree ``codes``.
    clusters
        K > 0: fit k-means with K clusters (scikit-learn, seeded) on the
        standardised codes of all events and write ``cluster``. The codes
        are then held in memory until the end (D numbers per event).
    seed
        Seed of k-means.
    tree, batch_size, device, step_size, overwrite, compression, collect, mapping
        As for :func:`physnn.predict`.

    Examples
    --------
    >>> physnn.encode("runs/ae", "showers.root", out="codes.root", clusters=3)  # doctest: +SKIP
    """
    if clusters < 0:
        msg = f"--clusters must be 0 (off) or a positive number of clusters, got {clusters}"
        raise ConfigError(msg)
    if out is not None:
        check_output(out, overwrite=overwrite)
    loaded = _load(run, device)
    loaded.task.check_command("encode", loaded.checkpoint.parent)
    plan = plan_prediction(loaded.config.data, files, tree, None, mapping=mapping, image_shape=loaded.io.image,
                           flag=False)
    cfg = plan.config
    files = expand_files(cfg.files)
    meta = provenance("physnn encode", config=loaded.config, seed=seed, inputs=[*files, loaded.checkpoint],
                      checkpoint=str(loaded.checkpoint), epoch=loaded.epoch, model=loaded.config.model.name,
                      files=files, tree=plan.tree, clusters=clusters, counts={}, **domain_meta(loaded), **plan.meta(),
                      notes=plan.notes)

    def chunks() -> Iterator[dict[str, Any]]:
        count = 0
        for block in read_blocks(loaded, cfg, step_size=step_size,
                                 tagging=Tagging(known_files=set(loaded.training_files))):
            if block.td is None:
                continue
            branches = truth_branches(loaded.task, cfg, loaded.transform, block.raw, block.td, {})
            codes = run_model(loaded, block.td, _code, batch_size=batch_size, call=loaded.model.encode)["code"]
            meta["code_size"] = int(codes.shape[1])
            branches.update({f"code_{j}": np.ascontiguousarray(codes[:, j].numpy()) for j in range(codes.shape[1])})
            branches.update(domain_branches(loaded, block.td, meta["counts"]))
            count += len(block.td)
            yield branches
        if count == 0:
            msg = f"{', '.join(cfg.files)}: no event to encode"
            raise DataError(msg)

    source: Iterable[dict[str, Any]] = chunks()
    if clusters:
        source = _with_clusters(list(source), clusters, seed, meta)
    sink = Sink(out, CODES_TREE, out is None if collect is None else collect, meta=meta, overwrite=overwrite,
                compression=compression, title=f"physnn codes of {loaded.checkpoint}")
    start = time.perf_counter()
    events, arrays = drain(source, sink)
    return AutoencoderResult(None if out is None else Path(out), events, time.perf_counter() - start, arrays, meta)


def _with_clusters(pieces: list[dict[str, Any]], clusters: int, seed: int, meta: dict[str, Any]
                   ) -> list[dict[str, Any]]:
    """The code blocks (at least one: an empty input is refused before) with a k-means ``cluster`` id per
    event (fitted on all of them); the centres go to ``meta``."""
    all_codes = concat(pieces)
    names = sorted((k for k in all_codes if k.startswith("code_")), key=lambda k: int(k[5:]))
    matrix = np.stack([all_codes[k] for k in names], axis=1)
    if len(matrix) < clusters:
        msg = f"--clusters {clusters}: only {len(matrix)} events to cluster"
        raise ConfigError(msg)
    labels, centers = _kmeans(matrix, clusters, seed)
    meta["cluster_centers"] = centers.tolist()
    lo = 0
    for piece in pieces:
        n = len(piece["entry"])
        piece["cluster"] = labels[lo:lo + n].astype(np.int32)
        lo += n
    return pieces


def _kmeans(codes: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """k-means on standardised codes; the centres are returned in code units."""
    from sklearn.cluster import KMeans

    center = codes.mean(0)
    scale = codes.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    model = KMeans(n_clusters=k, random_state=seed, n_init="auto").fit((codes - center) / scale)
    return model.labels_, model.cluster_centers_ * scale + center

