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


def test_gan_trains_and_generates_on_cuda(showers_file, tmp_path):
    """The adversarial loop and generate on the GPU; prints the showers/s of generate there."""
    import uproot
    from conftest import gan_config

    run = physnn.train(gan_config(showers_file, epochs=2, device="cuda"), out=tmp_path / "gan", progress=False)
    assert next(run.model.parameters()).is_cuda
    assert np.isfinite(run.best["val_loss"])
    res = physnn.generate(run.run_dir, tmp_path / "gen.root", events=20000, device="cuda", seed=1)
    arrays = uproot.open(res.path)["showers"].arrays(["image", "energy"], library="np")
    assert arrays["image"].shape == (20000, 3, 24, 24)
    assert res.meta["device"].startswith("cuda")
    print(f"generate on {torch.cuda.get_device_name()}: {res.rate:,.0f} showers/s with ROOT writing, "
          f"{res.forward_rate:,.0f}/s forward")


def test_torchrun_nccl_one_process_per_gpu(epi_file, tmp_path):
    """torchrun with one process per GPU (with one GPU a single process: DDP and nccl start from two); prints
    samples/s."""
    import csv
    import os
    import subprocess
    import sys

    import yaml

    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(run_config(epi_file, epochs=3, device="cuda")))
    n = torch.cuda.device_count()
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                           "-m", "physnn", "train", "ddp.yaml", "--out", "ddp"], cwd=tmp_path, env=dict(os.environ),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "ddp" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert max(float(r["val_auc"]) for r in rows) > 0.9
    print(f"DDP nccl x{n}: {max(float(r['samples_per_s']) for r in rows):,.0f} samples/s")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="nccl needs two GPUs (one process each)")
@pytest.mark.parametrize("what", ["streaming", "gan"])
def test_torchrun_nccl_streaming_and_gan(what, epi_file, tmp_path):
    """nccl all-reduces: the streaming lockstep (int64 on the GPU) and the GAN's averaged gradients."""
    import os
    import subprocess
    import sys

    import yaml
    from conftest import gan_config

    cfg = (run_config(epi_file, epochs=2, device="cuda", memory_budget="64 GB") if what == "streaming" else
           gan_config(epi_file, epochs=2, device="cuda"))
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    script = ("import physnn, physnn.data.streaming as s\n"
              "s.IN_MEMORY_FACTOR = 1e12\n"  # stream these small data
              "physnn.train('ddp.yaml', out='ddp', progress=False)\n")
    (tmp_path / "train.py").write_text(script)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "train.py"], cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from physnn.training.checkpoint import load_checkpoint

    last = load_checkpoint(tmp_path / "ddp", "last.pt")
    assert last["epoch"] == 2
    assert last["data_info"].get("streaming", False) == (what == "streaming")
