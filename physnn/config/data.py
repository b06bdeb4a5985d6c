"""The data config: where the data are and how they become tensors (:class:`DataConfig` and its parts).

Configs are YAML files validated into pydantic models that forbid unknown keys,
so a typo such as ``lable:`` is an error that names the file and suggests the
right key, not a silently ignored setting. Every model here can also be built
in Python directly: ``DataConfig(files="showers.root", images=...)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from physnn.config.augment import Augment
from physnn.config.strict import Strict
from physnn.io.metadata import declared_image_unit, declared_readout

__all__ = ["Augment", "DataConfig", "FriendSpec", "ImageInput", "SequenceInput", "Split", "Standardize", "Strict",
           "TargetSpec"]


class ImageInput(Strict):
    """Detector images: one or more branches stacked as channels (layers).

    Attributes
    ----------
    branches
        Branch names. Each is a fixed-size array branch (``float[3][24][24]``),
        a flat branch reshaped with ``shape``, or a branch holding one TH2 per
        entry. Several branches are stacked along a new channel axis.
    shape
        The per-event shape of each branch when it is stored flat (e.g. a
        ``float[1728]`` or a jagged branch with 1728 values per event).
    unit
        The unit of the cell values (``GeV``), written on plots and in tables.
        ``None``: the unit the files' ``physnn_meta`` gives (physnn's
        simulator says GeV), else none is shown.
    """

    branches: list[str] = Field(min_length=1)
    shape: list[int] | None = None
    unit: str | None = None

    @field_validator("branches", mode="before")
    @classmethod
    def _one_to_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("shape")
    @classmethod
    def _positive(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or any(s <= 0 for s in v)):
            msg = f"shape must be a list of positive integers, got {v}"
            raise ValueError(msg)
        return v


class SequenceInput(Strict):
    """Variable-length sequences from jagged branches of one collection.

    Attributes
    ----------
    features
        Jagged branches, all with the same length per event (e.g. ``Muon_pt``,
        ``Muon_eta``); they are zipped per particle in this order.
    max_length
        Pad or clip every event to this many particles. ``None`` takes the
        ``length_quantile`` of the lengths in the data (reported).
    length_quantile
        Quantile of the per-event lengths used when ``max_length`` is ``None``.
    sort_by
        A feature (or other jagged branch of the collection) to order the
        particles by, e.g. ``part_pt``; ``None`` keeps the file's order.
    descending
        Sort from the largest value (the usual "leading particle first").
    kinematics
        Four jagged branches of the same collection, in the order ``[pt, eta, phi, energy]`` (e.g.
        ``[part_pt, part_eta, part_phi, part_e]``), carried next to the features *unstandardised*, in
        physical units, padded and masked like them (the batch's ``kinematics`` (N, T, 4)): what a model
        computing pairwise features (``particle_transformer``) needs. ``None``: not carried.
    """

    features: list[str] = Field(min_length=1)
    max_length: int | None = Field(default=None, gt=0)
    length_quantile: float = Field(default=0.95, gt=0.0, le=1.0)
    sort_by: str | None = None
    descending: bool = True
    kinematics: list[str] | None = Field(default=None, min_length=4, max_length=4)

    def columns(self) -> list[str]:
        """The branches zipped per particle: the features, then the kinematics (if any)."""
        return [*self.features, *(self.kinematics or [])]


class Standardize(Strict):
    """How inputs are standardised (fitted on the training split only).

    Attributes
    ----------
    method
        ``standard`` (mean/std), ``robust`` (median/interquartile range) or
        ``none``. Sequence features and scalars are standardised per feature,
        images per channel.
    exclude
        Feature names left as they are (e.g. a charge or a particle id).
    images
        Standardise images too (per channel). Off by default: calorimeter
        cells keep their GeV scale unless asked.
    """

    method: Literal["standard", "robust", "none"] = "standard"
    exclude: list[str] = Field(default_factory=list)
    images: bool = False


class Split(Strict):
    """Deterministic train/validation/test split by entry number and seed.

    Each event goes to a split by a hash of its global entry number and the
    seed, so the same event lands in the same split whether the data are read
    at once or streamed in chunks.
    """

    val: float = Field(default=0.15, ge=0.0, lt=1.0)
    test: float = Field(default=0.15, ge=0.0, lt=1.0)
    seed: int = 42

    @model_validator(mode="after")
    def _sum(self) -> Split:
        if self.val + self.test >= 1.0:
            msg = f"val + test must be below 1, got {self.val} + {self.test}"
            raise ValueError(msg)
        return self


class TargetSpec(Strict):
    """What a regression target is, so that it is judged in its own terms.

    Attributes
    ----------
    unit
        The target's unit (``GeV``), shown on plots, in tables and in
        ``metrics.json``; ``None``: unitless or unknown.
    kind
        ``energy``: resolution as σ/E per bin of the true energy and the
        calorimeter form σ/E = a/√E ⊕ b fitted; ``mass`` and ``generic``:
        robust σ and bias in the target's unit per bin of the true value, no
        √E fit (``mass`` only names what the target is).
    transform
        What the network regresses: ``none`` (the target itself) or ``log``
        (its logarithm, for a positive target spanning decades, such as a
        calorimeter's 1-100 GeV: the network's errors become relative, as a
        calorimeter's resolution is). Predictions, error bars and metrics are
        always in the target's own unit (a log-normal's median and variance).
    baseline
        A branch or ``define:`` column holding a first estimate of the target per event, e.g. the cell
        sum ``total(image)``: the network then regresses the correction ``log(target / baseline)``
        (``transform: log``) or ``target / baseline`` (``none``), as experiments calibrate a cluster's raw
        energy. The baseline is an input of the model (a file to predict on must hold it); predictions,
        error bars and intervals come back in the target's unit, per event with its baseline. It must
        be positive and finite (else an error, or the event dropped with ``nonfinite: drop``).
    """

    unit: str | None = None
    kind: Literal["energy", "mass", "generic"] = "generic"
    transform: Literal["none", "log"] = "none"
    baseline: str | None = Field(default=None, exclude_if=lambda v: v is None)  # runs without one: same dump


class FriendSpec(Strict):
    """A friend tree: branches of another tree, entry by entry aligned with the data's tree.

    Attributes
    ----------
    tree
        The friend's tree name (``None``: the only tree of each friend file).
    files
        One friend file per data file, in the same order (a path, a glob or
        a list, relative to the config file); ``None``: the friend is
        another tree of the data files themselves.
    alias
        Its branches are also named ``alias.branch``; defaults to the tree
        name (or the file name).
    """

    tree: str | None = None
    files: list[str] | None = None
    alias: str | None = None

    @field_validator("files", mode="before")
    @classmethod
    def _files_to_list(cls, v: Any) -> Any:
        return [os.fspath(v)] if isinstance(v, (str, os.PathLike)) else v

    @model_validator(mode="after")
    def _named(self) -> FriendSpec:
        if self.tree is None and self.files is None:
            msg = "give the friend's tree: (and files: unless the tree is in the data files)"
            raise ValueError(msg)
        if self.alias is not None and not self.alias.isidentifier():
            msg = f"alias {self.alias!r} is not a valid name (letters, digits and _)"
            raise ValueError(msg)
        return self


def _split_targets(data: Any) -> Any:
    """``targets: {name: spec}`` -> ``targets: [name]`` + ``target_specs``: one spec per target, defaults filled.

    The mapping form wins over a ``target_specs`` already there (a stored config given new targets); specs of
    names that are not targets are dropped (predictions on files without the truth have no targets).
    """
    if not isinstance(data, Mapping):
        return data
    data = dict(data)
    targets, specs = data.get("targets"), data.get("target_specs")
    if isinstance(targets, Mapping):
        specs = dict(targets)
        data["targets"] = targets = list(targets)
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, Sequence) or not all(isinstance(t, str) for t in targets):
        return data  # the field's own validation says what is wrong
    if specs is None or isinstance(specs, Mapping):
        data["target_specs"] = {t: (specs or {}).get(t) or {} for t in targets}
        given = {t: _baseline_of(s) for t, s in data["target_specs"].items()}
        if any(given.values()):
            data["baselines"] = given
    return data


def _baseline_of(spec: Any) -> str | None:
    """The ``baseline`` of a target spec (a mapping or a :class:`TargetSpec`), None without one."""
    return spec.get("baseline") if isinstance(spec, Mapping) else getattr(spec, "baseline", None)


class DataConfig(Strict):
    """Where the data are and how they become tensors.

    Attributes
    ----------
    files
        A path, a glob or a list of paths/globs.
    tree
        TTree or RNTuple name; ``None`` takes the only one in the file.
    friends
        Friend trees whose branches are read as the tree's (see
        :class:`FriendSpec`); a mapping is one friend. Friends that ROOT
        saved with the tree (``AddFriend`` before ``Write``) are read too.
    entry_start, entry_stop
        Entry range per file (Python slice semantics).
    define
        Derived columns, name -> expression, computed in order before the
        selection (like RDataFrame's ``Define``); a name can then be used as
        a target, scalar, observer, label, weight or in the selection, e.g.
        ``pair_pt: "hypot(px[0] + px[1], py[0] + py[1])"``, or a calorimeter's
        cell sum ``cell_sum: "total(image)"`` (``total(image[0])``: its first
        layer's); the functions are listed in :mod:`physnn.io.selection`.
    selection
        A safe cut expression, e.g. ``"energy > 10 && num(part_pt) >= 2"``.
    images, sequence, scalars
        The inputs: detector images, one jagged collection, flat branches.
    target_images
        Images an autoencoder should output in place of its input, e.g. the
        noise-free truth stored next to the digitised cells (same shape as
        ``images``; never standardised).
    label
        Integer or string branch with the class of each event.
    classes
        The class names/values in index order (``[e-, pi+]`` or ``[11, 211]``),
        a mapping value -> index, or a mapping value -> name in index order
        (``{22: photon, 111: pi0}``: the names on every plot and table).
        ``None``: integer labels 0..K-1 are used as they are, other values are
        mapped in sorted order.
    signal
        The signal class of a binary classifier, by name or value (``photon``):
        ROC, efficiencies and rejections take it as the signal. ``None``: the
        class of index 1.
    targets
        Regression targets (flat branches): a list of names, or a mapping
        name -> ``{unit: GeV, kind: energy}`` (see :class:`TargetSpec`)
        saying how each is judged. After validation this is always the list
        of names; the specs are in ``target_specs``.
    target_specs
        Unit and kind of each target (filled from the mapping form of
        ``targets``; a target given by name only is ``kind: generic`` with
        no unit; specs of names that are not targets are dropped).
    baselines
        Each target's ``baseline`` column (None for a target without one), in the targets' order, filled
        from the specs when a target has one; kept when a file without the truth leaves the targets out,
        since the model reads them.
    weight
        Per-event weight branch.
    observers
        Branches carried through untouched to the outputs.
    nonfinite
        What to do with NaN/inf in inputs and targets: ``error`` or ``drop``.
    step_size
        Chunk size when streaming (``"100 MB"`` or a number of entries).
    augment
        Flips of the training images in η and φ (see :class:`Augment`), e.g.
        ``{flip: [eta, phi]}``; never applied to validation, test or predictions.
    """

    files: list[str]
    tree: str | None = None
    friends: list[FriendSpec] = Field(default_factory=list)
    entry_start: int | None = None
    entry_stop: int | None = None
    define: dict[str, str] = Field(default_factory=dict)
    selection: str | None = None
    images: ImageInput | None = None
    sequence: SequenceInput | None = None
    scalars: list[str] = Field(default_factory=list)
    target_images: ImageInput | None = None
    label: str | None = None
    classes: list[str | int] | dict[str | int, int | str] | None = None
    signal: str | int | None = None
    targets: list[str] = Field(default_factory=list)
    target_specs: dict[str, TargetSpec] = Field(default_factory=dict)
    baselines: dict[str, str | None] = Field(default_factory=dict, exclude_if=lambda v: not v)
    weight: str | None = None
    observers: list[str] = Field(default_factory=list)
    standardize: Standardize = Field(default_factory=Standardize)
    split: Split = Field(default_factory=Split)
    nonfinite: Literal["error", "drop"] = "error"
    step_size: str | int = "100 MB"
    augment: Augment = Field(default_factory=Augment)

    @field_validator("files", mode="before")
    @classmethod
    def _files_to_list(cls, v: Any) -> Any:
        if isinstance(v, (str, os.PathLike)):
            return [os.fspath(v)]
        if isinstance(v, Sequence):
            return [os.fspath(x) for x in v]
        return v

    @model_validator(mode="before")
    @classmethod
    def _target_mapping(cls, data: Any) -> Any:
        return _split_targets(data)

    @field_validator("friends", mode="before")
    @classmethod
    def _one_friend(cls, v: Any) -> Any:
        return [v] if isinstance(v, Mapping) else v

    @field_validator("scalars", "targets", "observers", mode="before")
    @classmethod
    def _names_to_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("define")
    @classmethod
    def _check_define(cls, v: dict[str, str]) -> dict[str, str]:
        from physnn.io.selection import Expression

        for name, expression in v.items():
            if not name.isidentifier():
                msg = f"define: {name!r} is not a valid column name (letters, digits and _)"
                raise ValueError(msg)
            Expression(expression, f"define {name!r}")
        return v

    @model_validator(mode="after")
    def _has_inputs(self) -> DataConfig:
        if self.images is None and self.sequence is None and not self.scalars:
            msg = "no inputs: give at least one of images, sequence or scalars"
            raise ValueError(msg)
        if self.target_images is not None and self.images is None:
            msg = "target_images needs images: the inputs the targets correspond to"
            raise ValueError(msg)
        if self.augment.flip and (self.images is None or self.sequence is not None):
            msg = "augment.flip flips images: it needs images: and no sequence: (sequences are not flipped)"
            raise ValueError(msg)
        unknown = [n for names in self.augment.coordinates.values() for n in names if n not in self.scalars]
        if unknown:
            msg = f"augment.coordinates: {unknown} are not among the scalars ({self.scalars})"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _names_and_signal(self) -> DataConfig:
        if isinstance(self.classes, dict):
            kinds = {type(v) for v in self.classes.values()}
            if len(kinds) > 1:
                msg = ("classes: a mapping is value -> index ({11: 0, 211: 1}) or value -> name ({22: photon, "
                       f"111: pi0}}), not both: got {self.classes}")
                raise ValueError(msg)
            if kinds == {int} and sorted(self.classes.values()) != list(range(len(self.classes))):  # value -> index
                msg = f"classes: the indices must be 0..{len(self.classes) - 1}, got {sorted(self.classes.values())}"
                raise ValueError(msg)
            names = self.class_labels()
            if names is not None and len(set(names)) < len(names):
                msg = f"classes: each class needs its own name, got {self.classes}"
                raise ValueError(msg)
        if self.signal is not None:
            if self.classes is None:  # not the label: a run applied to data keeps its classes, not its label
                msg = f"signal: {self.signal!r} needs the classes (e.g. classes: {{22: photon, 111: pi0}})"
                raise ValueError(msg)
            if self.signal_index() is None:
                known = ", ".join(map(str, self.class_labels() or self.class_values() or []))
                msg = f"signal: {self.signal!r} is not one of the classes ({known})"
                raise ValueError(msg)
        return self

    def class_values(self) -> list[Any] | None:
        """The declared label values in index order, None when the classes come from the data."""
        if self.classes is None:
            return None
        if isinstance(self.classes, dict):
            if all(isinstance(v, int) for v in self.classes.values()):
                return [k for k, _ in sorted(self.classes.items(), key=lambda kv: kv[1])]
            return list(self.classes)
        return list(self.classes)

    def class_labels(self) -> list[str] | None:
        """The names given to the classes (``{22: photon, 111: pi0}``) in index order, None when none are."""
        if isinstance(self.classes, dict) and self.classes and all(isinstance(v, str) for v in self.classes.values()):
            return [str(v) for v in self.classes.values()]
        return None

    def signal_index(self) -> int | None:
        """The index of the ``signal`` class (matched by name, else by value), None without one."""
        if self.signal is None:
            return None
        for known in (self.class_labels() or [], self.class_values() or []):
            matches = [i for i, v in enumerate(known) if str(v) == str(self.signal)]
            if matches:
                return matches[0]
        return None

    def image_unit(self) -> str | None:
        """The unit of the image cells: ``images.unit``, else what the first file's ``physnn_meta`` declares."""
        return declared_image_unit(self.images.unit if self.images else None, self.files)

    def readout(self) -> dict[str, Any] | None:
        """The readout (noise, zero-suppression threshold and its kind) the first file's ``physnn_meta``
        declares, as physnn's simulator records it; None when it declares none."""
        return declared_readout(self.files)
