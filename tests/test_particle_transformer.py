"""The particle_transformer family: pairwise features as `vector` computes them, masks, permutations, MC dropout,
ensembles and the ONNX graph (with its kinematics input) against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import physnn
from physnn.data.convert import pad_sequences
from physnn.errors import BranchError, ConfigError
from physnn.models.particle_transformer import pair_features
from physnn.models.registry import ModelConfig, ModelIO, build_model

FEATURES = 3
KINEMATICS = ["part_pt", "part_eta", "part_phi", "part_e"]
TINY = {"embedding": [{"type": "dense", "units": 8}], "heads": 2, "blocks": 2, "pair_embedding": [8],
        "head": [{"type": "dense", "units": 8}, {"type": "dropout", "rate": 0.2}]}


def four_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 4) pt, eta, phi, energy of particles with masses up to 2 GeV."""
    pt = rng.uniform(1.0, 50.0, n)
    eta = rng.uniform(-2.5, 2.5, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    mass = rng.uniform(0.0, 2.0, n)
    return np.stack([pt, eta, phi, np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)], axis=1)


def build(params: dict | None = None, *, length: int = 30, outputs: int = 2, kinematics: bool = True):
    torch.manual_seed(0)
    io = ModelIO(sequence=(length, FEATURES), outputs=outputs, kinematics=kinematics)
    return build_model(ModelConfig(name="particle_transformer", params={**TINY, **(params or {})}), io).eval()


