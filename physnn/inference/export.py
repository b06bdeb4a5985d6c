"""Export a trained run to ONNX or TorchScript for C++ frameworks.

The exported graph is self-contained: it takes the inputs **in physical
units, as they are in the ROOT file**, and returns physical outputs. The
run's standardisation, padding mask and output transform (sigmoid/softmax,
target units, σ calibration, the GAN's cell representation and zero
suppression) are inside it, so a C++ user feeds branch values and reads
probabilities or GeV.

=================  ==========================================================
input              shape and meaning
=================  ==========================================================
``image``          (N, C, ...) the image branches stacked as channels
``sequence``       (N, L, F) the sequence features per particle, ordered as in
                   training (``sort_by``), padded to any L (the padding
                   values do not matter; beyond ``max_length`` particles are
                   dropped, as in training)
``length``         (N,) int64, the number of real particles per event
``scalars``        (N, S) the scalar branches
``conditions``     GAN: (N, S) the condition scalars (e.g. energy in GeV)
``class_index``    GAN with classes: (N,) int64 index into the classes
``z``              GAN: (N, latent) standard-normal noise
``noise``          GAN with readout noise: (N, layers, H, W) standard normal
=================  ==========================================================

=================  ==========================================================
output             for
=================  ==========================================================
``prob``           classification: (N, K) class probabilities
``score``          binary classification: (N,) the probability of class 1
``pred``           regression: (N, targets) in target units
``sigma``          Gaussian regression: (N, targets), the calibrated σ of
                   the Gaussian head (σ scale per target, as ``predict``)
``reconstruction`` autoencoders: (N, ...) the denoised input
``image``          GAN: (N, ...) generated cells, physical units
=================  ==========================================================

The batch size N and the sequence length L are dynamic. Dropout is off,
unless the graph is exported with ``mc_samples=T`` (``--mc-samples T``):
then it runs T stochastic passes per event and also returns the spread
(``prob_std``/``score_std``; for regressors ``aleatoric`` and ``epistemic``,
raw, and ``std``, the calibrated total: the branches of ``physnn predict``).
The GAN takes its random numbers as inputs, so the C++ side owns the seeding.
A ``physnn_meta`` JSON (provenance, input and output names and shapes, the
branch names each input stacks, classes, targets) is stored in the ONNX
``metadata_props`` and in the TorchScript archive as ``physnn_meta.json``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from physnn import extras
from physnn.errors import ConfigError
from physnn.inference.predict import LoadedRun, load_run
from physnn.io.metadata import META, provenance
from physnn.io.write import atomic_path, check_output
from physnn.models.base import dropout_always
from physnn.models.mc_dropout import check_samples, regression_summary, repeat_rows

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
#: The ONNX opset of exported models.
OPSET = 18


@dataclass
class ExportResult:
    """What :func:`export` wrote."""

    path: Path
    format: str
    inputs: dict[str, list[Any]]
    outputs: dict[str, list[Any]]
    meta: dict[str, Any] = field(default_factory=dict)


def _affine(transform_center: Mapping[str, list[float]], transform_scale: Mapping[str, list[float]],
            key: str) -> tuple[torch.Tensor, torch.Tensor]:
    center = torch.tensor(transform_center.get(key, [0.0]), dtype=torch.float32)
    scale = torch.tensor(transform_scale.get(key, [1.0]), dtype=torch.float32)
    return center, scale


class PhysicsModel(nn.Module):
    """A trained model between physical inputs and physical outputs (see the module docs)."""

    def __init__(self, loaded: LoadedRun, mc_samples: int = 0) -> None:
        super().__init__()
        self.model = loaded.model
        self.task = loaded.task
        self.mc_samples = mc_samples
        io = loaded.io
        self.input_names: list[str] = []
        if io.image is not None:
            self.input_names.append("image")
        if io.sequence is not None:
            self.input_names += ["sequence", "length"]
        if io.scalars:
            self.input_names.append("scalars")
        center, scale = loaded.transform.center, loaded.transform.scale
        for key in ("image", "sequence", "scalars"):
            c, s = _affine(center, scale, key)
            self.register_buffer(f"{key}_center", c, persistent=False)
            self.register_buffer(f"{key}_scale", s, persistent=False)
        kind = loaded.task.kind
        self.output_names = {"binary": ["prob", "score"], "multiclass": ["prob"], "reconstruction": ["reconstruction"]
                             }.get(kind, ["pred", "sigma"] if loaded.task.gaussian else ["pred"])
        #: the stage from which the MC passes run T times (computed before the dropout layers are swapped)
        self.first_stochastic = loaded.model.first_stochastic_stage()
        if mc_samples:
            if kind not in ("binary", "multiclass", "regression"):
                msg = f"export --mc-samples: MC dropout is for classifiers and regressors, not a {kind} run"
                raise ConfigError(msg)
            if self.first_stochastic >= len(loaded.model.stages):
                msg = "export --mc-samples: the model has no dropout layer, its MC-dropout spread would be zero"
                raise ConfigError(msg)
            if kind == "regression":  # with MC dropout, the raw parts and the calibrated total, as predict writes
                self.output_names = ["pred", *(["aleatoric"] if loaded.task.gaussian else []), "epistemic", "std"]
            else:
                self.output_names += ["prob_std", "score_std"][:len(self.output_names)]
        self.register_buffer("sigma_scale", loaded.task.sigma_scales(mc_samples > 0), persistent=False)
        self.max_length = int(loaded.transform.max_length or 1)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        given = dict(zip(self.input_names, inputs, strict=True))
        batch: dict[str, torch.Tensor] = {}
        if "image" in given:
            x = given["image"].float()
            shape = [1, -1] + [1] * (x.dim() - 2)
            batch["image"] = (x - self.image_center.reshape(shape)) / self.image_scale.reshape(shape)
        if "sequence" in given:
            x = given["sequence"].float()
            steps = torch.arange(x.shape[1], device=x.device)
            # particles beyond max_length are masked out, as they were clipped in training
            mask = steps[None, :] < given["length"].to(x.device).clamp(max=self.max_length)[:, None]
            x = (x - self.sequence_center) / self.sequence_scale
            batch["sequence"] = x * mask[..., None].to(x.dtype)
            batch["mask"] = mask
        if "scalars" in given:
            batch["scalars"] = (given["scalars"].float() - self.scalars_center) / self.scalars_scale
        if self.mc_samples:
            return self._mc(batch)
        out = self.task.predict(self.model(batch))
        if "prob" in out:
            return (out["prob"], out["prob"][:, 1]) if self.task.kind == "binary" else (out["prob"],)
        if "reconstruction" in out:
            return (out["reconstruction"],)
        if "var" in out:  # one pass: the calibrated σ of the Gaussian head
            return out["mean"], regression_summary({k: v[None] for k, v in out.items()}, self.sigma_scale)["std"]
        return (out["mean"],)

    def _mc(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """T passes with dropout on (the layers are in training mode in the graph), as ``physnn predict
        --mc-samples T``: the part before the first dropout once, the rest on T x N rows."""
        model, t = self.model, self.mc_samples
        first = self.first_stochastic
        side = model.side(batch)
        if first < 0:  # dropout in the adapter (an RNN): T full passes
            x, first = model.adapt({k: repeat_rows(v, t) for k, v in batch.items()}), 0
            side = {k: repeat_rows(v, t) for k, v in side.items()}
        else:
            x = model.run(model.adapt(batch), side, 0, first)
            x, side = repeat_rows(x, t), {k: repeat_rows(v, t) for k, v in side.items()}
        raw = model.run(x, side, first)
        out = self.task.predict(raw.reshape(t, -1, raw.shape[-1]))
        if "prob" in out:
            mean, std = out["prob"].mean(0), out["prob"].std(0)
            return (mean, mean[:, 1], std, std[:, 1]) if self.task.kind == "binary" else (mean, std)
        s = regression_summary(out, self.sigma_scale)  # the same error bars as physnn predict --mc-samples T
        if "aleatoric" in s:
            return s["pred"], s["aleatoric"], s["epistemic"], s["std"]
        return s["pred"], s["epistemic"], s["std"]


class _AlwaysDropout(nn.Module):
    """Dropout that draws a mask in any mode: how MC dropout enters an exported graph.

    The exporters trace in eval mode, where ``nn.Dropout`` vanishes; this
    module writes the mask out as a uniform random draw, which ONNX keeps as
    ``RandomUniformLike`` (new masks on every run of the graph).
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.p = float(layer.p)
        self.channels = not isinstance(layer, nn.Dropout)  # Dropout1d/2d/3d drop whole feature maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout_always(x, self.p, channels=self.channels)


