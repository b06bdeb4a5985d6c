"""A regression target relative to a baseline (``targets: {energy: {baseline: cell_sum, transform: log}}``): the
network regresses log(E / baseline), everything physnn writes comes back in GeV; the cell sums a CNN can join."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import uproot
from typer.testing import CliRunner

import physnn
from physnn.cli.app import app
from physnn.config import DataConfig
from physnn.data.dataset import load
from physnn.errors import BranchError, DataError
from physnn.io.selection import Expression
from physnn.models.registry import ModelConfig, ModelIO, build_model
from physnn.models.tasks import Task

runner = CliRunner()

TINY = {"name": "cnn", "params": {
    "features": [{"type": "conv", "filters": 4, "kernel_size": 3}, {"type": "pool", "mode": "average", "pool_size": 4},
                 {"type": "flatten"}],
    "head": [{"type": "dense", "units": 16}, {"type": "dropout", "rate": 0.2}],
}}


def _task(transform: str) -> Task:
    return Task("regression", "gaussian", targets=["energy"], center=[0.3], scale=[0.2], transforms=[transform],
                baselines=["cell_sum"], sigma_scale={"deterministic": [1.5]})


@pytest.mark.parametrize("transform", ["log", "none"])
def test_relative_target_round_trips_to_gev_with_its_error_bars(transform):
    task = _task(transform)
    baseline = torch.tensor([[2.0], [10.0], [80.0]])
    zero = 0.0 if transform == "log" else 1.0  # the network predicts "no correction": log-ratio 0, ratio 1
    mu = (zero - 0.3) / 0.2
    var_raw = math.log(math.expm1(0.01 / 0.2**2))  # softplus^-1: a variance of 0.01 in the network's units
    out = torch.cat([torch.full((3, 1), mu), torch.full((3, 1), var_raw), baseline], dim=1)
    pred = task.predict(out)
    torch.testing.assert_close(pred["mean"], baseline)  # exactly the baseline, per event
    v = 0.01 + 1e-6 * 0.2**2  # the variance floor (MIN_VAR) in the network's units
    ratio_var = math.expm1(v) * math.exp(v) if transform == "log" else v  # a log-normal's variance at median 1
    torch.testing.assert_close(pred["var"], ratio_var * baseline**2)  # σ scales with the baseline
    summary = task.summarize(out[None], mc=False)
    torch.testing.assert_close(summary["pred"], baseline)
    torch.testing.assert_close(summary["std"], 1.5 * math.sqrt(ratio_var) * baseline)  # calibrated, in GeV
    # the loss sees log(E / baseline): a truth equal to the baseline is the mean the network predicts
    target = baseline.clone()
    at_truth = task.loss(out, {"target": target})
    off = task.loss(out, {"target": target * 1.3})
    assert torch.all(at_truth < off)


def test_config_keeps_the_baselines_when_the_targets_are_left_out():
    cfg = DataConfig(files="a.root", images={"branches": ["image"]}, define={"cell_sum": "total(image)"},
                     targets={"energy": {"transform": "log", "baseline": "cell_sum"}})
    assert cfg.baselines == {"energy": "cell_sum"}
    dumped = cfg.model_dump(mode="json")
    dumped["targets"] = []  # a data file without the truth
    assert DataConfig.model_validate(dumped).baselines == {"energy": "cell_sum"}
    plain = DataConfig(files="a.root", images={"branches": ["image"]}, targets={"energy": {"transform": "log"}})
    assert "baselines" not in plain.model_dump()
    assert "baseline" not in plain.model_dump()["target_specs"]["energy"]


def test_total_sums_an_image_over_all_its_cells():
    image = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    np.testing.assert_allclose(Expression("total(image)").values({"image": image}), image.reshape(2, -1).sum(1))
    np.testing.assert_allclose(Expression("total(image[1])").values({"image": image}), image[:, 1].sum((1, 2)))


def test_cnn_joins_the_cell_sums_exactly():
    model = build_model(ModelConfig(name="cnn", params={**TINY["params"], "sums": "per_layer"}),
                        ModelIO(image=(3, 24, 24), outputs=1))
    image = torch.rand(4, 3, 24, 24)
    side = model.side({"image": image})
    torch.testing.assert_close(side["cell_sums"], image.sum(dim=(2, 3)))
    joined = model.stages[model.n_features + 1]
    flat = torch.zeros(4, 2)
    x = joined(flat, side)
    total = image.sum(dim=(1, 2, 3))[:, None]
    torch.testing.assert_close(x[:, 2:3], torch.log1p(total))
    torch.testing.assert_close(x[:, 3:], image.sum(dim=(2, 3)) / total)
    assert model({"image": image}).shape == (4, 1)
    assert "sums" not in ModelConfig(name="cnn").params  # the default is left out: older runs keep their hash


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Showers with a raw cell sum branch (90% of the cells), and the same showers without it (data)."""
    folder = tmp_path_factory.mktemp("baseline")
    sim = folder / "sim.root"
    physnn.simulate("showers", sim, events=500, seed=11)
    with uproot.open(sim) as f:
        arrays = f["showers"].arrays(["image", "energy", "pdgid"], library="np")
    raw_sum = (0.9 * arrays["image"].reshape(len(arrays["energy"]), -1).sum(1)).astype(np.float32)
    train, data = folder / "train.root", folder / "data.root"
    with uproot.recreate(train) as f:
        f["showers"] = {**arrays, "raw_sum": raw_sum}
    with uproot.recreate(data) as f:
        f["showers"] = {"image": arrays["image"], "pdgid": arrays["pdgid"]}
    return train, data, raw_sum


