"""physnn export: ONNX (run with onnxruntime) and TorchScript match the PyTorch predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import uproot
from typer.testing import CliRunner

import physnn
from physnn.data.dataset import iter_raw
from physnn.errors import ConfigError
from physnn.inference.loading import load_run
from physnn.inference.plan import plan_prediction
from physnn.io.metadata import config_hash
from physnn.training.calibration import RHO_GRID

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # reading TorchScript back

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
runner = CliRunner()


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _onnx_meta(path) -> dict:
    model = onnx.load(str(path))
    return json.loads({p.key: p.value for p in model.metadata_props}["physnn_meta"])


def _images(path, stop: int) -> np.ndarray:
    with uproot.open(path) as f:  # raw cells straight from the file: the graph standardises itself
        return f["showers"]["image"].array(library="np", entry_stop=stop).astype(np.float32)


def test_onnx_cnn_classifier_matches_predict(cls_run, epi_file, tmp_path):
    res = physnn.export(cls_run.run_dir, tmp_path / "epi.onnx")
    assert res.inputs == {"image": ["N", 3, 24, 24]}
    assert res.outputs == {"prob": ["N", 2], "score": ["N"]}
    ref = physnn.predict(cls_run.run_dir, epi_file).arrays
    for n in (37, 1):  # any batch size
        prob, score = _session(res.path).run(None, {"image": _images(epi_file, n)})
        np.testing.assert_allclose(score, ref["score"][:n], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(prob, ref["prob"][:n], rtol=1e-4, atol=1e-5)
    meta = _onnx_meta(res.path)
    assert meta["classes"] == [11, 211]
    assert meta["branches"]["image"] == ["image"]
    assert meta["config_hash"] == config_hash(load_run(cls_run.run_dir).config)
    assert meta["graph_inputs"] == {"image": ["N", 3, 24, 24]}


def test_torchscript_regressor_matches_predict(reg_run, showers_file, tmp_path):
    res = physnn.export(reg_run.run_dir, tmp_path / "energy.pt", format="torchscript")
    assert res.outputs == {"pred": ["N", 1], "sigma": ["N", 1]}
    extra = {"physnn_meta.json": ""}
    module = torch.jit.load(str(res.path), _extra_files=extra)
    assert json.loads(extra["physnn_meta.json"])["targets"] == ["energy"]
    ref = physnn.predict(reg_run.run_dir, showers_file).arrays
    for n in (50, 3):
        with torch.no_grad():
            pred, sigma = module(torch.from_numpy(_images(showers_file, n)))
        np.testing.assert_allclose(pred[:, 0].numpy(), ref["energy_pred"][:n], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(sigma[:, 0].numpy(), ref["energy_std"][:n], rtol=1e-4, atol=1e-4)  # calibrated


def _padded(raw, length: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Padded (N, length, F) sequences with junk in the padding, and the lengths."""
    counts = raw.seq_counts
    out = np.full((len(counts), length, raw.seq_content.shape[1]), fill, dtype=np.float32)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for i, (s, c) in enumerate(zip(starts, counts, strict=True)):
        take = min(c, length)
        out[i, :take] = raw.seq_content[s:s + take]
    return out, counts.astype(np.int64)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_sequence_model_has_dynamic_batch_and_length(seq_run, events_file, tmp_path, fmt):
    res = physnn.export(seq_run, tmp_path / f"gru.{fmt}", format=fmt)
    assert res.inputs == {"sequence": ["N", "L", 5], "length": ["N"]}
    loaded = load_run(seq_run)
    cfg = plan_prediction(loaded.config.data, events_file, None, None).config
    raw = next(iter_raw(cfg))
    ref = physnn.predict(seq_run, events_file).arrays
    n = 40
    raw = raw.select(np.arange(n))
    for length, fill in ((int(raw.seq_counts.max()) + 3, 99.0), (4, -7.0)):  # longer and shorter than the data
        seq, counts = _padded(raw, length, fill)
        if fmt == "onnx":
            pred, sigma = _session(res.path).run(None, {"sequence": seq, "length": counts})
        else:
            with torch.no_grad():
                pred, sigma = (t.numpy() for t in torch.jit.load(str(res.path))(torch.from_numpy(seq),
                                                                                torch.from_numpy(counts)))
        if length >= loaded.transform.max_length:  # every particle the training saw: the same numbers
            np.testing.assert_allclose(pred[:, 0], ref["mass_pred"][:n], rtol=1e-4, atol=1e-3)
            np.testing.assert_allclose(sigma[:, 0], ref["mass_std"][:n], rtol=1e-4, atol=1e-3)
        else:
            assert np.all(np.isfinite(pred))


