"""Sequence models (lstm, gru, seq_conv): padding invariance, masking, ordering, scalars, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physnn.data.convert import pad_sequences
from physnn.errors import ConfigError
from physnn.models.registry import ModelConfig, ModelIO, build_model

FEATURES = 3
VARIANTS = [
    ("lstm", {}),
    ("gru", {}),
    ("lstm", {"packing": "packed"}),
    ("gru", {"packing": "padded", "readout": "mean"}),
    ("lstm", {"bidirectional": True}),
    ("gru", {"layers": 2, "dropout": 0.2, "readout": "mean"}),
    ("lstm", {"readout": "max"}),
    ("gru", {"readout": "attention", "embedding": []}),
    ("lstm", {"readout": "sum", "bidirectional": True, "packing": "packed"}),
    ("seq_conv", {}),
    ("seq_conv", {"readout": "last", "kernel_size": 5, "dilation": 2}),
]


def build(name: str, params: dict, *, length: int = 40, scalars: int = 0, outputs: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, params={"hidden_size": 8, **params} if name != "seq_conv" else
                                    {"filters": [8, 8], **params}),
                        ModelIO(sequence=(length, FEATURES), scalars=scalars, outputs=outputs))
    return model.eval()


def events(rng: np.random.Generator, counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    counts_arr = np.array(counts, dtype=np.int64)
    return rng.normal(size=(int(counts_arr.sum()), FEATURES)).astype(np.float32), counts_arr


def batch(content: np.ndarray, counts: np.ndarray, length: int) -> dict[str, torch.Tensor]:
    x, mask, lengths = pad_sequences(content, counts, length)
    return {"sequence": torch.from_numpy(x), "mask": torch.from_numpy(mask), "length": torch.from_numpy(lengths)}


@pytest.mark.parametrize(("name", "params"), VARIANTS)
def test_prediction_does_not_depend_on_the_padding(name, params, rng):
    content, counts = events(rng, [1, 3, 7, 12, 5, 0])
    model = build(name, params)
    with torch.no_grad():
        short = model(batch(content, counts, 12))
        long = model(batch(content, counts, 40))
        garbage = batch(content, counts, 40)
        pad = ~garbage["mask"]
        garbage["sequence"][pad] = torch.randn(int(pad.sum()), FEATURES) * 100  # junk where padding is
        junk = model(garbage)
        alone = torch.cat([model(batch(content[:1], counts[:1], 40)),
                           model(batch(content[1:11], counts[1:3], 25))])
    assert torch.isfinite(short).all()
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(short, junk, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(short[:3], alone, atol=1e-5, rtol=1e-5)  # batch neighbours do not matter


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padded_and_packed_give_the_same_outputs_with_the_same_weights(cell, rng):
    content, counts = events(rng, [2, 9, 4, 1])
    model = build(cell, {"readout": "last"})
    encoder = model.stages[1]
    assert encoder.packing == "auto"  # padded while training, packed for predictions
    with torch.no_grad():
        encoder.packing = "padded"
        padded = model(batch(content, counts, 20))
        encoder.packing = "packed"
        packed = model(batch(content, counts, 20))
    torch.testing.assert_close(padded, packed, atol=1e-5, rtol=1e-5)
    assert build(cell, {"bidirectional": True}).stages[1].packing == "packed"


@pytest.mark.parametrize(("cell", "readout", "layers", "bidirectional"),
                         [("lstm", "last", 2, True), ("gru", "attention", 1, True), ("gru", "mean", 3, True),
                          ("lstm", "last", 2, False)])
def test_layerwise_equals_packed(cell, readout, layers, bidirectional, rng):
    content, counts = events(rng, [2, 9, 4, 1, 12])
    model = build(cell, {"bidirectional": bidirectional, "readout": readout, "layers": layers,
                         "dropout": 0.3 if layers > 1 else 0.0})
    encoder = model.stages[1]
    with torch.no_grad():
        packed = model(batch(content, counts, 15))
        encoder.use_layerwise()  # what export does: no packing, each sequence reversed within its length
        reversed_ = model(batch(content, counts, 15))
        junk = batch(content, counts, 15)
        junk["sequence"][~junk["mask"]] = 1e3
        garbage = model(junk)
        encoder.packing = "padded"
        wrong = model(batch(content, counts, 15))  # the backward direction starting in the padding
    torch.testing.assert_close(reversed_, packed, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(garbage, packed, atol=1e-5, rtol=1e-5)
    if bidirectional:
        assert not torch.allclose(wrong, packed, atol=1e-3)
    if layers > 1:
        encoder.use_layerwise(mc_dropout=True)  # the dropout between layers drawn in any mode
        with torch.no_grad():
            draws = torch.stack([model(batch(content, counts, 15)) for _ in range(3)])
        assert not torch.allclose(draws[0], draws[1])


def test_last_readout_is_the_true_last_element(rng):
    content, counts = events(rng, [4, 2])
    model = build("lstm", {"readout": "last", "embedding": []})
    encoder = model.stages[1]
    b = batch(content, counts, 6)
    with torch.no_grad():
        x = model.adapt(b)
        vec = encoder(x, model.side(b))
        full, _ = encoder.rnn(x)
    torch.testing.assert_close(vec[0], full[0, 3])
    torch.testing.assert_close(vec[1], full[1, 1])
    assert not torch.allclose(vec[1], full[1, 3])  # the RNN output in the padding


def test_particle_order_matters_to_an_rnn(rng):
    content, counts = events(rng, [6, 6])
    model = build("gru", {})
    with torch.no_grad():
        forward = model(batch(content, counts, 6))
        reversed_ = model(batch(content[::-1].copy(), counts, 6))  # both events reversed (and swapped)
    assert not torch.allclose(forward, reversed_.flip(0), atol=1e-4)


def test_scalars_are_extra_inputs(rng):
    content, counts = events(rng, [3, 5])
    model = build("lstm", {}, scalars=2)
    b = batch(content, counts, 8)
    with torch.no_grad():
        a = model({**b, "scalars": torch.zeros(2, 2)})
        c = model({**b, "scalars": torch.ones(2, 2)})
    assert a.shape == (2, 2)
    assert not torch.allclose(a, c)


def test_mc_dropout_caches_the_embedding_and_samples_rnn_dropout(rng):
    from physnn.models.mc_dropout import mc_forward

    content, counts = events(rng, [3, 8, 5])
    b = batch(content, counts, 10)
    head_only = build("lstm", {"head": [{"type": "dense", "units": 8}, {"type": "dropout", "rate": 0.5}]})
    assert head_only.first_stochastic_stage() == 4  # embedding, encoder, scalars, dense run once
    between = build("gru", {"layers": 2, "dropout": 0.5, "head": []})
    assert between.first_stochastic_stage() == 1  # the recurrent stage is sampled
    torch.manual_seed(1)
    samples = mc_forward(between, b, 20)
    assert samples.shape == (20, 3, 2)
    assert samples.std(0).min() > 0
    assert not between.training
    assert not between.stages[1].rnn.training


@pytest.mark.parametrize(("params", "needle"), [
    ({"dropout": 0.3}, "needs layers >= 2"),
    ({"bidirectional": True, "packing": "padded"}, "bidirectional"),
    ({"embedding": [{"type": "dense", "units": 8, "batch_norm": True}]}, "batch_norm is not supported"),
    ({"readout": "median"}, "readout"),
])
def test_bad_recurrent_params_are_one_line_errors(params, needle):
    with pytest.raises((ConfigError, ValueError), match=needle):
        build("lstm", params)


def test_sequence_models_need_sequence_inputs_and_odd_kernels():
    with pytest.raises(ConfigError, match="needs a sequence input"):
        build_model(ModelConfig(name="gru"), ModelIO(image=(1, 8, 8)))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ModelConfig(name="seq_conv", params={"kernel_size": 4})


def test_registry_lists_the_sequence_models():
    from physnn import list_models

    names = list_models()
    assert {"lstm", "gru", "seq_conv", "cnn"} <= set(names)
