"""Data augmentation by the detector's symmetries (``augment:`` in the data config, :class:`Augment`).

Applied to the training batches only (:mod:`physnn.data.augment`), never to
validation, test or predictions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from physnn.config.strict import Strict

#: The image axis of each cell direction, counted from the last: images are (channels/layers, ..., η, φ).
AXES: dict[str, int] = {"eta": -2, "phi": -1}


class Augment(Strict):
    """Random flips of the training images along the calorimeter's cell axes.

    The image's last axis is φ and the one before it is η: a (layers, H, W)
    image has H cells in η and W in φ. A flip is a symmetry of a detector
    and physics that look the same mirrored in that direction (the
    simulator's square grid is); each training event is flipped with
    probability 1/2 per axis, independently, from the run's seeded generator.

    Attributes
    ----------
    flip
        The axes to flip: ``[eta, phi]``, ``[eta]``, ``[phi]`` or ``[]`` (none).
    coordinates
        Scalar inputs that are coordinates along a flipped axis, measured from
        the image's centre (e.g. ``{eta: [impact_eta], phi: [impact_phi]}``): a flip
        changes their sign with the image's. Other scalars are taken as
        unchanged by the flips.
    """

    flip: list[Literal["eta", "phi"]] = Field(default_factory=list)
    coordinates: dict[Literal["eta", "phi"], list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_axes(self) -> Augment:
        if len(set(self.flip)) < len(self.flip):
            msg = f"augment.flip: each axis once, got {self.flip}"
            raise ValueError(msg)
        for axis in self.coordinates:
            if axis not in self.flip:
                msg = f"augment.coordinates: {axis!r} is not flipped (augment.flip: {self.flip})"
                raise ValueError(msg)
        return self
