"""The generation task: learn to produce detector images given their conditions (GAN fast simulation).

The data config names what a generated shower is conditioned on: the
``scalars`` (e.g. ``[energy, x0, y0]``) and, optionally, the ``label``
(e.g. ``pdgid``, one-hot encoded); the ``images`` are what is generated.
The task turns them into the two things a GAN needs:

- **conditions**: one row of numbers per event; the incident energy
  (``task.incident_energy``) enters as ``log E``, every scalar is
  standardised with the training split's mean and width, and the label is
  one-hot;
- **cell representation** (:mod:`physnn.models.cells`): ``x = log(1 + E / eps)``
  with ``eps`` the cell scale (``task.cell_scale``, by default the
  zero-suppression threshold), so that core and halo cells are O(1) numbers
  for the networks, signed when the readout keeps negative noise cells;
  generated cells below the threshold (``task.zero_suppression``, by default
  what the files' ``physnn_meta["readout"]`` declares, else the smallest
  non-zero cell of the training images) are set to exactly zero, as the
  detector's readout does.

To generate new samples the task also keeps the training distribution of
every condition (quantiles, class frequencies), so conditions that the user
does not fix are drawn like the training showers', and the output layout
(tree, branch names) so that generated files read like the simulated ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from physnn.config import DataConfig
from physnn.errors import ConfigError
from physnn.models.cells import CellCode, fit_cell_code, mean_shower
from physnn.models.gan_graph import GeneratorModel
from physnn.models.gan_step import AdversarialStep
from physnn.models.task_config import TaskConfig
from physnn.models.tasks import Task, class_counts, register_task

#: Quantile levels kept per condition, to sample conditions like the training split's.
LEVELS = np.linspace(0.0, 1.0, 201)
TILE = 64  #: showers per network pass when generating without gradients (:meth:`GenerationTask.generate`)


@register_task("generation")
class GenerationTask(Task):
    """GANs: generate images given conditions (see the module docs).

    Batches get ``real`` (the images in the cell representation, with a layer
    axis), ``conditions`` and ``incident`` (the incident energy in physical
    units, or ones) from :meth:`augment`.
    """

    def __init__(self, *, shape: list[int], squeeze: bool, scalars: list[str], classes: list[Any] | None,
                 label: str | None, incident: int | None, cell_scale: float, threshold: float,
                 data_center: Mapping[str, list[float]], data_scale: Mapping[str, list[float]],
                 cond_center: list[float], cond_scale: list[float], quantiles: Mapping[str, list[float]],
                 class_freq: list[float] | None, layout: Mapping[str, Any],
                 layer_prior: list[float] | None = None, shape_prior: list[float] | None = None,
                 signed: bool = False, noise: float | None = None) -> None:
        super().__init__("generation", "adversarial")
        self.shape = [int(s) for s in shape]
        self.squeeze = squeeze
        self.scalars = list(scalars)
        self.classes = None if classes is None else list(classes)
        self.label = label
        self.incident = incident
        #: the cell representation and the readout's zero suppression in it
        self.cells = CellCode(scale=float(cell_scale), threshold=float(threshold), signed=bool(signed), noise=noise)
        self.data_center = {k: list(v) for k, v in data_center.items()}
        self.data_scale = {k: list(v) for k, v in data_scale.items()}
        self.cond_center = torch.tensor(cond_center, dtype=torch.float32)
        self.cond_scale = torch.tensor(cond_scale, dtype=torch.float32)
        self.quantiles = {k: list(v) for k, v in quantiles.items()}
        self.class_freq = None if class_freq is None else list(class_freq)
        self.layout = dict(layout)
        #: log of the mean energy fraction of each layer, and of the mean shower shape (L, H, W)
        self.layer_prior = torch.tensor(layer_prior or [0.0] * self.shape[0], dtype=torch.float32)
        self.shape_prior = (None if shape_prior is None else
                            torch.tensor(shape_prior, dtype=torch.float32).reshape(self.shape))
        self._image_affine = self._affine("image", [-1, 1, 1])
        self._scalar_affine = self._affine("scalars", [-1])

    # -- construction and storage ------------------------------------------
    @classmethod
    def from_config(cls, cfg: TaskConfig, data: DataConfig, classes: list[Any] | None,  # type: ignore[override]
                    train: Mapping[str, torch.Tensor], transform: Any = None,
                    summary: Mapping[str, Any] | None = None) -> GenerationTask:
        """Fit the condition scaling, cell scale, threshold and condition distributions on the training split.

        The class frequencies are exact over the whole training split (``summary``); the rest comes from the
        ``train`` tensors, a seeded uniform sample of it when streaming."""
        if "image" not in train or data.images is None:
            msg = "task.kind generation generates images: add images: {branches: [...]} to the data config"
            raise ConfigError(msg)
        if len(data.images.branches) != 1:
            msg = (f"task.kind generation: give the images as one branch (float[layers][H][W]); "
                   f"the data config stacks {data.images.branches}")
            raise ConfigError(msg)
        if data.sequence is not None or data.targets:
            msg = "task.kind generation is conditioned on data.scalars and data.label; remove sequence and targets"
            raise ConfigError(msg)
        if cfg.noise or cfg.loss not in ("auto",) or cfg.class_weight is not None:
            msg = "task.noise, task.loss and task.class_weight do not apply to task.kind generation"
            raise ConfigError(msg)
        shape = list(train["image"].shape[1:])
        if len(shape) not in (2, 3):
            msg = f"task.kind generation: images must be (layers, H, W) or (H, W) per event, got {shape}"
            raise ConfigError(msg)
        squeeze = len(shape) == 2
        if squeeze:
            shape = [1, *shape]
        center = {} if transform is None else dict(transform.center)
        scale = {} if transform is None else dict(transform.scale)
        probe = cls(shape=shape, squeeze=squeeze, scalars=data.scalars, classes=classes, label=data.label,
                    incident=None, cell_scale=1.0, threshold=0.0, data_center=center, data_scale=scale,
                    cond_center=[], cond_scale=[], quantiles={}, class_freq=None, layout={})
        raw_scalars = probe.raw_scalars(train).double()
        incident = cls._incident_index(cfg.incident_energy, data.scalars)
        if incident is not None and not bool((raw_scalars[:, incident] > 0).all()):
            msg = f"task.incident_energy {data.scalars[incident]!r}: the incident energy must be positive"
            raise ConfigError(msg)
        cells = probe.phys_image(train["image"])
        if not bool((cells != 0).any()):
            msg = f"{', '.join(data.files)}: every training image is empty; nothing to learn"
            raise ConfigError(msg)
        code = fit_cell_code(cells, data.readout(), cfg.zero_suppression, cfg.cell_scale)
        cond = raw_scalars.clone()
        if incident is not None:
            cond[:, incident] = cond[:, incident].log()
        cond_center = cond.mean(0) if len(cond) else torch.zeros(cond.shape[1], dtype=torch.float64)
        cond_scale = cond.std(0) if len(cond) > 1 else torch.ones_like(cond_center)
        cond_scale = torch.where(cond_scale > 0, cond_scale, torch.ones_like(cond_scale))
        quantiles = {name: np.quantile(raw_scalars[:, j].numpy(), LEVELS).tolist()
                     for j, name in enumerate(data.scalars)}
        class_freq = None
        if classes is not None:
            counts = class_counts(classes, train, summary).double()
            class_freq = (counts / counts.sum()).tolist()
        layer_prior, shape_prior = mean_shower(cells.unsqueeze(1) if squeeze else cells, code.scale,
                                               raw_scalars[:, incident] if incident is not None else None)
        layout = {"tree": data.tree, "image": data.images.branches[0], "scalars": list(data.scalars),
                  "label": data.label, "class_index": "label" if data.label not in (None, "label") else None}
        return cls(shape=shape, squeeze=squeeze, scalars=data.scalars, classes=classes, label=data.label,
                   incident=incident, cell_scale=code.scale, threshold=code.threshold, signed=code.signed,
                   noise=code.noise,
                   data_center=center, data_scale=scale, cond_center=cond_center.tolist(),
                   cond_scale=cond_scale.tolist(), quantiles=quantiles, class_freq=class_freq, layout=layout,
                   layer_prior=layer_prior, shape_prior=shape_prior)

    @staticmethod
    def _incident_index(name: str | None, scalars: list[str]) -> int | None:
        if name is None:
            return None
        if name == "auto":
            return scalars.index("energy") if "energy" in scalars else None
        if name not in scalars:
            msg = f"task.incident_energy {name!r} is not among data.scalars {scalars}"
            raise ConfigError(msg)
        return scalars.index(name)

    COMMANDS: ClassVar[tuple[str, ...]] = ("generate",)
    ENSEMBLES: ClassVar[bool] = False

    def io_fields(self) -> dict[str, Any]:
        """The generator's conditions, and whether the incident energy is one of them."""
        return {"conditions": self.n_conditions, "incident_energy": self.incident is not None}

    def training_step(self) -> Any:
        """The alternating generator/critic scheme (:class:`~physnn.models.gan_step.AdversarialStep`)."""
        return AdversarialStep()

    def next_command(self, run: Any) -> str:
        """A GAN generates showers."""
        return f"physnn generate {run} --events 10000 --out fastsim.root"

    def graph(self, model: Any, transform: Any, io: Any, mc_samples: int = 0) -> torch.nn.Module:
        """The generator as an exportable graph of its conditions and random numbers
        (:class:`~physnn.models.gan_graph.GeneratorModel`); a GAN has no MC-dropout graph."""
        if mc_samples:
            msg = "export --mc-samples: MC dropout is for classifiers and regressors, not a generation run"
            raise ConfigError(msg)
        return GeneratorModel(model, self)

    def state(self) -> dict[str, Any]:
        """Plain types for a checkpoint."""
        return {"kind": self.kind, "loss": self.loss_name, "shape": self.shape, "squeeze": self.squeeze,
                "scalars": self.scalars, "classes": self.classes, "label": self.label, "incident": self.incident,
                "cell_scale": self.cell_scale, "threshold": self.threshold, "signed": self.cells.signed,
                "noise": self.cells.noise, "data_center": self.data_center,
                "data_scale": self.data_scale, "cond_center": self.cond_center.tolist(),
                "cond_scale": self.cond_scale.tolist(), "quantiles": self.quantiles, "class_freq": self.class_freq,
                "layout": self.layout, "layer_prior": self.layer_prior.tolist(),
                "shape_prior": None if self.shape_prior is None else self.shape_prior.flatten().tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> GenerationTask:
        """Rebuild from :meth:`state`."""
        keys = ("shape", "squeeze", "scalars", "classes", "label", "incident", "cell_scale", "threshold",
                "data_center", "data_scale", "cond_center", "cond_scale", "quantiles", "class_freq", "layout",
                "layer_prior", "shape_prior")
        return cls(**{k: state[k] for k in keys}, signed=state.get("signed", False), noise=state.get("noise"))

    # -- shapes ------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        return int(np.prod(self.shape))

    @property
    def n_conditions(self) -> int:
        """Width of the condition vector: the scalars and the one-hot label."""
        return len(self.scalars) + (len(self.classes) if self.classes is not None else 0)

    def describe(self) -> str:
        cond = [*self.scalars, *([f"{self.label} (one-hot)"] if self.label else [])]
        return (f"generation of {tuple(self.shape)} images given {', '.join(cond) or 'nothing'} "
                f"({self.cells.describe()})")

    # -- units -------------------------------------------------------------
    def _affine(self, key: str, trailing: list[int]) -> tuple[torch.Tensor, torch.Tensor] | None:
        if key not in self.data_center:
            return None
        center = torch.tensor(self.data_center[key], dtype=torch.float32)
        scale = torch.tensor(self.data_scale[key], dtype=torch.float32)
        if bool((center == 0).all() and (scale == 1).all()):
            return None
        return center.reshape(trailing), scale.reshape(trailing)

    def phys_image(self, image: torch.Tensor) -> torch.Tensor:
        """A batch's ``image`` tensor (maybe standardised by the data config) in physical units."""
        if self._image_affine is None:
            return image.float()
        center, scale = self._image_affine
        if self.squeeze:
            center, scale = center[0], scale[0]
        return image.float() * scale.to(image.device) + center.to(image.device)

    def raw_scalars(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The condition scalars of a batch in physical units, (N, S)."""
        if not self.scalars:
            n = len(next(iter(batch.values())))
            return torch.zeros(n, 0, device=next(iter(batch.values())).device)
        x = batch["scalars"].float()
        if self._scalar_affine is None:
            return x
        center, scale = self._scalar_affine
        return x * scale.to(x.device) + center.to(x.device)

    @property
    def cell_scale(self) -> float:
        """``eps`` of the cell representation (physical units)."""
        return self.cells.scale

    @property
    def threshold(self) -> float:
        """The readout's zero-suppression threshold (physical units)."""
        return self.cells.threshold

    def to_model(self, phys: torch.Tensor) -> torch.Tensor:
        """Cells in physical units -> the networks' representation (:class:`CellCode`), (N, L, H, W)."""
        x = self.cells.encode(phys)
        return x.unsqueeze(1) if self.squeeze else x

    def to_phys(self, x: torch.Tensor) -> torch.Tensor:
        """The networks' representation -> cells in physical units (the data's image shape)."""
        phys = self.cells.decode(x)
        return phys[:, 0] if self.squeeze else phys

    def suppress(self, x: torch.Tensor) -> torch.Tensor:
        """Zero suppression of generated cells (model space); straight-through gradient."""
        return self.cells.suppress(x)

    # -- conditions --------------------------------------------------------
    def encode_conditions(self, scalars: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        """Physical condition scalars (N, S) and class indices (N,) -> the condition vector (N, C)."""
        x = scalars.float()
        if self.incident is not None:
            x = x.clone()
            x[:, self.incident] = x[:, self.incident].clamp(min=1e-12).log()
        x = (x - self.cond_center.to(x.device)) / self.cond_scale.to(x.device)
        if self.classes is not None:
            if label is None:
                msg = f"generation: the conditions need the class ({self.label})"
                raise ConfigError(msg)
            onehot = torch.nn.functional.one_hot(label.long(), len(self.classes)).to(x.dtype)
            x = torch.cat([x, onehot], dim=1)
        return x

    def augment(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        """Add ``real`` (cell representation), ``conditions`` and ``incident`` (GeV, or ones)."""
        out = dict(batch)
        scalars = self.raw_scalars(batch)
        out["real"] = self.to_model(self.phys_image(batch["image"]))
        out["conditions"] = self.encode_conditions(scalars, batch.get("label"))
        out["incident"] = (scalars[:, self.incident] if self.incident is not None
                           else torch.ones(len(scalars), device=scalars.device))
        return out

    def offset(self, incident: torch.Tensor) -> torch.Tensor:
        """Where a layer-energy generator's log layer energies start, (N, L): ``log(E_inc / eps)`` plus the
        log mean fraction of each layer (without an incident energy: the log mean layer energy over eps)."""
        prior = self.layer_prior.to(incident.device)
        if self.incident is None:
            return prior.expand(incident.shape[0], -1)
        return (incident.float().clamp(min=1e-12) / self.cell_scale).log()[:, None] + prior

    def generate(self, model: torch.nn.Module, z: torch.Tensor, cond: torch.Tensor, incident: torch.Tensor,
                 energies: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 readout_draws: torch.Tensor | None = None) -> torch.Tensor:
        """Generated images in model space, with the readout: noise, then zero suppression. This is what the critic
        judges and generate writes. ``energies``: layer energies :meth:`layer_energies` to generate the shapes for
        (training the GAN on the real showers' energies); ``None`` samples them (a generator with an energy density).
        ``generator`` draws the cells' readout noise (seeded generation); None: torch's global one. Without gradients
        on a CPU the network runs ``TILE`` showers at a time (its feature maps stay in the cache); the noise is drawn
        for the whole batch first, so the showers do not depend on the tiling. ``readout_draws``: those standard
        normal draws, (N, *shape), given by the caller (:meth:`readout_shape` says whether any are needed)."""
        shape = self.readout_shape(model)
        noise = None if shape is None else readout_draws if readout_draws is not None else torch.randn(
            (len(z), *shape), generator=generator, device=z.device if generator is None else generator.device)
        step = len(z) if torch.is_grad_enabled() or z.device.type != "cpu" else TILE
        parts = [self._generate(model, *(None if t is None else t[lo:lo + step].to(z.device)
                                         for t in (z, cond, incident, energies, noise)))
                 for lo in range(0, max(len(z), 1), max(step, 1))]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def readout_shape(self, model: torch.nn.Module) -> tuple[int, ...] | None:
        """The per-shower shape of the readout's standard normal draws (hit fluctuations, noise), None without
        any: ``(L, H, W)`` for the noise alone, else ``(k, L, H, W)``."""
        k = model.generator.draws_per_cell(self.threshold > 0)
        return None if k == 0 else tuple(self.shape) if k == 1 else (k, *self.shape)

    def _generate(self, model: torch.nn.Module, z: torch.Tensor, cond: torch.Tensor, incident: torch.Tensor,
                  energies: torch.Tensor | None, noise: torch.Tensor | None) -> torch.Tensor:
        prior = None if self.shape_prior is None else self.shape_prior.to(z.device)
        x = model.generator(z, cond, self.offset(incident), prior, energies)
        return self.suppress(x if noise is None else model.generator.readout(x, noise, self.cells, cond))

    def layer_energies(self, x: torch.Tensor) -> torch.Tensor:
        """The layer energies of images in model space, (N, L): :meth:`~physnn.models.cells.CellCode.layer_energies`
        (``log(1 + E_l / eps)``, signed for a readout that keeps negative cells)."""
        return self.cells.layer_energies(x)

    def incident_of(self, raw: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        """The incident energies of :meth:`sample_conditions` output (ones without an incident energy)."""
        if self.incident is None:
            n = len(raw["class"]) if "class" in raw else len(next(iter(raw.values())))
            return torch.ones(n, device=device)
        return torch.from_numpy(np.asarray(raw[self.scalars[self.incident]], dtype=np.float32)).to(device)

    def critic_features(self, x: torch.Tensor, incident: torch.Tensor) -> torch.Tensor:
        """High-level features of images in model space, differentiable, (N, 5 L + 1): per layer the energy
        over the incident energy (over eps without one), the energy-weighted centroid and width in x and y
        (in units of the grid's half size, from its centre), then the total energy over the incident energy.
        Without an incident energy, ``log(1 + E / eps)`` replaces the energy fractions."""
        cells = self.cells.in_scale_units(x) * self.cell_scale  # (N, L, H, W), GeV
        height, width = cells.shape[-2:]
        ys = (torch.arange(height, device=x.device, dtype=x.dtype) - (height - 1) / 2) / (height / 2)
        xs = (torch.arange(width, device=x.device, dtype=x.dtype) - (width - 1) / 2) / (width / 2)
        energy = cells.sum((2, 3))
        # centroids and widths weigh the positive cells only (as physnn.physics.showers does): a layer of
        # noise cells of both signs sums to ~0, and dividing by it sends the features to infinity
        weights = cells.clamp(min=0.0)
        safe = weights.sum((2, 3)) + 1e-3 * self.cell_scale
        px, py = weights.sum(2), weights.sum(3)  # (N, L, W), (N, L, H)
        cx, cy = (px * xs).sum(2) / safe, (py * ys).sum(2) / safe
        wx = ((px * xs**2).sum(2) / safe - cx**2).clamp(min=0.0).add(1e-6).sqrt()
        wy = ((py * ys**2).sum(2) / safe - cy**2).clamp(min=0.0).add(1e-6).sqrt()
        if self.incident is not None:
            fraction = energy / incident[:, None]
        else:  # no incident energy: the log of the layer energy over eps
            fraction = torch.log1p((energy / self.cell_scale).clamp(min=0.0))  # a layer of noise sums to < 0
        return torch.cat([fraction, cx, cy, wx, wy, fraction.sum(1, keepdim=True)], dim=1)

    @property
    def energy_columns(self) -> list[int]:
        """The columns of :meth:`critic_features` holding energies (per layer, then the total)."""
        n_layers = self.shape[0]
        return [*range(n_layers), 5 * n_layers]

    def critic_of(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> Any:
        """The critic of a batch as a function of images only: conditions and energy features bound."""
        cond, incident = batch["conditions"], batch["incident"]
        uses_features = model.critic.n_extra > 0

        def critic(x: torch.Tensor) -> torch.Tensor:
            return model.critic(x, cond, self.critic_features(x, incident) if uses_features else None)

        return critic

    def sample_conditions(self, n: int, rng: np.random.Generator, *, fixed: Mapping[str, Any] | None = None,
                          classes: list[Any] | None = None) -> dict[str, np.ndarray]:
        """Draw ``n`` events' raw conditions with ``rng``: fixed values or ranges where given, else like the training
        split. ``fixed``: scalar name -> a value, a ``(low, high)`` range sampled uniformly, or ``(low, high, "log")``
        sampled log-uniformly; ``classes``: the allowed label values (uniformly mixed; default: the training mix).
        Returns scalar name -> float32 array, and ``"class"`` -> class indices."""
        fixed = dict(fixed or {})
        unknown = [k for k in fixed if k not in self.scalars]
        if unknown:
            msg = f"generate: {', '.join(unknown)} is not a condition of this run (conditions: {self.scalars})"
            raise ConfigError(msg)
        out: dict[str, np.ndarray] = {}
        for name in self.scalars:
            spec = fixed.get(name)
            if spec is None:
                out[name] = np.interp(rng.uniform(size=n), LEVELS, self.quantiles[name])
            elif isinstance(spec, (tuple, list)):
                lo, hi = float(spec[0]), float(spec[1])
                if len(spec) > 2 and spec[2] == "log":
                    out[name] = np.exp(rng.uniform(np.log(lo), np.log(hi), size=n))
                else:
                    out[name] = rng.uniform(lo, hi, size=n)
            else:
                out[name] = np.full(n, float(spec))
            out[name] = out[name].astype(np.float32)
        if self.classes is not None:
            if classes is None:
                assert self.class_freq is not None
                out["class"] = rng.choice(len(self.classes), size=n, p=np.asarray(self.class_freq))
            else:
                index = [self.class_index(value) for value in classes]
                if None in index:
                    value = classes[index.index(None)]
                    msg = f"generate: {self.label} {value!r} is not among the run's classes {self.classes}"
                    raise ConfigError(msg)
                out["class"] = np.asarray(index)[rng.integers(0, len(index), size=n)]
        return out

    def class_index(self, value: Any) -> int | None:
        """The index of the label ``value`` among the run's classes (equal as a value or as text), None if absent."""
        return next((i for i, c in enumerate(self.classes or []) if c == value or str(c) == str(value)), None)

    def conditions_tensor(self, raw: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        """The condition vector of :meth:`sample_conditions` output."""
        n = len(raw["class"]) if "class" in raw else len(next(iter(raw.values()))) if raw else 0
        scalars = (torch.from_numpy(np.stack([raw[s] for s in self.scalars], axis=1)) if self.scalars
                   else torch.zeros(n, 0))
        label = torch.from_numpy(np.asarray(raw["class"])) if "class" in raw else None
        return self.encode_conditions(scalars.to(device), None if label is None else label.to(device))

    # -- validation --------------------------------------------------------
    def metric_goals(self) -> dict[str, str | float]:
        """Separation powers (0: identical histograms) and the critic's distance are minimised."""
        return {"loss": "min", "sep_energy": "min", "sep_layers": "min", "distance": "min"}