def _config(path, **data) -> dict:
    energy = {"unit": "GeV", "kind": "energy", "transform": "log", "baseline": "raw_sum"}
    return {"data": {"files": str(path), "images": {"branches": ["image"]}, "targets": {"energy": energy},
                     "observers": ["pdgid"], **data},
            "model": {"name": "cnn", "params": {**TINY["params"], "sums": "per_layer"}}, "task": {"kind": "regression"},
            "train": {"epochs": 2, "batch_size": 64, "seed": 1, "early_stopping": {"patience": None}}}


@pytest.fixture(scope="module")
def relative_run(files, tmp_path_factory):
    train, _, _ = files
    out = tmp_path_factory.mktemp("runs") / "relative"
    physnn.train(_config(train), out=out, progress=False)
    return out


def test_relative_run_predicts_in_gev(relative_run, files):
    train, _, raw_sum = files
    arrays = physnn.predict(relative_run, train).arrays
    ratio = arrays["energy_pred"] / arrays["energy"]
    assert 0.5 < float(np.median(ratio)) < 2  # GeV (after 12 steps), not a log-ratio near 0
    assert np.all(arrays["energy_std"] > 0)
    # the error bar is relative: it grows with the event's baseline
    rel = arrays["energy_std"] / arrays["energy_pred"]
    assert np.corrcoef(arrays["energy_std"], raw_sum[arrays["entry"]])[0, 1] > 0.5
    assert float(np.std(rel)) < float(np.mean(rel))


