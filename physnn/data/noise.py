"""Detector noise added on the fly, for training denoising autoencoders.

A denoising autoencoder learns ``clean = f(noisy)``. When the files hold only
clean images (a simulation before digitisation, or the simulator's output
taken as the truth), the noisy input is made fresh for every batch by a chain
of noise models, applied in order in physical units (GeV per cell)::

    task:
      kind: reconstruction
      noise:
        - {type: gaussian, sigma: 0.1}            # electronic noise, GeV per cell
        - {type: dead_cells, fraction: 0.05}      # 5% of the cells read zero
        - {type: salt_and_pepper, fraction: 0.01} # hot and cold cells

Each batch gets new noise, so the network never sees the same noisy image
twice; validation and evaluation draw theirs from a fixed seed so that their
figures compare from epoch to epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import torch
from pydantic import Field, field_validator

from physnn.config import Strict


class GaussianNoise(Strict):
    """Gaussian electronic noise added to every cell.

    Attributes
    ----------
    sigma
        Standard deviation in the units of the cells (GeV), one value or one
        per channel (layer).
    threshold
        Zero-suppress cells below this value after adding the noise, as the
        readout does (None: keep negative and small values).
    """

    type: Literal["gaussian"]
    sigma: float | list[float]
    threshold: float | None = None

    @field_validator("sigma")
    @classmethod
    def _non_negative(cls, v: float | list[float]) -> float | list[float]:
        values = v if isinstance(v, list) else [v]
        if not values or any(s < 0 for s in values):
            msg = f"sigma must be non-negative (one value or one per channel), got {v}"
            raise ValueError(msg)
        return v


class DeadCells(Strict):
    """Dead cells: a random ``fraction`` of the cells of each event read zero."""

    type: Literal["dead_cells"]
    fraction: float = Field(ge=0.0, lt=1.0)


class SaltAndPepper(Strict):
    """Salt-and-pepper noise: a random ``fraction`` of the cells is set to a high or to zero.

    Attributes
    ----------
    fraction
        Fraction of the cells hit, per event.
    salt_ratio
        Of those, the fraction set high ("salt", a hot cell); the rest read
        zero ("pepper").
    salt
        The value of a hot cell (GeV); None: the hottest cell of the event's
        channel, so a hot cell looks like a shower core.
    """

    type: Literal["salt_and_pepper"]
    fraction: float = Field(ge=0.0, lt=1.0)
    salt_ratio: float = Field(default=0.5, ge=0.0, le=1.0)
    salt: float | None = None


NoiseSpec = Annotated[GaussianNoise | DeadCells | SaltAndPepper, Field(discriminator="type")]


def _per_channel(value: float | list[float], x: torch.Tensor, channel_axis: int) -> torch.Tensor | float:
    if not isinstance(value, list):
        return value
    shape = [1] * x.dim()
    shape[channel_axis] = -1
    return torch.tensor(value, dtype=x.dtype, device=x.device).reshape(shape)


def check_noise(specs: Sequence[NoiseSpec], channels: int, where: str = "task.noise") -> None:
    """Check per-channel settings against the number of channels; a one-line error otherwise."""
    from physnn.errors import ConfigError

    for i, spec in enumerate(specs):
        if isinstance(spec, GaussianNoise) and isinstance(spec.sigma, list) and len(spec.sigma) not in (1, channels):
            msg = (f"{where}[{i}].sigma: {len(spec.sigma)} values for {channels} channels; "
                   f"give one value or one per channel")
            raise ConfigError(msg)


def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def apply_noise(x: torch.Tensor, specs: Sequence[NoiseSpec], *, channel_axis: int = 1,
                mask: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Return a noisy copy of ``x`` (physical units), applying ``specs`` in order.

    Parameters
    ----------
    x
        Clean events, shape (N, C, ...) for images or (N, F) / (N, T, F).
    specs
        The noise models.
    channel_axis
        The axis that per-channel settings (``sigma`` lists, the default
        ``salt``) refer to: 1 for images, -1 for features.
    mask
        Valid positions of a padded sequence, (N, T); padding stays zero.
    generator
        Random generator on ``x``'s device (None: torch's global one).

    Examples
    --------
    >>> clean = torch.zeros(2, 3, 8, 8)
    >>> noisy = apply_noise(clean, [GaussianNoise(type="gaussian", sigma=0.1)])
    >>> bool(noisy.std() > 0.05)
    True
    """
    out = x.clone()
    for spec in specs:
        if isinstance(spec, GaussianNoise):
            sigma = spec.sigma[0] if isinstance(spec.sigma, list) and len(spec.sigma) == 1 else spec.sigma
            noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
            out = out + noise * _per_channel(sigma, out, channel_axis)
            if spec.threshold is not None:
                out = torch.where(out < spec.threshold, torch.zeros_like(out), out)
        elif isinstance(spec, DeadCells):
            out = torch.where(_uniform(out, generator) < spec.fraction, torch.zeros_like(out), out)
        else:
            u = _uniform(out, generator)
            hit = u < spec.fraction
            salty = u < spec.fraction * spec.salt_ratio
            if spec.salt is not None:
                salt = torch.full_like(out, spec.salt)
            else:  # the hottest clean cell of the event's channel
                moved = x.movedim(channel_axis, 1)
                hottest = moved.flatten(2).amax(dim=2) if moved.dim() > 2 else moved.amax(dim=0, keepdim=True)
                shape = [hottest.shape[0], hottest.shape[1]] + [1] * (moved.dim() - 2)
                salt = hottest.reshape(shape).expand_as(moved).movedim(1, channel_axis)
            out = torch.where(hit, torch.where(salty, salt, torch.zeros_like(out)), out)
    if mask is not None:
        extra = [1] * (out.dim() - mask.dim())
        out = out * mask.reshape(*mask.shape, *extra).to(out.dtype)
    return out
