"""The pfn family (DeepSets / Particle Flow Network): permutation and mask invariance, Lorentz pooling, MC dropout,
ensembles, ONNX export, particle ID as a per-particle define."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import physnn
from physnn.data.convert import pad_sequences
from physnn.errors import ConfigError
from physnn.models.registry import ModelConfig, ModelIO, build_model

FEATURES = 5  # (px, py, pz, E, x): the first four a four-momentum in GeV
LORENTZ = {"four_momentum": [0, 1, 2, 3], "channels": 2, "scale": 50.0}
VARIANTS = [
    {},
    {"readout": "mean"},
    {"readout": "max", "embedding": [{"type": "dense", "units": 8}, {"type": "dropout", "rate": 0.1}]},
    {"embedding": []},
    {"lorentz": LORENTZ},
    {"lorentz": {**LORENTZ, "channels": 1}, "readout": "mean"},
]
PFN_DATA = {
    "define": {"is_muon": "abs(part_pid) == 13", "part_px": "part_pt * cos(part_phi)",
               "part_py": "part_pt * sin(part_phi)", "part_pz": "part_pt * sinh(part_eta)"},
    "sequence": {"features": ["part_px", "part_py", "part_pz", "part_e", "part_pt", "part_eta", "part_charge",
                              "is_muon"], "sort_by": "part_pt", "max_length": 16},
    "standardize": {"exclude": ["part_px", "part_py", "part_pz", "part_e", "part_charge", "is_muon"]},
}
TINY_PFN = {"name": "pfn", "params": {"embedding": [{"type": "dense", "units": 16}],
                                      "lorentz": {"four_momentum": [0, 1, 2, 3]},
                                      "head": [{"type": "dense", "units": 16}, {"type": "dropout", "rate": 0.2}]}}


def build(params: dict, *, scalars: int = 0, outputs: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    params = {"embedding": [{"type": "dense", "units": 8}, {"type": "dense", "units": 8}], **params}
    io = ModelIO(sequence=(40, FEATURES), scalars=scalars, outputs=outputs)
    return build_model(ModelConfig(name="pfn", params=params), io).eval()


def particles(rng: np.random.Generator, counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    n = int(sum(counts))
    p = rng.normal(scale=20.0, size=(n, 3))
    e = np.sqrt((p**2).sum(1) + rng.uniform(0, 5, n) ** 2)
    content = np.column_stack([p, e, rng.normal(size=n)]).astype(np.float32)
    return content, np.array(counts, dtype=np.int64)


def batch(content: np.ndarray, counts: np.ndarray, length: int) -> dict[str, torch.Tensor]:
    x, mask, lengths = pad_sequences(content, counts, length)
    return {"sequence": torch.from_numpy(x), "mask": torch.from_numpy(mask), "length": torch.from_numpy(lengths)}


@pytest.mark.parametrize("params", VARIANTS)
def test_shuffling_the_real_particles_leaves_the_output_unchanged(params, rng):
    counts = [1, 3, 7, 12, 5]
    content, counts_arr = particles(rng, counts)
    model = build(params)
    starts = np.concatenate([[0], np.cumsum(counts_arr)[:-1]])
    shuffled = np.concatenate([content[s + rng.permutation(c)] for s, c in zip(starts, counts, strict=True)])
    assert not np.array_equal(shuffled, content)
    with torch.no_grad():
        a = model(batch(content, counts_arr, 12))
        b = model(batch(shuffled, counts_arr, 12))
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("params", VARIANTS)
def test_padding_values_and_length_do_not_change_the_output(params, rng):
    content, counts = particles(rng, [1, 3, 7, 12, 5, 0])
    model = build(params)
    with torch.no_grad():
        short = model(batch(content, counts, 12))
        long = model(batch(content, counts, 40))
        junk = batch(content, counts, 40)
        pad = ~junk["mask"]
        junk["sequence"][pad] = torch.randn(int(pad.sum()), FEATURES) * 100
        garbage = model(junk)
        only_length = {"sequence": junk["sequence"], "length": junk["length"]}  # as an exported graph gets it
        no_mask = model(only_length)
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(short, garbage, atol=1e-5, rtol=1e-5)
    # without a mask an empty event's first (padded) row counts as its one particle, as for every sequence model
    torch.testing.assert_close(short[:5], no_mask[:5], atol=1e-5, rtol=1e-5)


def test_lorentz_pooling_computes_the_invariant_mass_of_the_gated_particles(rng):
    pooling = build({"lorentz": {**LORENTZ, "channels": 1}}).stages[1]
    content, counts = particles(rng, [6, 4])
    b = batch(content, counts, 8)
    chosen = torch.zeros(b["sequence"].shape[:2])
    chosen[0, [1, 4]] = chosen[1, [1, 3]] = 1.0
    phi = torch.zeros(*chosen.shape, pooling.width)
    phi[..., 0] = chosen
    with torch.no_grad():  # a gate that is 1 exactly where Φ's first output is 1, 0 elsewhere
        pooling.gate.weight.zero_()
        pooling.gate.weight[0, 0] = 2e4
        pooling.gate.bias.fill_(-1e4)
        out = pooling(torch.cat([phi, b["sequence"][..., :4]], dim=-1), b)
    pairs = [content[[1, 4]], content[[7, 9]]]
    expected = [np.sqrt(p[:, 3].sum() ** 2 - (p[:, :3].sum(0) ** 2).sum()) for p in pairs]
    np.testing.assert_allclose(out[:, pooling.width].numpy() * LORENTZ["scale"], expected, rtol=1e-4)
    pt = [np.hypot(*p[:, :2].sum(0)) for p in pairs]
    np.testing.assert_allclose(out[:, pooling.width + 1].numpy() * LORENTZ["scale"], pt, rtol=1e-4)


def test_select_keeps_the_other_particles_out_of_the_sums(rng):
    model = build({"lorentz": {**LORENTZ, "channels": 1, "select": 4}})
    pooling = model.stages[1]
    content, counts = particles(rng, [6, 4])
    content[:, 4] = 0.0
    content[[1, 4, 7, 9], 4] = 1.0  # the selected particles: two per event
    b = batch(content, counts, 8)
    with torch.no_grad():
        pooling.gate.weight.zero_()
        pooling.gate.bias.zero_()
        out = pooling(model.stages[0](b["sequence"], b), b)
    pairs = [content[[1, 4]], content[[7, 9]]]  # every weight is 0.5: half the selected pair's four-momentum
    expected = [0.5 * np.sqrt(p[:, 3].sum() ** 2 - (p[:, :3].sum(0) ** 2).sum()) for p in pairs]
    np.testing.assert_allclose(out[:, pooling.width].numpy() * LORENTZ["scale"], expected, rtol=1e-3)


def test_mc_dropout_caches_phi_and_the_pooling(rng):
    from physnn.models.mc_dropout import mc_forward, naive_mc_forward

    model = build({"lorentz": LORENTZ, "head": [{"type": "dense", "units": 8}, {"type": "dropout", "rate": 0.5}]})
    assert model.first_stochastic_stage() == 4  # Φ, pooling, scalars, dense run once
    content, counts = particles(rng, [3, 8, 5])
    b = batch(content, counts, 10)
    torch.manual_seed(1)
    cached = mc_forward(model, b, 400)
    naive = naive_mc_forward(model, b, 400)
    assert cached.shape == (400, 3, 2)
    assert cached.std(0).min() > 0
    torch.testing.assert_close(cached.mean(0), naive.mean(0), atol=0.1, rtol=0.1)
    assert not model.training


def test_bad_pfn_params_are_one_line_errors():
    with pytest.raises(ConfigError, match="beyond the 5 sequence features"):
        build({"lorentz": {"four_momentum": [0, 1, 2, 7]}})
    with pytest.raises(ValueError, match="four distinct"):
        ModelConfig(name="pfn", params={"lorentz": {"four_momentum": [0, 1, 1, 3]}})
    with pytest.raises(ValueError, match="readout"):
        ModelConfig(name="pfn", params={"readout": "last"})


def test_pfn_is_listed_with_its_parameters():
    from typer.testing import CliRunner

    from physnn.cli import app

    res = CliRunner().invoke(app, ["models"])
    assert res.exit_code == 0
    assert "pfn" in res.output
    assert "Particle Flow Network" in res.output


def test_is_muon_is_a_per_particle_define_in_the_sequence(events_file):
    import awkward as ak
    import uproot
    from test_sequence_training import events_config

    cfg = events_config(events_file, task="classification")["data"]
    cfg.update(PFN_DATA, split={"val": 0, "test": 0})
    data = physnn.load(cfg).train
    seq, length = data.inputs["sequence"], data.inputs["length"]
    is_muon = seq[..., 7]
    assert set(torch.unique(is_muon).tolist()) <= {0.0, 1.0}
    assert torch.all(is_muon.sum(1) == 2)  # both muons of every event, among its 16 hardest particles
    with uproot.open(events_file) as f:
        pid = f["events"]["part_pid"].array()
        px = (f["events"]["part_pt"].array() * np.cos(f["events"]["part_phi"].array()))
    first = int(data.entry[0])
    mu_px = np.sort(ak.to_numpy(px[first][abs(pid[first]) == 13]))
    got = np.sort(seq[0, : int(length[0]), 0][is_muon[0, : int(length[0])] == 1].numpy())
    np.testing.assert_allclose(got, mu_px, rtol=1e-5)  # raw GeV, as excluded from standardisation


@pytest.fixture(scope="module")
def pfn_run(events_file, tmp_path_factory):
    from test_sequence_training import events_config

    cfg = events_config(events_file, task="regression", model=TINY_PFN, epochs=1)
    cfg["data"].update(PFN_DATA)
    out = tmp_path_factory.mktemp("runs") / "pfn"
    physnn.train(cfg, out=out, progress=False)
    return out


def test_onnx_export_of_a_pfn_matches_predict(pfn_run, events_file, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from test_export import _padded

    from physnn.data.dataset import iter_raw
    from physnn.inference.loading import load_run
    from physnn.inference.plan import plan_prediction

    res = physnn.export(pfn_run, tmp_path / "pfn.onnx")
    assert res.inputs == {"sequence": ["N", "L", 8], "length": ["N"]}
    loaded = load_run(pfn_run, device="cpu")
    raw = next(iter_raw(plan_prediction(loaded.config.data, events_file, None, None).config)).select(np.arange(40))
    ref = physnn.predict(pfn_run, events_file).arrays
    session = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    seq, counts = _padded(raw, loaded.transform.max_length + 5, 77.0)
    pred, sigma = session.run(None, {"sequence": seq, "length": counts})
    np.testing.assert_allclose(pred[:, 0], ref["mass_pred"][:40], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(sigma[:, 0], ref["mass_std"][:40], rtol=1e-4, atol=1e-3)


def test_a_pfn_ensemble_predicts_with_mc_dropout(events_file, tmp_path):
    from test_sequence_training import events_config

    cfg = events_config(events_file, task="classification", model=TINY_PFN, epochs=1)
    cfg["data"].update(PFN_DATA)
    cfg["train"]["ensemble"] = 2
    run = physnn.train(cfg, out=tmp_path / "ens", progress=False)
    pred = physnn.predict(run.run_dir, events_file, mc_samples=5).arrays
    assert np.all((pred["score"] >= 0) & (pred["score"] <= 1))
    assert np.all(pred["score_std"] >= 0)
    assert pred["score_std"].max() > 0
