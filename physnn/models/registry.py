"""The model registry: every model family by name, with a typed parameter set.

Adding a model is one file in :mod:`physnn.models`: define a pydantic
parameter class and a builder, and decorate the builder with
:func:`register`. The registry imports every module of the package on first
use, so nothing else needs editing. Configs name a model and give its
parameters, which are validated against the registered class::

    model:
      name: cnn
      params: {dims: 2, features: [...], head: [...]}
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from physnn.config import Strict, format_validation_error
from physnn.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelIO:
    """The shapes a model is built for: what the data give and the task needs.

    Attributes
    ----------
    image
        Per-event image shape ``(C, ...)`` or None.
    sequence
        Per-event padded sequence shape ``(T, F)`` or None.
    scalars
        Number of scalar inputs (0 if none).
    outputs
        Width of the final layer (set by the task: 1 for binary, K classes,
        K or 2K targets for Gaussian regression).
    reconstruct
        For autoencoders: the input the model outputs again (``image``,
        ``sequence`` or ``scalars``); None for every other task.
    conditions
        For generative models (GANs): the width of the condition vector (0
        for an unconditional model); None for every other task.
    incident_energy
        For generative models: whether the conditions include the incident
        energy (so the critic can see energy fractions).
    kinematics
        Whether the batches carry the sequence's four-vectors in physical
        units, ``kinematics`` (B, T, 4) as ``[pt, eta, phi, energy]`` (the data
        config's ``sequence.kinematics``).
    baselines
        For regressions of targets relative to a baseline: the number of
        targets K; the model then ends with
        :class:`~physnn.models.target_maps.AttachBaseline` (0: none).
    """

    image: tuple[int, ...] | None = None
    sequence: tuple[int, int] | None = None
    scalars: int = 0
    outputs: int = 1
    reconstruct: str | None = None
    conditions: int | None = None
    incident_energy: bool = False
    kinematics: bool = False
    baselines: int = 0

    def state(self) -> dict[str, Any]:
        """Plain types for a checkpoint."""
        out = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ModelIO:
        """Rebuild from :meth:`state`."""
        return cls(image=None if state["image"] is None else tuple(state["image"]),
                   sequence=None if state["sequence"] is None else tuple(state["sequence"]),
                   scalars=int(state["scalars"]), outputs=int(state["outputs"]),
                   reconstruct=state.get("reconstruct"), conditions=state.get("conditions"),
                   incident_energy=bool(state.get("incident_energy", False)),
                   kinematics=bool(state.get("kinematics", False)),
                   baselines=int(state.get("baselines", 0)))


Builder = Callable[[Any, ModelIO], "nn.Module"]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its name, parameter class, builder and summary."""

    name: str
    params: type[BaseModel]
    build: Builder
    summary: str
    reconstructs: bool = False
    generates: bool = False


_REGISTRY: dict[str, ModelEntry] = {}
_DISCOVERED = False


def register(name: str, params: type[BaseModel], *, reconstructs: bool = False,
             generates: bool = False) -> Callable[[Builder], Builder]:
    """Register a model builder under ``name`` with its parameter class.

    The first line of the builder's docstring is the summary shown by
    ``physnn models``. ``reconstructs`` marks autoencoders, the models that
    can be trained for ``task.kind: reconstruction``; ``generates`` marks
    generative models (GANs), the only ones for ``task.kind: generation``.
    """

    def decorate(build: Builder) -> Builder:
        if name in _REGISTRY and _REGISTRY[name].build is not build:
            msg = f"model {name!r} is registered twice"
            raise ValueError(msg)
        summary = (build.__doc__ or "").strip().splitlines()[0] if build.__doc__ else ""
        _REGISTRY[name] = ModelEntry(name, params, build, summary, reconstructs, generates)
        return build

    return decorate


def discover() -> None:
    """Import every module of :mod:`physnn.models` once, so that each registers its models and tasks."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    import physnn.models as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    _DISCOVERED = True


def available() -> dict[str, ModelEntry]:
    """Every registered model by name."""
    discover()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> ModelEntry:
    """The registry entry of ``name``; a one-line error with suggestions otherwise."""
    models = available()
    if name not in models:
        hint = did_you_mean(name, models) or f" (available: {', '.join(models)})"
        msg = f"model {name!r} is not in the registry{hint}"
        raise ConfigError(msg)
    return models[name]


class ModelConfig(Strict):
    """Which model to build and its parameters (validated against the registry).

    Attributes
    ----------
    name
        A registry name (``physnn models`` lists them).
    params
        The model's parameters; unknown or mistyped keys are errors.
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_params(self) -> ModelConfig:
        entry = get(self.name)
        try:
            typed = entry.params.model_validate(self.params)
        except ValidationError as err:
            raise ValueError(format_validation_error(err, entry.params, f"model {self.name!r} params")) from None
        self.__dict__["params"] = typed.model_dump(mode="json")  # resolved: every default written out
        return self

    def typed_params(self) -> Any:
        """The parameters as the registered pydantic object."""
        return get(self.name).params.model_validate(self.params)


def build_model(config: ModelConfig, io: ModelIO) -> nn.Module:
    """Build the configured model for the given input/output shapes."""
    entry = get(config.name)
    if (io.conditions is not None) != entry.generates:
        generators = ", ".join(n for n, e in available().items() if e.generates)
        msg = (f"model {config.name!r} is a generative model; train it with task.kind generation"
               if entry.generates else
               f"task.kind generation needs a generative model ({generators}), not {config.name!r}")
        raise ConfigError(msg)
    if io.reconstruct is not None and not entry.reconstructs:
        autoencoders = ", ".join(n for n, e in available().items() if e.reconstructs)
        msg = f"model {config.name!r} cannot be trained for reconstruction; use an autoencoder ({autoencoders})"
        raise ConfigError(msg)
    model = entry.build(config.typed_params(), io)
    if io.baselines:  # targets relative to a baseline: the batch's baselines join the outputs
        from physnn.models.target_maps import AttachBaseline

        model.stages.append(AttachBaseline())
    return model
