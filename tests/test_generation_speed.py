"""The GAN generator's fast inference path computes the same showers as the plain one.

- the conditions enter each convolution as a per-event bias instead of constant feature maps
  (:func:`physnn.models.gan.conv_with_conditions`): the same function and weights;
- without gradients on a CPU, :meth:`GenerationTask.generate` runs the network in tiles of ``TILE`` showers with
  the readout noise drawn for the whole batch first: the showers do not depend on the tiling;
- the exported ONNX graph gives onnxruntime the showers torch gives, on the same noise and conditions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from physnn.inference.loading import load_run
from physnn.models import generation
from physnn.models.gan import conv_with_conditions


def _maps(cond: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return cond[:, :, None, None].expand(-1, -1, *like.shape[2:])


@pytest.mark.parametrize(("channels", "n_cond", "kernel", "size"), [(8, 5, 3, (6, 6)), (4, 0, 5, (7, 5)),
                                                                    (3, 2, 1, (4, 4))])
def test_conditions_as_a_bias_equal_the_concatenated_condition_maps(channels, n_cond, kernel, size):
    torch.manual_seed(0)
    conv = nn.Conv2d(channels + n_cond, 6, kernel, padding=kernel // 2, padding_mode="replicate")
    h, cond = torch.randn(4, channels, *size), torch.randn(4, n_cond)
    reference = conv(torch.cat([h, _maps(cond, h)], dim=1))  # what the generator computed before
    torch.testing.assert_close(conv_with_conditions(conv, h, cond), reference, rtol=1e-5, atol=1e-5)
    # and the gradients of the weights and inputs, so that training is the same too
    h.requires_grad_(True)
    (g_fast,) = torch.autograd.grad(conv_with_conditions(conv, h, cond).square().sum(), h)
    (g_ref,) = torch.autograd.grad(conv(torch.cat([h, _maps(cond, h)], dim=1)).square().sum(), h)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-4)


def test_conditions_as_a_bias_need_replicate_padding():
    """With zero padding a constant map is not constant at the border: the bias form would be wrong there."""
    with pytest.raises(ValueError, match="replicate"):
        conv_with_conditions(nn.Conv2d(3, 2, 3, padding=1), torch.randn(2, 2, 5, 5), torch.ones(2, 1))


def _inputs(task, n: int, seed: int = 0):
    raw = task.sample_conditions(n, np.random.default_rng(seed))
    return raw, task.conditions_tensor(raw), task.incident_of(raw)


def test_tiled_generation_equals_one_pass(gan_run):
    """More showers than a tile: the tiled pass (no gradients) gives the showers of one pass over the batch."""
    loaded = load_run(gan_run, device="cpu")
    task, model = loaded.task, loaded.model
    n = 2 * generation.TILE + 7
    _, cond, incident = _inputs(task, n)
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        tiled = task.generate(model, z, cond, incident, generator=torch.Generator().manual_seed(2))
    one = task.generate(model, z, cond, incident, generator=torch.Generator().manual_seed(2)).detach()  # grads on
    torch.testing.assert_close(tiled, one, rtol=1e-5, atol=1e-5)
    assert (tiled != 0).any()
    with torch.inference_mode():  # the same seed, the same showers
        torch.testing.assert_close(task.generate(model, z, cond, incident, generator=torch.Generator().manual_seed(2)),
                                   tiled, rtol=0, atol=0)


def test_onnxruntime_gives_torchs_showers_on_the_same_noise_and_conditions(gan_run, tmp_path):
    """The exported generator (conditions, class index, latent z and readout noise as inputs) against
    ``GenerationTask.generate``'s tiled pass on the same random numbers, past a tile. Without readout noise the
    cells agree to 1e-5; with it, a layer whose shower energy is about the energy its noise alone reads out takes
    ``(total - noise) / total`` of two close numbers and rounding shows there, so >= 99.9 % of the cells agree."""
    ort = pytest.importorskip("onnxruntime")
    import physnn

    path = physnn.export(gan_run, tmp_path / "gan.onnx").path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    loaded = load_run(gan_run, device="cpu")
    task, model = loaded.task, loaded.model
    n = generation.TILE + 36
    raw, cond, incident = _inputs(task, n, seed=3)
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(4))
    feed = {"conditions": np.stack([raw[s] for s in task.scalars], axis=1).astype(np.float32),
            "class_index": np.asarray(raw["class"], dtype=np.int64), "z": z.numpy()}
    with torch.inference_mode():
        noise = torch.randn(n, *task.shape, generator=torch.Generator().manual_seed(5))
        ref = task.to_phys(task.generate(model, z, cond, incident, generator=torch.Generator().manual_seed(5)))
        quiet = task.to_phys(task.suppress(model.generator(z, cond, task.offset(incident), task.shape_prior)))
    (image,) = session.run(None, {**feed, "noise": np.zeros((n, *task.shape), np.float32)})
    assert (image != 0).sum() > 1000
    np.testing.assert_allclose(image, quiet.numpy(), rtol=1e-5, atol=1e-5)
    (image,) = session.run(None, {**feed, "noise": noise.numpy()})
    assert np.isclose(image, ref.numpy(), rtol=1e-5, atol=1e-5).mean() >= 0.999
    np.testing.assert_allclose(image.sum((2, 3)), ref.numpy().sum((2, 3)), rtol=1e-3, atol=0.05)  # layer energies


@pytest.mark.parametrize(("run", "draws_per_cell"), [("gan_hits_run", 3), ("gan_spots_run", 4)])
def test_onnxruntime_gives_torchs_showers_with_hit_fluctuations(run, draws_per_cell, request, tmp_path):
    """With hit fluctuations and the declared noise the graph takes (N, k, layers, H, W) draws (noise, then the
    hits': two for Gamma hits, three for whole spots) and gives torch's showers on the same draws: >= 99.9 % of
    the cells and every layer energy."""
    ort = pytest.importorskip("onnxruntime")
    import physnn

    run = request.getfixturevalue(run)
    path = physnn.export(run, tmp_path / "gan.onnx").path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    loaded = load_run(run, device="cpu")
    task, model = loaded.task, loaded.model
    assert task.readout_shape(model) == (draws_per_cell, *task.shape)
    n = generation.TILE + 36
    raw, cond, incident = _inputs(task, n, seed=3)
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(4))
    draws = torch.randn(n, draws_per_cell, *task.shape, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        ref = task.to_phys(task.generate(model, z, cond, incident, readout_draws=draws)).numpy()
    (image,) = session.run(None, {"conditions": np.stack([raw[s] for s in task.scalars], axis=1).astype(np.float32),
                                  "class_index": np.asarray(raw["class"], dtype=np.int64), "z": z.numpy(),
                                  "noise": draws.numpy()})
    assert (image != 0).sum() > 1000
    assert np.isclose(image, ref, rtol=1e-4, atol=1e-4).mean() >= 0.999
    np.testing.assert_allclose(image.sum((2, 3)), ref.sum((2, 3)), rtol=1e-3, atol=0.05)