def _stochastic_dropout(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Swap the dropout layers of ``model`` for :class:`_AlwaysDropout`; return what to put back."""
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.RNNBase) and child.dropout > 0 and getattr(parent, "packing", "") != "layerwise":
                msg = "export --mc-samples: dropout between RNN layers needs the layer-by-layer call"
                raise ConfigError(msg)  # _padded_rnns switches every such RNN to it
            if isinstance(child, (nn.AlphaDropout, nn.FeatureAlphaDropout)):
                msg = f"export --mc-samples: {type(child).__name__} is not supported in exported graphs"
                raise ConfigError(msg)
            if isinstance(child, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)):
                setattr(parent, name, _AlwaysDropout(child))
                swapped.append((parent, name, child))
    return swapped


class GeneratorModel(nn.Module):
    """A GAN fast simulator as a function of its conditions and its random numbers."""

    def __init__(self, loaded: LoadedRun) -> None:
        super().__init__()
        self.model = loaded.model
        self.task = loaded.task
        task: Any = loaded.task
        self.input_names = ["conditions"] if task.scalars else []
        if task.classes is not None:
            self.input_names.append("class_index")
        self.input_names.append("z")
        self.readout_noise = loaded.model.generator.noise_scale is not None and task.threshold > 0
        if self.readout_noise:
            self.input_names.append("noise")
        self.output_names = ["image"]

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor]:
        given = dict(zip(self.input_names, inputs, strict=True))
        task: Any = self.task
        z = given["z"].float()
        scalars = given.get("conditions", z.new_zeros(z.shape[0], 0)).float()
        cond = task.encode_conditions(scalars, given.get("class_index"))
        incident = scalars[:, task.incident] if task.incident is not None else z.new_ones(z.shape[0])
        prior = None if task.shape_prior is None else task.shape_prior.to(z.device)
        x = self.model.generator(z, cond, task.offset(incident), prior, None)
        if self.readout_noise:
            x = self.model.generator.readout(x, given["noise"], task.threshold / task.cell_scale)
        return (task.to_phys(task.suppress(x)),)


def _examples(module: nn.Module, loaded: LoadedRun, n: int = 3, length: int = 5) -> tuple[torch.Tensor, ...]:
    """Example inputs for tracing, in physical units near the training data."""
    gen = torch.Generator().manual_seed(0)
    io, transform = loaded.io, loaded.transform
    out: list[torch.Tensor] = []
    for name in module.input_names:
        if name == "image":
            assert io.image is not None
            c, s = _affine(transform.center, transform.scale, "image")
            shape = [1, -1] + [1] * (len(io.image) - 1)
            out.append(torch.rand(n, *io.image, generator=gen) * s.reshape(shape) + c.reshape(shape))
        elif name == "sequence":
            assert io.sequence is not None
            out.append(torch.randn(n, length, io.sequence[1], generator=gen))
        elif name == "length":
            out.append(torch.tensor([length, 2, 0][:n] + [1] * max(n - 3, 0), dtype=torch.int64))
        elif name == "scalars":
            out.append(torch.randn(n, io.scalars, generator=gen))
        else:
            out.append(_generator_example(name, loaded, n, gen))
    return tuple(out)


def _generator_example(name: str, loaded: LoadedRun, n: int, gen: torch.Generator) -> torch.Tensor:
    task: Any = loaded.task
    if name == "conditions":
        import numpy as np

        raw = task.sample_conditions(n, np.random.default_rng(0))
        return torch.from_numpy(np.stack([raw[s] for s in task.scalars], axis=1)).float()
    if name == "class_index":
        return torch.arange(n, dtype=torch.int64) % len(task.classes)
    if name == "z":
        return torch.randn(n, loaded.model.latent_dim, generator=gen)
    return torch.randn(n, *task.shape, generator=gen)  # readout noise (N, layers, H, W)


def _dynamic(names: list[str]) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in names}
    if "sequence" in axes:
        axes["sequence"][1] = "length"
    return axes


def _padded_rnns(model: nn.Module, mc_dropout: bool) -> list[tuple[nn.Module, str]]:
    """Switch RNNs to calls without packing for export (both exact; see physnn.models.recurrent): ``padded``
    for forward RNNs, ``layerwise`` for bidirectional ones and, with MC dropout, for those with dropout
    between layers. Return what to put back."""
    changed = []
    for module in list(model.modules()):
        packing = getattr(module, "packing", None)
        rnn = getattr(module, "rnn", None)
        if packing is not None and isinstance(rnn, nn.RNNBase):
            changed.append((module, packing))
            if rnn.bidirectional or (mc_dropout and rnn.dropout > 0):
                module.use_layerwise(mc_dropout=mc_dropout)
            else:
                module.packing = "padded"
    return changed


def _traced_onnx(module: nn.Module, examples: tuple[torch.Tensor, ...], names: list[str]) -> bytes:
    """ONNX of a module with LSTM/GRU layers, by the tracing exporter: torch.export captures an RNN's time axis
    as dynamic only in the first export of a process (pytorch/pytorch#126339), so a second export would fail."""
    import io

    buffer = io.BytesIO()
    torch.onnx.export(module, examples, buffer, dynamo=False, input_names=names,
                      output_names=list(module.output_names), dynamic_axes=_dynamic(names), opset_version=OPSET)
    return buffer.getvalue()


def _write_onnx(module: nn.Module, examples: tuple[torch.Tensor, ...], path: Path, meta: Mapping[str, Any]) -> None:
    onnx = extras.onnx()
    import logging

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes
    names = list(module.input_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.export's own deprecation and tracing chatter
        if any(isinstance(m, nn.RNNBase) for m in module.modules()):
            proto = onnx.load_from_string(_traced_onnx(module, examples, names))
        else:
            dims = {name: dict.fromkeys(axes, torch.export.Dim.DYNAMIC) for name, axes in _dynamic(names).items()}
            proto = torch.onnx.export(module, examples, dynamo=True, input_names=names,
                                      output_names=list(module.output_names),
                                      dynamic_shapes=(tuple(dims[n] for n in names),),  # forward(*inputs)
                                      opset_version=OPSET, verbose=False, external_data=False).model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = META, json.dumps(meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def _write_torchscript(module: nn.Module, examples: tuple[torch.Tensor, ...], path: Path,
                       meta: Mapping[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch deprecates TorchScript; LibTorch (torch::jit::load) still reads it
        traced = torch.jit.trace(module, examples, check_trace=False)
        torch.jit.save(traced, path, _extra_files={f"{META}.json": json.dumps(meta)})


def export(run: str | os.PathLike | LoadedRun, out: str | os.PathLike | None = None, *, format: str = "onnx",
           mc_samples: int = 0, overwrite: bool = False) -> ExportResult:
    """Export a trained run to ONNX or TorchScript (physical inputs and outputs, dynamic batch and length).

    Parameters
    ----------
    run
        A run folder or checkpoint (its ``best.pt``), or a :class:`LoadedRun`.
    out
        The output file; default ``RUN/model.onnx`` or ``RUN/model.pt``.
    format
        ``"onnx"`` or ``"torchscript"``.
    mc_samples
        T > 0: a graph with MC dropout inside, as ``physnn predict --mc-samples
        T``: dropout stays on, T stochastic passes per event (the part before
        the first dropout once), and the outputs gain the spread: ``prob_std``
        (and ``score_std``) for classifiers, ``epistemic`` and ``std`` (total)
        for regressors. Each run of the graph draws new dropout masks.
    overwrite
        Replace an existing file.

    Returns
    -------
    ExportResult
        The path and the names and shapes of the inputs and outputs.

    Examples
    --------
    >>> physnn.export("runs/epi", "epi.onnx")  # doctest: +SKIP
    >>> import onnxruntime
    >>> sess = onnxruntime.InferenceSession("epi.onnx")  # doctest: +SKIP
    >>> prob, score = sess.run(None, {"image": images})  # doctest: +SKIP
    """
    if format not in FORMATS:
        msg = f"--format {format!r}: expected one of {', '.join(FORMATS)}"
        raise ConfigError(msg)
    if mc_samples != 0:
        check_samples(mc_samples)
    loaded = run if isinstance(run, LoadedRun) else load_run(run, device="cpu")
    if out is None:
        out = Path(loaded.checkpoint).parent / f"model{SUFFIX[format]}"
    check_output(out, overwrite=overwrite)
    if mc_samples and loaded.task.kind == "generation":
        msg = "export --mc-samples: MC dropout is for classifiers and regressors, not a generation run"
        raise ConfigError(msg)
    module: nn.Module = (GeneratorModel(loaded) if loaded.task.kind == "generation" else
                         PhysicsModel(loaded, mc_samples))
    module.eval()
    restore = _padded_rnns(module, mc_samples > 0)
    swapped = _stochastic_dropout(module) if mc_samples else []  # MC dropout: masks drawn inside the graph
    try:
        examples = _examples(module, loaded)
        with torch.no_grad():
            outputs = module(*examples)
        shapes = {"inputs": {n: ["N" if i == 0 else ("L" if n == "sequence" and i == 1 else int(d))
                                 for i, d in enumerate(t.shape)] for n, t in zip(module.input_names, examples,
                                                                                  strict=True)},
                  "outputs": {n: ["N", *(int(d) for d in t.shape[1:])] for n, t in zip(module.output_names, outputs,
                                                                                      strict=True)}}
        data = loaded.config.data
        meta = provenance(f"physnn export --format {format}", config=loaded.config, seed=None,
                          inputs=[loaded.checkpoint], epoch=loaded.epoch, model=loaded.config.model.name,
                          task=loaded.task.kind, mc_samples=mc_samples, graph_inputs=shapes["inputs"],
                          graph_outputs=shapes["outputs"],
                          branches={"image": None if data.images is None else data.images.branches,
                                    "sequence": None if data.sequence is None else data.sequence.features,
                                    "scalars": data.scalars or getattr(loaded.task, "scalars", [])},
                          classes=getattr(loaded.task, "classes", None), targets=list(loaded.task.targets),
                          define=dict(data.define), max_length=loaded.transform.max_length,
                          sort_by=None if data.sequence is None else data.sequence.sort_by,
                          descending=None if data.sequence is None else data.sequence.descending)
        with atomic_path(out, overwrite=overwrite) as tmp:
            (_write_onnx if format == "onnx" else _write_torchscript)(module, examples, tmp, meta)
    finally:
        for mod, packing in restore:
            mod.packing = packing
            if hasattr(mod, "layerwise_rnn"):
                del mod.layerwise_rnn
        for parent, name, layer in swapped:
            setattr(parent, name, layer)
    return ExportResult(Path(out), format, shapes["inputs"], shapes["outputs"], meta)
