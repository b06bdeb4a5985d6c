"""Generated cells made of whole spots (physnn.models.gan_hits.SpotFluctuations, GAN param ``hit_counts``).

- Poisson counts from normal draws have the exact probabilities of 0, 1, 2, ... spots, and the gradient of their mean;
- spots keep every layer's energy, a soft cell holds whole spots (its energy a multiple of one spot's), a layer
  with energy but no spot keeps one;
- onnxruntime gives torch's showers on the same four draws per cell.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from physnn.models.gan import GANParams, build_gan
from physnn.models.gan_hits import EXACT_BELOW, SpotFluctuations, poisson_from_normals
from physnn.models.registry import ModelIO


@pytest.mark.parametrize("rate", [0.05, 0.7, 2.9])
def test_counts_have_poissons_probabilities(rate):
    n = torch.randn(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    count = poisson_from_normals(torch.full((400_000,), rate, dtype=torch.float64), n)
    assert bool((count == count.round()).all())  # whole spots
    for k in range(4):
        assert float((count == k).double().mean()) == pytest.approx(stats.poisson.pmf(k, rate), abs=0.003)


def test_large_counts_have_the_poisson_mean_and_variance():
    rate = 2 * EXACT_BELOW
    n = torch.randn(400_000, generator=torch.Generator().manual_seed(1))
    count = poisson_from_normals(torch.full((400_000,), rate), n)
    assert float(count.mean()) == pytest.approx(rate, rel=0.01)
    assert float(count.var()) == pytest.approx(rate, rel=0.03)


def test_counts_pass_the_gradient_of_their_mean():
    rate = torch.tensor([0.0, 0.01, 0.5, 2.0, 10.0], requires_grad=True)  # an empty cell too: no 0/0
    poisson_from_normals(rate, torch.zeros(5)).sum().backward()
    torch.testing.assert_close(rate.grad[:4], torch.ones(4))  # straight through
    assert float(rate.grad[4]) == pytest.approx(1.0)  # rate + sqrt(rate) n at n = 0


def _spots(theta: float, shape: float) -> SpotFluctuations:
    return SpotFluctuations(1, 0, hit_energy=theta, spot_shape=shape)


def test_spots_keep_the_layer_energy_and_come_whole():
    """A flat layer of 0.5 eps per cell with spots of 2 eps: a quarter of a spot per cell on average, so about one
    cell in five holds any (1 - exp(-0.25)); with near-equal spots (shape e^8, a 2 % spread) each cell holds a
    whole number of them, its energy a multiple of the event's smallest lit cell."""
    cells = torch.full((2000, 1, 8, 8), 0.5)
    draws = torch.randn(2000, 3, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = _spots(2.0, 1e4)(cells, torch.zeros(2000, 0), draws)
    torch.testing.assert_close(out.sum((1, 2, 3)), cells.sum((1, 2, 3)), rtol=1e-4, atol=0)
    assert float((out > 0).double().mean()) == pytest.approx(1 - np.exp(-0.25), rel=0.03)
    unit = out.flatten(1).masked_fill(out.flatten(1) <= 0, float("inf")).amin(1)
    spots = out.flatten(1) / unit[:, None]
    off = (spots[out.flatten(1) > 0] - spots[out.flatten(1) > 0].round()).abs()
    assert float((off > 0.3).double().mean()) < 0.002  # no cell holds half a spot
    assert float(spots.round().max()) >= 3  # cells of several spots too


def test_a_layer_without_a_spot_keeps_its_energy_in_one_cell():
    cells = torch.full((500, 1, 6, 6), 0.01)  # 0.36 eps in the layer, spots of 100: no cell draws one
    draws = torch.randn(500, 3, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = _spots(100.0, 10.0)(cells, torch.zeros(500, 0), draws)
    assert bool(((out > 0).sum((1, 2, 3)) == 1).all())
    torch.testing.assert_close(out.sum((1, 2, 3)), torch.full((500,), 0.36), rtol=1e-4, atol=0)
    hit = out[:, 0].flatten(1).argmax(1)
    assert len(torch.unique(hit)) > 20  # anywhere on the flat layer, not always the same cell


def test_spots_pass_gradients_to_the_shape_and_their_parameters():
    """Finite gradients for every cell and parameter, a cell of exactly 0 (a softplus that underflowed) included;
    an empty cell gets a gradient of its own (straight through), not only its layer's share."""
    cells = torch.full((64, 1, 8, 8), 0.3)
    cells[:, :, 3:5, 3:5] = 20.0
    cells[:, :, 0, 0] = 0.0
    cells.requires_grad_(True)
    spots = _spots(3.0, 3.0)
    draws = torch.randn(64, 3, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    out = spots(cells, torch.zeros(64, 0), draws)
    weight = torch.rand(out.shape, generator=torch.Generator().manual_seed(6))
    (out * weight).sum().backward()
    assert bool(torch.isfinite(cells.grad).all())
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in spots.parameters())
    empty = out.detach()[0, 0] == 0
    assert int(empty.sum()) >= 2
    assert len(torch.unique(cells.grad[0, 0][empty])) > 1


def test_hit_counts_need_cell_fluctuations():
    from physnn.errors import ConfigError

    params = GANParams(latent_dim=4, generator_channels=[4, 4], critic_channels=[4], hit_counts=True)
    with pytest.raises(ConfigError, match="hit_counts needs cell_fluctuations: true"):
        build_gan(params, ModelIO(image=(1, 8, 8), conditions=0))
    on = GANParams(latent_dim=4, generator_channels=[4, 4], critic_channels=[4], hit_counts=True,
                   cell_fluctuations=True)
    assert build_gan(on, ModelIO(image=(1, 8, 8), conditions=0)).generator.draws_per_cell(True) == 4


def test_the_cell_spectrum_term_sees_the_cells_read_out_and_their_energies():
    from physnn.models.gan_losses import cell_spectrum_loss

    g = torch.Generator().manual_seed(5)
    real = torch.rand(64, 2, 6, 6, generator=g) * (torch.rand(64, 2, 6, 6, generator=g) < 0.3)
    shuffled = real[torch.randperm(64, generator=g)]  # the same cells in other events: the same spectrum
    assert float(cell_spectrum_loss(shuffled, real)) == pytest.approx(0.0, abs=1e-7)
    sparser = real * (torch.rand(64, 2, 6, 6, generator=g) < 0.5)
    harder = real * 1.5
    assert float(cell_spectrum_loss(sparser, real)) > 0.02
    assert float(cell_spectrum_loss(harder, real)) == pytest.approx(0.5 * float(real.sum(0).sum((1, 2)).sum())
                                                                     / (64 * 36), rel=1e-4)
    fake = harder.clone().requires_grad_(True)
    cell_spectrum_loss(fake, real).backward()
    assert float(fake.grad[real > 0].min()) > 0  # every read-out cell is pushed down towards real's
