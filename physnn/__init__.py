"""physnn: deep learning for physicists, from ROOT files to predictions and back.

The package stays light to import: the API (and torch) is loaded on first use
of one of its names, so ``physnn --version`` answers at once.

Data flow: ROOT file -> awkward arrays (:mod:`physnn.io`) -> tensors
(:mod:`physnn.data`) -> models -> predictions -> ROOT.
"""

from __future__ import annotations

from typing import Any

from physnn._version import __version__

_API = ("AutoencoderResult", "BranchScan", "ComparisonResult", "DataBundle", "EvaluationResult", "ExportResult",
        "GenerationResult", "LoadedRun", "ModelConfig", "ModelIO", "PredictionResult", "RunConfig", "SideBySide",
        "SimulationResult", "TensorData", "TrainResult", "Transform", "build_model", "compare", "denoise", "encode",
        "evaluate", "evaluate_denoising", "evaluate_generator", "export", "fit", "generate", "inspect", "list_models",
        "load", "load_run", "load_run_config", "predict", "read", "read_metadata", "scan", "side_by_side", "simulate",
        "simulator_floor", "stream", "train")

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from physnn import api

        return getattr(api, name)
    msg = f"module 'physnn' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)
