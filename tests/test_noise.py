"""Noise models for denoising autoencoders (physnn.data.noise)."""

from __future__ import annotations

import pytest
import torch
from pydantic import TypeAdapter

from physnn.data.noise import NoiseSpec, apply_noise, check_noise
from physnn.errors import ConfigError

SPECS = TypeAdapter(list[NoiseSpec])


def specs(*items: dict) -> list:
    return SPECS.validate_python(list(items))


def test_gaussian_noise_has_the_asked_sigma_per_channel() -> None:
    clean = torch.zeros(400, 3, 16, 16)
    noisy = apply_noise(clean, specs({"type": "gaussian", "sigma": [0.1, 0.2, 0.5]}),
                        generator=torch.Generator().manual_seed(0))
    stds = noisy.transpose(0, 1).reshape(3, -1).std(1)
    assert torch.allclose(stds, torch.tensor([0.1, 0.2, 0.5]), rtol=0.02)
    assert clean.abs().sum() == 0  # the input is not modified


def test_gaussian_threshold_zero_suppresses() -> None:
    clean = torch.zeros(50, 1, 8, 8)
    noisy = apply_noise(clean, specs({"type": "gaussian", "sigma": 0.1, "threshold": 0.2}))
    assert (noisy[noisy != 0] >= 0.2).all()
    assert 0 < (noisy != 0).float().mean() < 0.05  # about P(z > 2) = 2.3 %


def test_dead_cells_zero_the_asked_fraction() -> None:
    clean = torch.ones(200, 3, 12, 12)
    noisy = apply_noise(clean, specs({"type": "dead_cells", "fraction": 0.1}))
    dead = (noisy == 0).float().mean()
    assert 0.09 < dead < 0.11
    assert torch.equal(noisy[noisy != 0], clean[noisy != 0])


def test_salt_and_pepper_uses_the_hottest_cell_by_default() -> None:
    clean = torch.full((100, 2, 10, 10), 0.5)
    clean[:, 0, 5, 5] = 7.0
    clean[:, 1, 5, 5] = 3.0
    noisy = apply_noise(clean, specs({"type": "salt_and_pepper", "fraction": 0.2, "salt_ratio": 0.5}),
                        generator=torch.Generator().manual_seed(1))
    changed = noisy != clean
    assert 0.15 < changed.float().mean() < 0.22
    values = set(noisy[0][changed[0]].unique().tolist()) | set(noisy[:, 1][changed[:, 1]].unique().tolist())
    assert values <= {0.0, 7.0, 3.0}
    salted_0 = noisy[:, 0][changed[:, 0] & (noisy[:, 0] > 0)]
    assert salted_0.numel() > 0
    assert (salted_0 == 7.0).all()
    fixed = apply_noise(clean, specs({"type": "salt_and_pepper", "fraction": 0.2, "salt": 50.0, "salt_ratio": 1.0}))
    assert set(fixed[fixed != clean].unique().tolist()) == {50.0}


def test_noise_is_seeded_and_chained_in_order() -> None:
    clean = torch.rand(20, 3, 8, 8)
    chain = specs({"type": "gaussian", "sigma": 0.3}, {"type": "dead_cells", "fraction": 0.3})
    a = apply_noise(clean, chain, generator=torch.Generator().manual_seed(5))
    b = apply_noise(clean, chain, generator=torch.Generator().manual_seed(5))
    c = apply_noise(clean, chain, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert (a == 0).float().mean() > 0.25  # dead cells after the noise read exactly zero


def test_sequence_padding_stays_zero() -> None:
    x = torch.zeros(4, 6, 2)
    mask = torch.tensor([[True] * k + [False] * (6 - k) for k in (1, 3, 6, 0)])
    noisy = apply_noise(x, specs({"type": "gaussian", "sigma": 1.0}), channel_axis=-1, mask=mask)
    assert (noisy[~mask] == 0).all()
    assert (noisy[mask] != 0).all()


def test_per_channel_sigma_must_match_the_channels() -> None:
    with pytest.raises(ConfigError, match=r"task.noise\[0\].sigma: 2 values for 3 channels"):
        check_noise(specs({"type": "gaussian", "sigma": [0.1, 0.2]}), 3)
    with pytest.raises(ValueError, match="fraction"):
        specs({"type": "dead_cells", "fraction": 1.5})