def test_relative_run_exports_a_graph_in_gev(relative_run, files, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    train, _, raw_sum = files
    res = physnn.export(relative_run, tmp_path / "energy.onnx")
    assert res.inputs == {"image": ["N", 3, 24, 24], "baseline": ["N", 1]}
    ref = physnn.predict(relative_run, train).arrays
    with uproot.open(train) as f:
        image = f["showers"]["image"].array(library="np", entry_stop=30).astype(np.float32)
    session = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    pred, sigma = session.run(None, {"image": image, "baseline": raw_sum[:30, None]})
    order = np.argsort(ref["entry"])[:30]
    np.testing.assert_allclose(pred[:, 0], ref["energy_pred"][order], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(sigma[:, 0], ref["energy_std"][order], rtol=1e-4, atol=1e-3)
    mc = physnn.export(relative_run, tmp_path / "energy_mc.onnx", mc_samples=8)  # MC dropout inside the graph
    pred, *_ = ort.InferenceSession(str(mc.path), providers=["CPUExecutionProvider"]).run(
        None, {"image": image, "baseline": raw_sum[:30, None]})
    np.testing.assert_allclose(pred[:, 0], ref["energy_pred"][order], rtol=0.1)  # GeV, near the deterministic one


def test_data_file_without_the_baseline_is_one_line(relative_run, files, tmp_path):
    _, data, _ = files
    with pytest.raises(BranchError, match=r"no branch 'raw_sum'.*baseline of target 'energy'"):
        physnn.predict(relative_run, data)
    result = runner.invoke(app, ["predict", str(relative_run), str(data), "--out", str(tmp_path / "p.root")])
    assert result.exit_code == 2
    assert "raw_sum" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "p.root").exists()


def test_nonpositive_baseline_is_an_error_or_dropped(files, tmp_path):
    train, _, raw_sum = files
    with uproot.open(train) as f:
        arrays = f["showers"].arrays(["image", "energy", "pdgid"], library="np")
    bad = raw_sum.copy()
    bad[[3, 7]] = [0.0, np.nan]
    path = tmp_path / "bad.root"
    with uproot.recreate(path) as f:
        f["showers"] = {**arrays, "raw_sum": bad}
    with pytest.raises(DataError, match=r"baseline 'raw_sum' of target 'energy' has 2 values <= 0, NaN or inf"):
        load(_config(path)["data"])
    bundle = load({**_config(path)["data"], "nonfinite": "drop"})
    n = len(bundle.train) + len(bundle.val) + len(bundle.test)
    assert n == len(bad) - 2
    assert bool(torch.all(bundle.train.inputs["baseline"] > 0))


def test_example_table_reads_the_per_type_bins_of_evaluate():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "energy_vs_cell_sum.py"
    spec = importlib.util.spec_from_file_location("energy_vs_cell_sum", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    def row(model, base, lo=1.0, hi=20.0):
        return {"range": [lo, hi], "events": 100, "sigma_rel": model, "sigma_rel_err": 0.001, "coverage_1sigma": 0.68,
                "pull_std": 1.0, "baselines": {example.BASELINE: {"sigma_rel": base, "sigma_rel_err": 0.001}}}

    group = {**row(0.02, 0.02), "bins": [row(0.030, 0.020), row(0.010, 0.0105, 20.0, 100.0)]}
    rows = example.rows({"by": {"groups": {"211": group}}})
    assert [r["range"] for r in rows] == ["all", "1-20", "20-100"]
    assert rows[1]["type"] == "pi+"
    assert rows[1]["ratio"] == pytest.approx(1.5)
    assert [example.verdict(r) for r in rows] == ["within 1 s.e.", "cell sum better", "within 1 s.e."]


def test_the_baseline_joins_the_outputs_in_float32_under_autocast():
    from physnn.models.target_maps import AttachBaseline

    baseline = torch.tensor([[57.3], [93.7], [10.123]])
    layer = torch.nn.Linear(4, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = AttachBaseline()(layer(torch.randn(3, 4)), {"baseline": baseline})
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[:, 2:], baseline, rtol=0, atol=0)  # bf16 would read 57.25, 93.5, 10.125


def _empty_ish_image() -> torch.Tensor:
    """Two showers: an ordinary one, and a window the particle missed, whose noise of both signs sums to ~0
    (a 1 GeV π0 whose two photons both land outside the 24 x 24 cells)."""
    image = torch.rand(2, 3, 24, 24) * 0.05
    image[0, 0, 12, 12] = 20.0
    image[1] = 0.03 * torch.randn(3, 24, 24)
    image[1] -= image[1].mean()  # the sum of every layer and of the image is ~0
    return image


def test_per_layer_fractions_stay_bounded_when_the_layers_sum_to_almost_nothing():
    model = build_model(ModelConfig(name="cnn", params={**TINY["params"], "sums": "per_layer"}),
                        ModelIO(image=(3, 24, 24), outputs=1))
    image = _empty_ish_image()
    x = model.stages[model.n_features + 1](torch.zeros(2, 2), model.side({"image": image}))
    fractions = x[:, 3:]
    assert fractions.abs().max() <= 1.0 + 1e-6  # S_l / S would be ~1e4 for the empty window
    sums = image.sum(dim=(2, 3))
    torch.testing.assert_close(fractions[0], sums[0] / sums[0].sum())  # a positive image: S_l / S as before
