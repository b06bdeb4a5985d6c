"""CUDA paths: device selection, bf16 autocast training, GPU-resident data, MC dropout on the GPU.

Skipped without CUDA (CI has none); run on a GPU machine with ``python -m pytest tests/gpu``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import run_config

import physnn
from physnn.training.device import resolve_device, use_amp

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")]


def test_auto_picks_cuda_and_amp_is_on():
    dev = resolve_device("auto")
    assert dev.type == "cuda"
    assert use_amp("auto", dev)
    assert resolve_device("cuda:0") == torch.device("cuda:0")


def test_train_and_predict_on_cuda_match_the_cpu_quality(epi_file, tmp_path):
    gpu = physnn.train(run_config(epi_file, epochs=4, device="cuda"), out=tmp_path / "gpu", progress=False)
    assert next(gpu.model.parameters()).is_cuda
    assert gpu.best["val_auc"] > 0.9
    res = physnn.predict(gpu.run_dir, epi_file, mc_samples=20, device="cuda")
    cpu = physnn.predict(gpu.run_dir, epi_file, device="cpu")
    assert res.arrays["score_std"].mean() > 0
    # bf16 autocast on the GPU vs float32 on the CPU: same decisions almost everywhere
    assert np.mean(res.arrays["pred"] == cpu.arrays["pred"]) > 0.97
