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
``baseline``       regression relative to a baseline: (N, targets) each
                   target's baseline (e.g. the cell sum, in GeV; 1 for a
                   target without one): ``pred`` and ``sigma`` come out in
                   the target's unit, per event with its baseline
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
raw, and ``std``, the calibrated total s sqrt(aleatoric² + (rho epistemic)²)
with the run's two factors: the branches of ``physnn predict``).
An ensemble's graph (``physnn train --ensemble N``) runs every member and
returns the same outputs as MC dropout, the members' mean and spread.
The GAN takes its random numbers as inputs, so the C++ side owns the seeding.
A ``physnn_meta`` JSON (provenance, input and output names and shapes, the
branch names each input stacks, classes, targets) is stored in the ONNX
``metadata_props`` and in the TorchScript archive as ``physnn_meta.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from physnn import extras
from physnn.errors import ConfigError
from physnn.inference.loading import LoadedRun, load_run
from physnn.io.metadata import META, provenance
from physnn.io.write import atomic_path, check_output
from physnn.models.base import dropout_always
from physnn.models.graph import ExportSwitch
from physnn.models.mc_dropout import check_samples

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


def _swap_dropout(model: nn.Module, swapped: list[tuple[nn.Module, str, nn.Module]]) -> None:
    """Swap the dropout layers of ``model`` for :class:`_AlwaysDropout`, recording in ``swapped`` what to put
    back; refuse the layers an exported graph cannot draw."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.RNNBase) and child.dropout > 0 and not isinstance(parent, ExportSwitch):
                msg = "export --mc-samples: dropout between RNN layers needs a layer that draws it in the graph"
                raise ConfigError(msg)  # a recurrent encoder's exporting() does
            if isinstance(child, (nn.AlphaDropout, nn.FeatureAlphaDropout)):
                msg = f"export --mc-samples: {type(child).__name__} is not supported in exported graphs"
                raise ConfigError(msg)
            if isinstance(child, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)):
                setattr(parent, name, _AlwaysDropout(child))
                swapped.append((parent, name, child))


def _dynamic(names: list[str]) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in names}
    for key in ("sequence", "kinematics"):
        if key in axes:
            axes[key][1] = "length"
    return axes


@contextlib.contextmanager
def _switched(module: nn.Module, mc_dropout: bool) -> Iterator[None]:
    """Every :class:`~physnn.models.graph.ExportSwitch` layer of ``module`` in its traceable computation until
    exit, also when a later layer refuses (an RNN without packing: exact, see :mod:`physnn.models.recurrent`)."""
    with contextlib.ExitStack() as stack:
        for layer in list(module.modules()):
            if isinstance(layer, ExportSwitch):
                stack.enter_context(layer.exporting(mc_dropout=mc_dropout))
        yield


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
    module = loaded.task.graph(loaded.members or loaded.model, loaded.transform, loaded.io, mc_samples)
    module.eval()
    with _switched(module, mc_samples > 0), _dropout_drawn_in_graph(module, mc_samples > 0):
        examples = module.examples()
        with torch.no_grad():
            outputs = module(*examples)
        shapes = _shapes(module, examples, outputs)
        meta = _meta(loaded, format, mc_samples, shapes)
        with atomic_path(out, overwrite=overwrite) as tmp:
            (_write_onnx if format == "onnx" else _write_torchscript)(module, examples, tmp, meta)
    return ExportResult(Path(out), format, shapes["inputs"], shapes["outputs"], meta)


@contextlib.contextmanager
def _dropout_drawn_in_graph(module: nn.Module, mc_dropout: bool) -> Iterator[None]:
    """With MC dropout, the dropout layers draw their masks inside the graph until exit; those swapped are put
    back on exit, also when a later layer is refused."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        if mc_dropout:
            _swap_dropout(module, swapped)
        yield
    finally:
        for parent, name, layer in swapped:
            setattr(parent, name, layer)


def _shapes(module: Any, examples: tuple[torch.Tensor, ...], outputs: tuple[torch.Tensor, ...]
            ) -> dict[str, dict[str, list[Any]]]:
    """The graph's input and output shapes, ``N`` (and a sequence's ``L``) for its dynamic axes."""
    inputs = {name: ["N" if i == 0 else ("L" if name in ("sequence", "kinematics") and i == 1 else int(d))
                     for i, d in enumerate(t.shape)] for name, t in zip(module.input_names, examples, strict=True)}
    outs = {name: ["N", *(int(d) for d in t.shape[1:])] for name, t in zip(module.output_names, outputs, strict=True)}
    return {"inputs": inputs, "outputs": outs}


def _meta(loaded: LoadedRun, format: str, mc_samples: int, shapes: Mapping[str, Any]) -> dict[str, Any]:
    """The ``physnn_meta`` of an exported graph: provenance, shapes and what each input stacks."""
    data, task = loaded.config.data, loaded.task
    sequence = data.sequence
    return provenance(f"physnn export --format {format}", config=loaded.config, seed=None,
                      inputs=[loaded.checkpoint], epoch=loaded.epoch, model=loaded.config.model.name,
                      task=task.kind, mc_samples=mc_samples, members=len(loaded.models), graph_inputs=shapes["inputs"],
                      graph_outputs=shapes["outputs"],
                      branches={"image": None if data.images is None else data.images.branches,
                                "sequence": None if sequence is None else sequence.features,
                                "kinematics": None if sequence is None else sequence.kinematics,
                                "scalars": data.scalars or getattr(task, "scalars", []),
                                "baseline": getattr(task, "baselines", None) or None},
                      classes=getattr(task, "classes", None), targets=list(task.targets),
                      define=dict(data.define), max_length=loaded.transform.max_length,
                      sort_by=None if sequence is None else sequence.sort_by,
                      descending=None if sequence is None else sequence.descending)