@pytest.fixture(scope="module")
def seq_run(events_file, tmp_path_factory):
    from test_sequence_training import events_config

    out = tmp_path_factory.mktemp("runs") / "gru"
    physnn.train(events_config(events_file, task="regression", epochs=1), out=out, progress=False)
    return out


def test_onnx_gan_generator_matches_pytorch(gan_run, tmp_path):
    res = physnn.export(gan_run, tmp_path / "gan.onnx")
    assert res.inputs == {"conditions": ["N", 3], "class_index": ["N"], "z": ["N", 8], "noise": ["N", 3, 24, 24]}
    loaded = load_run(gan_run, device="cpu")
    task = loaded.task
    n = 9
    rng = np.random.default_rng(1)
    raw = task.sample_conditions(n, rng)
    conditions = np.stack([raw[s] for s in task.scalars], axis=1).astype(np.float32)
    classes = np.asarray(raw["class"], dtype=np.int64)
    z = torch.randn(n, 8, generator=torch.Generator().manual_seed(2))
    noise = torch.randn(n, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    (image,) = _session(res.path).run(None, {"conditions": conditions, "class_index": classes, "z": z.numpy(),
                                             "noise": noise.numpy()})
    # the same as physnn generate's own path with the same random numbers
    cond = task.conditions_tensor(raw)
    with torch.no_grad():
        ref = task.to_phys(task.generate(loaded.model, z, cond, task.incident_of(raw),
                                         generator=torch.Generator().manual_seed(3))).numpy()
    np.testing.assert_allclose(image, ref, rtol=1e-3, atol=1e-4)
    assert (image > 0).any()
    with torch.no_grad():  # and TorchScript too, at another batch size
        traced = torch.jit.load(str(physnn.export(gan_run, tmp_path / "gan.pt", format="torchscript").path))
        (again,) = traced(torch.from_numpy(conditions[:4]), torch.from_numpy(classes[:4]), z[:4], noise[:4])
    np.testing.assert_allclose(again.numpy(), ref[:4], rtol=1e-4, atol=1e-5)
    assert loaded.task.graph(loaded.model, loaded.transform, loaded.io).input_names == list(res.inputs)


def test_export_cli_and_errors(cls_run, tmp_path):
    from physnn.cli import app

    res = runner.invoke(app, ["export", str(cls_run.run_dir), "--format", "torchscript", "--out",
                              str(tmp_path / "m.pt")], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert "inputs:  image (N x 3 x 24 x 24)" in res.output
    assert "outputs: prob (N x 2), score (N)" in res.output
    res = runner.invoke(app, ["export", str(cls_run.run_dir), "--format", "torchscript", "--out",
                              str(tmp_path / "m.pt")])
    assert res.exit_code == 2
    assert "exists" in res.output
    res = runner.invoke(app, ["export", str(cls_run.run_dir), "--format", "tflite", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "--format 'tflite': expected one of onnx, torchscript" in res.output
    assert not (tmp_path / "x").exists()
    res = runner.invoke(app, ["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "y.onnx")])
    assert res.exit_code == 2
    assert not (tmp_path / "y.onnx").exists()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_bidirectional_rnn_exports_exactly(events_file, tmp_path, fmt):
    from test_sequence_training import events_config

    cfg = events_config(events_file, task="classification", epochs=1,
                        model={"name": "lstm", "params": {"hidden_size": 6, "layers": 2, "bidirectional": True,
                                                          "readout": "last"}})
    physnn.train(cfg, out=tmp_path / "bi", progress=False)
    loaded = load_run(tmp_path / "bi", device="cpu")
    res = physnn.export(loaded, tmp_path / f"bi.{fmt}", format=fmt)
    encoder = loaded.model.stages[1]
    assert encoder.packing == "packed"  # the export put the loaded model back as it was
    assert not hasattr(encoder, "layerwise_rnn")
    raw = next(iter_raw(plan_prediction(loaded.config.data, events_file, None, None).config)).select(np.arange(30))
    ref = physnn.predict(loaded, events_file).arrays["score"][:30]
    for length, fill in ((int(raw.seq_counts.max()) + 4, 50.0), (loaded.transform.max_length, -3.0)):
        seq, counts = _padded(raw, length, fill)
        if fmt == "onnx":
            _prob, score = _session(res.path).run(None, {"sequence": seq, "length": counts})
        else:
            with torch.no_grad():
                _prob, score = torch.jit.load(str(res.path))(torch.from_numpy(seq), torch.from_numpy(counts))
        np.testing.assert_allclose(np.asarray(score), ref, rtol=1e-4, atol=1e-5)


def test_onnx_autoencoder_matches_denoise(ae_run, showers_file, tmp_path):
    res = physnn.export(ae_run.run_dir, tmp_path / "ae.onnx")
    assert res.inputs == {"image": ["N", 3, 24, 24]}
    assert res.outputs == {"reconstruction": ["N", 3, 24, 24]}
    ref = np.asarray(physnn.denoise(ae_run.run_dir, showers_file).arrays["image"], dtype=np.float32)
    for n in (23, 1):
        (rec,) = _session(res.path).run(None, {"image": _images(showers_file, n)})
        assert rec.shape == (n, 3, 24, 24)
        np.testing.assert_allclose(rec, ref[:n], rtol=1e-4, atol=1e-4)
    assert _onnx_meta(res.path)["task"] == "reconstruction"


def _mc_agreement(graph_mean, graph_spread, ref_mean, ref_spread, t):
    """Two independent T-pass MC means differ by ~sqrt(2) x spread / sqrt(T). Standardised, the median |z| is
    0.67 for Gaussian scatter (the median, because near-saturated scores give heavy tails); and the median ratio
    of the spreads."""
    uncertain = ref_spread > 1e-3 * np.abs(ref_mean).max()  # saturated scores (spread ~ 0) compare at float32 rounding
    assert uncertain.sum() >= 30
    z = (graph_mean - ref_mean)[uncertain] / (np.sqrt(2.0 / t) * ref_spread[uncertain])
    return float(np.median(np.abs(z))), float(np.median(graph_spread[uncertain] / ref_spread[uncertain]))


def test_onnx_with_mc_dropout_matches_predict_mc(cls_run, reg_run, epi_file, showers_file, tmp_path):
    t, n = 400, 200
    res = physnn.export(cls_run.run_dir, tmp_path / "cls_mc.onnx", mc_samples=t)
    assert res.outputs == {"prob": ["N", 2], "score": ["N"], "prob_std": ["N", 2], "score_std": ["N"]}
    assert _onnx_meta(res.path)["mc_samples"] == t
    session = _session(res.path)
    images = _images(epi_file, n)
    prob, score, prob_std, score_std = session.run(None, {"image": images})
    assert not np.array_equal(score, session.run(None, {"image": images})[1])  # new dropout masks every run
    np.testing.assert_allclose(prob.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(prob_std[:, 1], score_std)
    ref = physnn.predict(cls_run.run_dir, epi_file, mc_samples=t).arrays
    scatter, ratio = _mc_agreement(score, score_std, ref["score"][:n], ref["score_std"][:n], t)
    assert 0.45 < scatter < 1.0
    assert 0.9 < ratio < 1.1
    # a regressor: the deterministic central value, aleatoric σ and epistemic spread (raw), their calibrated
    # total, in GeV
    res = physnn.export(reg_run.run_dir, tmp_path / "reg_mc.onnx", mc_samples=t)
    assert list(res.outputs) == ["pred", "aleatoric", "epistemic", "std"]
    pred, sigma, epistemic, std = _session(res.path).run(None, {"image": _images(showers_file, n)})
    predicted = physnn.predict(reg_run.run_dir, showers_file, mc_samples=t)
    ref, scale = predicted.arrays, predicted.meta["sigma_scale"]["energy"]
    np.testing.assert_allclose(pred[:, 0], ref["energy_pred"][:n], rtol=1e-4, atol=1e-4)  # no MC noise: the same
    _, ratio = _mc_agreement(pred[:, 0], epistemic[:, 0], ref["energy_pred"][:n], ref["energy_epistemic"][:n], t)
    assert 0.9 < ratio < 1.1
    # the deterministic pass's σ, as predict's: no MC noise either
    np.testing.assert_allclose(sigma[:, 0], ref["energy_aleatoric"][:n], rtol=1e-4, atol=1e-4)
    rho = predicted.meta["epistemic_weight"]["energy"]  # the epistemic part's weight, fitted with the scale
    assert min(abs(rho / g - 1) for g in RHO_GRID) < 1e-6  # one of the grid's (a float32 in the task)
    np.testing.assert_allclose(std**2, scale**2 * (sigma**2 + (rho * epistemic) ** 2), rtol=1e-4)
    # the deterministic graph of the same run is unchanged by the MC export (the dropout layers were put back)
    (det,) = _session(physnn.export(reg_run.run_dir, tmp_path / "reg.onnx").path).run(
        None, {"image": _images(showers_file, 5)})[:1]
    np.testing.assert_allclose(det[:, 0], physnn.predict(reg_run.run_dir, showers_file).arrays["energy_pred"][:5],
                               rtol=1e-4, atol=1e-4)


def test_onnx_mc_dropout_between_rnn_layers(events_file, tmp_path):
    from test_sequence_training import events_config

    cfg = events_config(events_file, task="regression", epochs=2,
                        model={"name": "gru", "params": {"hidden_size": 8, "layers": 2, "dropout": 0.3,
                                                         "bidirectional": True, "head": []}})
    physnn.train(cfg, out=tmp_path / "gru", progress=False)
    t, n = 300, 120
    res = physnn.export(tmp_path / "gru", tmp_path / "gru_mc.onnx", mc_samples=t)
    loaded = load_run(tmp_path / "gru", device="cpu")
    few = physnn.simulate("events", tmp_path / "few.root", events=n, seed=9).path  # T passes over n events only
    raw = next(iter_raw(plan_prediction(loaded.config.data, few, None, None).config))
    seq, counts = _padded(raw, loaded.transform.max_length, 0.0)
    pred, _sigma, epistemic, _std = _session(res.path).run(None, {"sequence": seq, "length": counts})
    ref = physnn.predict(loaded, few, mc_samples=t).arrays
    np.testing.assert_allclose(pred[:, 0], ref["mass_pred"][:n], rtol=1e-4, atol=1e-3)  # the deterministic pass
    _, ratio = _mc_agreement(pred[:, 0], epistemic[:, 0], ref["mass_pred"][:n], ref["mass_epistemic"][:n], t)
    assert 0.9 < ratio < 1.1


def test_mc_export_errors(gan_run, ae_run, tmp_path):
    with pytest.raises(ConfigError, match="--mc-samples -1: MC dropout needs T >= 2"):
        physnn.export(ae_run.run_dir, tmp_path / "x.onnx", mc_samples=-1)
    with pytest.raises(ConfigError, match="not a generation run"):
        physnn.export(gan_run, tmp_path / "g.onnx", mc_samples=10)
    with pytest.raises(ConfigError, match="not a reconstruction run"):
        physnn.export(ae_run.run_dir, tmp_path / "a.onnx", mc_samples=10)
    assert not list(tmp_path.iterdir())


def test_an_rnn_run_exports_twice_in_one_process(seq_run, events_file, tmp_path):
    """A notebook exports, then exports again (e.g. with MC dropout): torch.export's non-strict capture of an
    RNN fails after a first ONNX export in the process (static time axis), so the second export must not use it."""
    first = physnn.export(seq_run, tmp_path / "a.onnx")
    second = physnn.export(seq_run, tmp_path / "b.onnx")
    loaded = load_run(seq_run)
    raw = next(iter_raw(plan_prediction(loaded.config.data, events_file, None, None).config)).select(np.arange(30))
    for length in (int(raw.seq_counts.max()) + 2, 3):  # the time axis stays dynamic in both graphs
        seq, counts = _padded(raw, length, 0.0)
        a, b = (_session(r.path).run(None, {"sequence": seq, "length": counts})[0] for r in (first, second))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_a_refused_dropout_layer_leaves_the_model_as_it_was():
    from torch import nn

    from physnn.errors import ConfigError
    from physnn.inference.export import _dropout_drawn_in_graph

    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.2), nn.AlphaDropout(0.2))
    with pytest.raises(ConfigError, match="AlphaDropout is not supported"), _dropout_drawn_in_graph(model, True):
        pass
    assert type(model[1]) is nn.Dropout  # swapped before the refusal, put back
