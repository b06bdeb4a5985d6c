"""Device choice (``--device auto|cpu|cuda|cuda:N|mps``) and mixed precision."""

from __future__ import annotations

import torch

from physnn.errors import ConfigError


def resolve_device(spec: str = "auto") -> torch.device:
    """The torch device for ``spec``; a one-line error when it is not available.

    ``auto`` takes CUDA when present, then Apple's MPS, then the CPU.
    """
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            msg = f"--device {spec}: CUDA is not available here (torch {torch.__version__}); use --device cpu or auto"
            raise ConfigError(msg)
        index = int(spec[5:]) if spec.startswith("cuda:") else 0
        if index >= torch.cuda.device_count():
            msg = f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here"
            raise ConfigError(msg)
        return torch.device(spec)
    if spec == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            msg = "--device mps: Apple MPS is not available here; use --device cpu or auto"
            raise ConfigError(msg)
        return torch.device("mps")
    if spec == "cpu":
        return torch.device("cpu")
    msg = f"--device {spec!r}: expected auto, cpu, cuda, cuda:N or mps"
    raise ConfigError(msg)


def use_amp(setting: bool | str, device: torch.device) -> bool:
    """Mixed precision on? ``auto`` means on for CUDA only."""
    if setting == "auto":
        return device.type == "cuda"
    if setting and device.type != "cuda":
        msg = f"train.amp: mixed precision is for CUDA devices, not {device.type}"
        raise ConfigError(msg)
    return bool(setting)


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bfloat16 autocast on CUDA (no loss scaling needed); a no-op elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)
