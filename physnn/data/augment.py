"""Flips of the training batches in η and φ (the data config's ``augment:``, :class:`physnn.config.Augment`).

The trainer applies :class:`Flips` to the batches it trains on and to no
other: validation, test, calibration and predictions see the files' events
as they are. Each event is flipped with probability 1/2 per axis, drawn from
a seeded generator of its own (the trainer's, offset per process, resumed with
the run; never the shuffle generator, which must draw alike in every process).
The image (and a target image, for autoencoders) is flipped along the axis;
scalar inputs declared as
coordinates along it change sign about the image's centre, in their
standardised units. Images of different granularity folded into channels
(:func:`physnn.data.convert.fold_to_grid`, e.g. η strips) also reverse the
order of the strips inside each cell (:func:`physnn.data.convert.flip_order`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from physnn.config import DataConfig
from physnn.config.augment import AXES
from physnn.data.convert import flip_order, image_block
from physnn.data.transform import Transform
from physnn.errors import ConfigError
from physnn.io.read import first_chunk, read_chunk

__all__ = ["Flips", "flips_for"]


class Flips:
    """Flip each event of a batch along each named axis with probability 1/2.

    Parameters
    ----------
    axes
        ``eta`` and/or ``phi`` (see :data:`physnn.config.augment.AXES`).
    coordinates
        Per axis: the columns of ``scalars`` that are coordinates along it, and each one's
        standardised offset ``2 center / scale`` (a flipped value z becomes ``-z - offset``).
    """

    def __init__(self, axes: Sequence[str], coordinates: dict[str, list[tuple[int, float]]] | None = None,
                 orders: dict[str, list[int] | None] | None = None) -> None:
        self.axes = list(axes)
        self.coordinates = coordinates or {}
        #: per axis, the input image's channel order after a flip (folded strips), None: unchanged
        self.orders = {k: None if v is None else torch.tensor(v) for k, v in (orders or {}).items()}

    def __call__(self, batch: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        out = dict(batch)
        n = len(out["image"])
        for name in self.axes:
            flipped = (torch.rand(n, generator=generator) < 0.5).to(out["image"].device)
            for key in ("image", "target_image"):
                if key in out:
                    x = out[key]
                    where = flipped.view(-1, *([1] * (x.ndim - 1)))
                    mirrored = x.flip(AXES[name])
                    order = self.orders.get(name) if key == "image" else None
                    if order is not None:
                        mirrored = mirrored[:, order.to(x.device)]
                    out[key] = torch.where(where, mirrored, x)
            if self.coordinates.get(name):
                scalars = out["scalars"].clone()
                for column, offset in self.coordinates[name]:
                    scalars[:, column] = torch.where(flipped, -scalars[:, column] - offset, scalars[:, column])
                out["scalars"] = scalars
        return out


def flips_for(cfg: DataConfig, transform: Transform, image: Sequence[int] | None) -> Flips | None:
    """The flips the data config asks for (None: none), for per-event images of shape ``image``.

    Raises
    ------
    ConfigError
        When the images have fewer than two cell axes after the channels.
    """
    spec = cfg.augment
    if not spec.flip:
        return None
    if image is None or len(image) < 3:
        msg = (f"augment.flip: {spec.flip} needs images of channels x η x φ cells; the data give "
               f"{list(image or [])}")
        raise ConfigError(msg)
    center = np.asarray(transform.center.get("scalars", [0.0] * len(cfg.scalars)), dtype=float)
    scale = np.asarray(transform.scale.get("scalars", [1.0] * len(cfg.scalars)), dtype=float)
    columns = {axis: [cfg.scalars.index(n) for n in names] for axis, names in spec.coordinates.items()}
    coordinates = {axis: [(j, float(2 * center[j] / scale[j])) for j in js] for axis, js in columns.items()}
    shapes = image_shapes(cfg) if cfg.images is not None and len(cfg.images.branches) > 1 else []
    return Flips(spec.flip, coordinates, {axis: flip_order(shapes, AXES[axis]) for axis in spec.flip})


def image_shapes(cfg: DataConfig) -> list[tuple[int, ...]]:
    """The per-event shape of each image branch, from the first event of the first file."""
    import dataclasses

    assert cfg.images is not None
    chunk, obj = first_chunk(cfg.files, cfg.tree, cfg.friends)
    one = dataclasses.replace(chunk, stop=min(chunk.start + 1, chunk.stop))
    arrays = read_chunk(one, cfg.images.branches, obj)
    shapes = []
    for name in cfg.images.branches:
        block = image_block(arrays, cfg.images.model_copy(update={"branches": [name]}), one.where)
        shapes.append(tuple(block.shape[2:]) if block.shape[1] == 1 else tuple(block.shape[1:]))
    return shapes
