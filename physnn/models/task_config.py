"""The task section of a run config (``task:``): what to learn and with which loss.

:class:`~physnn.models.tasks.Task` and the task classes registered beside it
(:mod:`physnn.models.reconstruction`, :mod:`physnn.models.generation`) resolve
it against the data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat

from physnn.config import Strict
from physnn.data.noise import NoiseSpec

__all__ = ["TaskConfig"]


class TaskConfig(Strict):
    """The learning task.

    Attributes
    ----------
    kind
        ``classification``, ``regression``, ``reconstruction`` or ``auto``
        (classification when the data config has a ``label``, regression
        when it has only ``targets``, reconstruction when it has neither).
    loss
        ``auto`` (cross-entropy / gaussian / balanced), or ``cross_entropy``,
        ``mse``, ``huber``, ``gaussian``, ``balanced`` (reconstruction).
    class_weight
        ``balanced`` (inverse class frequency in the training split), a list
        of one weight per class, or None. Multiplies per-event weights.
    gaussian_mean
        Regression with the ``gaussian`` loss: how the mean is trained.
        ``nll``: mean and variance by the Gaussian negative log-likelihood.
        ``mse``: the mean by its squared error, the variance by the NLL of
        the (detached) mean. The plain NLL lets a network give up on events
        it finds hard by predicting a large variance for them, and then
        barely fits their mean (the lowest-energy showers: the demo's energy
        CNN predicted ~5 GeV for every 1-2 GeV electron); with ``mse`` every
        event pulls on the mean as in an ordinary regression, and the error
        bar still comes from the variance head. Validation reports the plain
        NLL either way.
    reconstruct
        Reconstruction: which input the model outputs, ``image``,
        ``sequence`` or ``scalars``; ``auto`` takes the first present.
    noise
        Reconstruction: noise models applied to the input on the fly
        (:mod:`physnn.data.noise`); the target stays clean.
    hit_threshold
        Reconstruction with the ``balanced`` loss: a truth cell above this
        value (physical units) counts as hit.
    log_scale
        Reconstruction: compare output and target on the log-like scale
        ``asinh(x / log_scale)`` (physical units) instead of linearly, so that
        errors on a 0.1 GeV halo cell count next to those on a 30 GeV core;
        None: linear.
    energy_weight
        Reconstruction of images: add ``energy_weight`` times the squared
        relative difference of the total (summed) energy of output and
        target per event, an energy-conservation aid against a denoiser
        that trims the low-energy halo.
    incident_energy
        Generation: the scalar holding the incident energy (conditioned on
        as ``log E``; the critic sees energies over it); ``auto``: ``energy``
        when it is among ``data.scalars``; None: no incident energy.
    cell_scale
        Generation: ``eps`` of the cell representation ``log(1 + E / eps)``
        (physical units); ``auto``: the zero-suppression threshold.
    zero_suppression
        Generation: generated cells below this value (physical units) are
        set to zero; ``auto``: the smallest non-zero cell of the training
        images when they hold zeros (a zero-suppressed readout), else 0.
    """

    kind: Literal["auto", "classification", "regression", "reconstruction", "generation"] = "auto"
    loss: Literal["auto", "cross_entropy", "mse", "huber", "gaussian", "balanced"] = "auto"
    class_weight: Literal["balanced"] | list[float] | None = None
    huber_delta: float = Field(default=1.0, gt=0.0)
    gaussian_mean: Literal["nll", "mse"] = "nll"
    reconstruct: Literal["auto", "image", "sequence", "scalars"] = "auto"
    noise: list[NoiseSpec] = Field(default_factory=list)
    hit_threshold: float = 0.0
    log_scale: float | None = Field(default=None, gt=0.0)
    energy_weight: float = Field(default=0.0, ge=0.0)
    incident_energy: str | None = "auto"
    cell_scale: Literal["auto"] | PositiveFloat = "auto"
    zero_suppression: Literal["auto"] | NonNegativeFloat = "auto"
