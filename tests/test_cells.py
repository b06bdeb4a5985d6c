"""The GAN's cell representation: signed for a symmetric readout, read from physnn_meta, else from the data."""

from __future__ import annotations

import torch

from physnn.models.cells import CellCode, fit_cell_code


def test_a_signed_code_round_trips_negative_cells_and_suppresses_both_sides():
    code = CellCode(scale=0.03, threshold=0.03, signed=True)
    cells = torch.tensor([-0.5, -0.031, -0.01, 0.0, 0.02, 0.04, 30.0])
    torch.testing.assert_close(code.decode(code.encode(cells)), cells, rtol=1e-5, atol=1e-7)
    kept = code.decode(code.suppress(code.encode(cells)))
    torch.testing.assert_close(kept, torch.tensor([-0.5, -0.031, 0.0, 0.0, 0.0, 0.04, 30.0]), rtol=1e-5, atol=1e-7)
    # a positive-only code is what it was: negative cells read zero, the cut is one-sided
    positive = CellCode(scale=0.03, threshold=0.03)
    assert positive.decode(positive.suppress(positive.encode(cells)))[:3].tolist() == [0.0, 0.0, 0.0]


def test_the_declared_readout_wins_over_a_guess():
    cells = torch.tensor([[0.0, 0.05, -0.04, 2.0]] * 10)
    declared = fit_cell_code(cells, {"threshold": 0.03, "suppression": "symmetric"}, "auto", "auto")
    assert (declared.threshold, declared.scale, declared.signed) == (0.03, 0.03, True)
    positive = fit_cell_code(cells, {"threshold": 0.03, "suppression": "positive"}, "auto", "auto")
    assert not positive.signed


def test_without_a_declaration_the_code_is_guessed_from_the_cells():
    signed = fit_cell_code(torch.tensor([[0.0, 0.05, -0.04, 2.0]] * 10), None, "auto", "auto")
    assert signed.signed
    assert signed.threshold == torch.tensor(0.04).item()
    positive = fit_cell_code(torch.tensor([[0.0, 0.05, 0.06, 2.0]] * 10), None, "auto", 0.01)
    assert not positive.signed
    assert positive.threshold == torch.tensor(0.05).item()
    assert positive.scale == 0.01
    dense = fit_cell_code(torch.rand(10, 100) + 0.1, None, "auto", "auto")  # no zeros: no zero suppression
    assert dense.threshold == 0.0
    assert dense.scale > 0


def test_the_critic_features_stay_bounded_on_a_layer_of_noise_of_both_signs():
    """A layer holding only noise cells of both signs sums to ~0; its centroid and width must stay on the
    grid (weights: the positive cells) and their gradients finite, or the critic's loss explodes (the
    fast-simulation GAN's critic loss reached 1e14 when the centroids divided by the signed sum)."""
    import numpy as np

    from physnn.models.generation import GenerationTask

    task = GenerationTask(shape=[2, 8, 8], squeeze=False, scalars=["energy"], classes=None, label=None,
                          incident=0, cell_scale=0.03, threshold=0.03, signed=True, data_center={}, data_scale={},
                          cond_center=[0.0], cond_scale=[1.0], quantiles={"energy": np.linspace(1, 100, 201)},
                          class_freq=None, layout={})
    cells = torch.zeros(4, 2, 8, 8)
    cells[:, 0, 0, 0], cells[:, 0, 7, 7] = 0.0400001, -0.04  # layer 0: two noise cells that cancel
    cells[:, 1, 3:5, 3:5] = 2.0  # layer 1: a shower in the centre
    x = task.to_model(cells).requires_grad_(True)
    features = task.critic_features(x, torch.full((4,), 10.0))
    assert torch.isfinite(features).all()
    centroid_widths = features[:, 2:10]  # cx, cy, wx, wy of both layers
    assert centroid_widths.abs().max() <= 1.0 + 1e-4, centroid_widths
    features.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().max() < 1e4


def test_the_mean_shower_prior_stays_bounded_when_a_layer_holds_only_noise():
    """Low-energy electrons leave the last layer with a few noise cells of both signs, whose sum is often <= 0:
    the prior shape (log of the mean normalised shape) must stay a shape, not +-1e10 at random cells."""
    from physnn.models.cells import mean_shower

    rng = torch.Generator().manual_seed(0)
    cells = torch.zeros(200, 2, 6, 6)
    cells[:, 0, 2:4, 2:4] = 1.0  # layer 0: the shower
    noise = torch.randn(200, 6, 6, generator=rng) * 0.01
    cells[:, 1] = torch.where(noise.abs() > 0.03, noise, torch.zeros_like(noise))  # layer 1: noise beyond 3 sigma
    _, shape = mean_shower(cells, 0.03, torch.full((200,), 4.0))
    shape = torch.tensor(shape).reshape(2, 6, 6)
    assert torch.isfinite(shape).all()
    assert shape.max() <= 0.0  # the log of a normalised shape: every cell at most the whole layer
    assert torch.logsumexp(shape[1].flatten(), 0) <= 1e-3  # sums to 1 (plus the 1e-6 floor of empty cells)


def test_the_critic_features_without_an_incident_energy_stay_finite_on_a_negative_layer():
    import numpy as np

    from physnn.models.generation import GenerationTask

    task = GenerationTask(shape=[1, 4, 4], squeeze=False, scalars=[], classes=None, label=None, incident=None,
                          cell_scale=0.03, threshold=0.03, signed=True, data_center={}, data_scale={},
                          cond_center=[], cond_scale=[], quantiles={}, class_freq=None, layout={})
    cells = torch.zeros(2, 1, 4, 4)
    cells[0, 0, 1, 1] = -0.06  # one negative noise cell: the layer sums to -2 eps
    features = task.critic_features(task.to_model(cells), torch.ones(2))
    assert torch.isfinite(features).all(), features
    assert np.isfinite(features.detach().numpy()).all()


def test_layer_energies_of_a_signed_readout_stay_continuous_through_zero():
    """A layer of noise alone sums to about 0, either sign (16% of photons' first layers). Clamped at 0,
    those layers are a point mass at y = 0 that the layer-energy mixture cannot fit; signed, y is
    continuous, and its sign says which side of zero the sum fell."""
    code = CellCode(scale=0.03, threshold=0.03, signed=True)
    sums = torch.tensor([-0.06, -0.03, 0.0, 0.03, 0.06])
    images = torch.zeros(5, 1, 2, 2)
    images[:, 0, 0, 0] = sums
    y = code.layer_energies(code.encode(images))[:, 0]
    expected = torch.sign(sums) * torch.log1p(sums.abs() / 0.03)
    assert torch.allclose(y, expected, atol=1e-5)
    assert len(set(y.tolist())) == 5  # no two sums collapse onto one value
    positive = CellCode(scale=0.03, threshold=0.03, signed=False)  # a positive readout has no negative sums
    assert torch.all(positive.layer_energies(positive.encode(images)) >= 0)
