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