def particles(rng: np.random.Generator, counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Flat (M, FEATURES + 4) content, features then four-vectors, and the counts."""
    counts_arr = np.array(counts, dtype=np.int64)
    m = int(counts_arr.sum())
    content = np.concatenate([rng.normal(size=(m, FEATURES)), four_vectors(rng, m)], axis=1).astype(np.float32)
    return content, counts_arr


def batch(rng: np.random.Generator, counts: list[int], length: int) -> dict[str, torch.Tensor]:
    return padded(*particles(rng, counts), length)


def padded(content: np.ndarray, counts: np.ndarray, length: int) -> dict[str, torch.Tensor]:
    x, mask, lengths = pad_sequences(content, counts, length)
    return {"sequence": torch.from_numpy(x[..., :FEATURES].copy()), "kinematics": torch.from_numpy(x[..., FEATURES:]),
            "mask": torch.from_numpy(mask), "length": torch.from_numpy(lengths)}


def test_pair_features_equal_vectors(rng):
    vector = pytest.importorskip("vector")
    kin = four_vectors(rng, 12)
    kin[3] = [20.0, 0.1, 3.1, 25.0]  # and a pair across phi = ±π
    kin[4] = [10.0, -0.2, -3.1, 12.0]
    got = pair_features(torch.from_numpy(kin)[None], eps=1e-300)[0].numpy()  # float64 throughout
    v = vector.array({"pt": kin[:, 0], "eta": kin[:, 1], "phi": kin[:, 2], "E": kin[:, 3]})
    i, j = np.triu_indices(len(kin), k=1)
    a, b = v[i], v[j]
    delta = a.deltaRapidityPhi(b)
    pt_min = np.minimum(a.pt, b.pt)
    expected = np.stack([np.log(pt_min * delta), np.log(pt_min / (a.pt + b.pt)), np.log(delta),
                         np.log((a + b).mass2)], axis=1)
    np.testing.assert_allclose(got[i, j], expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got[j, i], expected, rtol=1e-9, atol=1e-9)  # symmetric
    assert np.abs(a.deltaphi(b)).max() <= np.pi  # the ±π pair was wrapped, not 6.2 apart
    np.testing.assert_allclose(np.exp(got[3, 4, 2]), np.hypot(v[3].rapidity - v[4].rapidity, 2 * np.pi - 6.2),
                               rtol=1e-9)


@pytest.mark.parametrize("params", [{"readout": "class_attention"}, {"readout": "mean"},
                                    {"readout": "attention", "selections": 2}])
def test_prediction_does_not_depend_on_the_padding(params, rng):
    content, counts = particles(rng, [1, 3, 7, 12, 5, 0])
    model = build(params)
    with torch.no_grad():
        short = model(padded(content, counts, 12))
        long = model(padded(content, counts, 30))
        junk = padded(content, counts, 30)
        pad = ~junk["mask"]
        junk["sequence"][pad] = torch.randn(int(pad.sum()), FEATURES) * 100
        junk["kinematics"][pad] = torch.tensor([float("inf"), float("nan"), 1e4, -3.0])  # junk four-vectors
        garbage = model(junk)
        alone = torch.cat([model(padded(content[:1], counts[:1], 30)), model(padded(content[1:11], counts[1:3], 25))])
    assert torch.isfinite(short).all()
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(short, garbage, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(short[:3], alone, atol=1e-5, rtol=1e-5)  # batch neighbours do not matter


@pytest.mark.parametrize("params", [{"readout": "class_attention"}, {"readout": "max"},
                                    {"readout": "sum", "selections": 2}])
def test_shuffling_the_particles_changes_nothing(params, rng):
    counts = np.array([6, 9, 2, 11])
    m = int(counts.sum())
    content = np.concatenate([rng.normal(size=(m, FEATURES)), four_vectors(rng, m)], axis=1).astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order = np.concatenate([s + rng.permutation(c) for s, c in zip(starts, counts, strict=True)])
    model = build(params)
    with torch.no_grad():
        a = model(padded(content, counts, 14))
        b = model(padded(content[order], counts, 14))
        swapped = model(padded(np.concatenate([content[:, :FEATURES], content[::-1, FEATURES:]], axis=1),
                               counts, 14))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a, swapped, atol=1e-3)  # the four-vectors matter: other ones, other outputs


def test_the_pair_bias_reaches_the_attention(rng):
    b = batch(rng, [4, 6], 8)
    model = build()
    with torch.no_grad():
        a = model(b)
        other = dict(b, kinematics=b["kinematics"] * torch.tensor([1.0, 1.0, 1.0, 3.0]))  # heavier pairs
        assert not torch.allclose(a, model(other), atol=1e-4)
        plain = build({"pair_features": False}, kinematics=False)
        assert plain.stages[1].pairs is None
        torch.testing.assert_close(plain(b), plain(other))  # a plain transformer ignores them


def test_mc_dropout_caches_what_has_no_dropout(rng):
    from physnn.models.mc_dropout import mc_forward

    b = batch(rng, [3, 8, 5], 10)
    head_only = build()
    assert head_only.first_stochastic_stage() == 4  # embedding, encoder, scalars, dense once
    inside = build({"dropout": 0.3, "head": []})
    assert inside.first_stochastic_stage() == 1  # the attention blocks are sampled
    for model in (head_only, inside):
        torch.manual_seed(1)
        samples = mc_forward(model, b, 20)
        assert samples.shape == (20, 3, 2)
        assert samples.std(0).min() > 0
        assert not model.training


def test_bad_params_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"add kinematics: \[part_pt, part_eta, part_phi, part_e\]"):
        build(kinematics=False)
    with pytest.raises(ConfigError, match="width 8 is not a multiple of heads \\(3\\)"):
        build({"heads": 3})
    with pytest.raises(ValueError, match="readout"):
        build({"readout": "last"})  # the last particle of a set means nothing
    with pytest.raises(ValueError, match="kinematics"):
        physnn.config.SequenceInput(features=["a"], kinematics=["pt", "eta", "phi"])


def _config(events_file, *, task: str = "classification", epochs: int = 2, params: dict | None = None,
            **train) -> dict:
    from test_sequence_training import SEQUENCE, events_config

    cfg = events_config(events_file, task=task, epochs=epochs,
                        model={"name": "particle_transformer", "params": {**TINY, **(params or {})}})
    cfg["data"]["sequence"] = {**SEQUENCE, "kinematics": KINEMATICS}
    cfg["train"].update(train)
    return cfg


@pytest.fixture(scope="module")
def part_run(events_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "part"
    cfg = _config(events_file, task="regression", epochs=3, params={"selections": 2})
    return physnn.train(cfg, out=out, progress=False)


@pytest.mark.slow  # a dynamo ONNX export: ~20 s
def test_trains_predicts_with_mc_dropout_and_exports_to_onnx(part_run, events_file, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from physnn.data.dataset import iter_raw
    from physnn.inference.loading import load_run
    from physnn.inference.plan import plan_prediction

    loaded = load_run(part_run.run_dir, device="cpu")
    assert loaded.io.kinematics
    ref = physnn.predict(part_run.run_dir, events_file).arrays
    mc = physnn.predict(part_run.run_dir, events_file, mc_samples=8).arrays
    assert np.median(mc["mass_epistemic"]) > 0
    res = physnn.export(part_run.run_dir, tmp_path / "part.onnx")
    assert res.inputs == {"sequence": ["N", "L", 5], "length": ["N"], "kinematics": ["N", "L", 4]}
    raw = next(iter_raw(plan_prediction(loaded.config.data, events_file, None, None).config)).select(np.arange(40))
    session = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    for length, fill in ((int(raw.seq_counts.max()) + 3, 99.0), (loaded.transform.max_length, 0.0)):
        x = np.full((40, length, raw.seq_content.shape[1]), fill, dtype=np.float32)
        starts = np.concatenate([[0], np.cumsum(raw.seq_counts)[:-1]])
        for i, (s, c) in enumerate(zip(starts, raw.seq_counts, strict=True)):
            take = min(c, length)
            x[i, :take] = raw.seq_content[s:s + take]
        pred, sigma = session.run(None, {"sequence": x[..., :5].copy(), "length": raw.seq_counts,
                                         "kinematics": x[..., 5:].copy()})
        np.testing.assert_allclose(pred[:, 0], ref["mass_pred"][:40], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(sigma[:, 0], ref["mass_std"][:40], rtol=1e-4, atol=1e-3)
    graph = physnn.export(part_run.run_dir, tmp_path / "part_mc.onnx", mc_samples=20)  # MC dropout in the graph
    mc_pred, _, epistemic, _ = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"]).run(
        None, {"sequence": x[..., :5].copy(), "length": raw.seq_counts, "kinematics": x[..., 5:].copy()})
    assert np.median(epistemic[:, 0]) > 0
    diff = np.abs(mc_pred[:, 0] - mc["mass_pred"][:40])  # two draws, T = 20 (graph) and T = 8 passes
    assert np.median(diff) < 2 * np.median(mc["mass_epistemic"][:40]) + 1e-3


def test_an_ensemble_of_transformers_classifies(events_file, tmp_path):
    result = physnn.train(_config(events_file, epochs=2, ensemble=2), out=tmp_path / "ens", progress=False)
    assert len(result.members) == 2
    pred = physnn.predict(result.run_dir, events_file).arrays
    assert np.median(pred["score_std"]) > 0  # the members disagree
    assert result.members[0].best["val_auc"] > 0.7


def test_selections_hand_the_head_the_mass_of_the_picked_particles(rng):
    from physnn.models.particle_transformer import FourVectorSums

    content, counts = particles(rng, [2, 5])
    b = padded(content, counts, 6)
    sums = FourVectorSums(4, 1).eval()
    with torch.no_grad():
        sums.select.weight.zero_()
        sums.select.bias.fill_(50.0)  # every real particle picked with weight 1
        got = sums(torch.zeros(2, 6, 4), b["kinematics"], b["mask"][..., None])
    vector = pytest.importorskip("vector")
    kin = content[:, FEATURES:].astype(np.float64)
    v = vector.array({"pt": kin[:, 0], "eta": kin[:, 1], "phi": kin[:, 2], "E": kin[:, 3]})
    pair = v[0] + v[1]
    five = v[2] + v[3] + v[4] + v[5] + v[6]
    norm = sums.norm  # eval mode: (x - 0) / sqrt(1 + eps)
    expected = np.array([[pair.mass, pair.pt], [five.mass, five.pt]]) / np.sqrt(1 + norm.eps)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4)
    model = build({"selections": 3})
    model.train()
    out = model(dict(b, sequence=b["sequence"][:1], kinematics=b["kinematics"][:1], mask=b["mask"][:1],
                     length=b["length"][:1]))  # a training batch of one event
    assert torch.isfinite(out).all()


def test_the_data_layer_carries_the_kinematics_unstandardised(events_file):
    import awkward as ak
    import uproot

    cfg = {"files": str(events_file), "label": "label",
           "sequence": {"features": ["part_pt", "part_charge"], "sort_by": "part_pt", "max_length": 8,
                        "kinematics": KINEMATICS}, "step_size": 400}
    data = physnn.load(cfg)
    kin, mask, seq = (data.train.inputs[k] for k in ("kinematics", "mask", "sequence"))
    assert kin.shape == (*seq.shape[:2], 4)
    assert len(data.transform.center["sequence"]) == 2  # the features only
    center, scale = data.transform.center["sequence"][0], data.transform.scale["sequence"][0]
    assert scale > 1.0  # pt standardised as a feature...
    torch.testing.assert_close(seq[mask][:, 0], (kin[mask][:, 0] - center) / scale)
    with uproot.open(events_file) as f:
        ev = f["events"].arrays(KINEMATICS)[data.train.entry[:5]]
    order = ak.argsort(ev["part_pt"], axis=1, ascending=False)
    for j, name in enumerate(KINEMATICS):  # ...and in GeV, sorted and clipped like it, as a kinematic
        expected = ak.to_numpy(ak.fill_none(ak.pad_none(ev[name][order], 8, clip=True), 0.0))
        np.testing.assert_allclose(kin[:5, :, j].numpy(), expected, rtol=1e-6)
    assert (kin[~mask] == 0).all()
    streamed = next(iter(physnn.stream(cfg, data.transform, split="train")))
    torch.testing.assert_close(streamed.inputs["kinematics"], kin[: len(streamed)])
    bad = {**cfg, "sequence": {**cfg["sequence"], "kinematics": ["part_pt", "part_eta", "part_phi", "n_part"]}}
    with pytest.raises(BranchError, match=r"n_part.*expected a jagged branch"):
        physnn.load(bad)


def test_four_vector_sums_stay_float32_under_autocast():
    from physnn.models.particle_transformer import FourVectorSums

    torch.manual_seed(0)
    sums = FourVectorSums(8, 1).eval()
    x = torch.randn(3, 2, 8)
    kinematics = torch.tensor([[[45.0, 0.3, 0.1, 47.3], [44.0, -0.9, 2.9, 63.1]]]).repeat(3, 1, 1)
    real = torch.ones(3, 2, 1, dtype=torch.bool)
    plain = sums(x, kinematics, real)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = sums(x, kinematics, real)
    torch.testing.assert_close(mixed.float(), plain, rtol=1e-4, atol=1e-4)  # bf16 sums: ~2% off a Z's mass
