"""Residual blocks in a trained run: ONNX export equals torch, MC dropout's cached prefix, transfer learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import uproot
from conftest import run_config

import physnn
from physnn.inference.loading import load_run
from physnn.models.layers import ResidualBlock
from physnn.models.mc_dropout import mc_forward, naive_mc_forward

RESIDUAL_CNN = {"name": "cnn", "params": {
    "features": [{"type": "residual", "filters": 4}, {"type": "pool", "pool_size": 2},
                 {"type": "residual", "filters": 6, "strides": 2}, {"type": "global_pool"}],
    "head": [{"type": "dense", "units": 8}, {"type": "dropout", "rate": 0.3}],
}}


@pytest.fixture(scope="module")
def residual_run(epi_file, tmp_path_factory):
    cfg = {**run_config(epi_file, epochs=1), "model": RESIDUAL_CNN}
    cfg["data"]["entry_stop"] = 800
    return physnn.train(cfg, out=tmp_path_factory.mktemp("runs") / "residual", progress=False)


def test_onnx_residual_cnn_matches_predict(residual_run, epi_file, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    res = physnn.export(residual_run.run_dir, tmp_path / "residual.onnx")
    with uproot.open(epi_file) as f:
        images = f["showers"]["image"].array(library="np", entry_stop=40).astype(np.float32)
    ref = physnn.predict(residual_run.run_dir, epi_file).arrays
    session = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    prob, score = session.run(None, {"image": images})
    np.testing.assert_allclose(score, ref["score"][:40], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(prob, ref["prob"][:40], rtol=1e-4, atol=1e-5)


def test_mc_dropout_caches_the_residual_features(residual_run):
    model = load_run(residual_run.run_dir).model.eval()
    blocks = [i for i, s in enumerate(model.stages)
              if isinstance(s, torch.nn.Sequential) and isinstance(s[0], ResidualBlock)]
    assert blocks == [0, 2]
    assert model.first_stochastic_stage() > max(blocks)  # the residual blocks are in the cached, deterministic prefix
    batch = {"image": torch.rand(5, 3, 24, 24)}
    torch.manual_seed(3)
    cached = mc_forward(model, batch, 20)
    torch.manual_seed(3)
    torch.testing.assert_close(cached, naive_mc_forward(model, batch, 20))  # the same dropout masks, same result


def test_freeze_features_keeps_the_residual_blocks(residual_run, epi_file, tmp_path):
    cfg = {**run_config(epi_file, epochs=1), "model": RESIDUAL_CNN}
    cfg["data"]["entry_stop"] = 800
    new = physnn.train(cfg, out=tmp_path / "transfer", init_from=residual_run.run_dir, freeze="features",
                       progress=False)
    before = load_run(residual_run.run_dir).model.state_dict()
    after = new.model.state_dict()
    features = [k for k in before if k.startswith(("stages.0.", "stages.2."))]
    assert any("running_mean" in k for k in features)  # the frozen batch norms keep their statistics too
    for key in features:
        torch.testing.assert_close(after[key], before[key])
    head = [k for k in before if k.startswith("stages.") and not k.startswith(tuple(f"stages.{i}." for i in range(5)))]
    assert any(not torch.equal(after[k], before[k]) for k in head)  # the head trained
