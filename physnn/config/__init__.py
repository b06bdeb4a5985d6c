"""Typed configuration objects, YAML loading and ``--set`` overrides.

- :mod:`physnn.config.data`: :class:`DataConfig` and its parts (images,
  sequences, standardisation, splits, targets, friends);
- :mod:`physnn.config.files`: YAML files, overrides, paths relative to the
  file, validation errors as one line;
- :mod:`physnn.config.package_data`: the configs that ship with physnn, found from
  any folder (``"physnn:train/epi.yaml"`` or ``shipped("train/epi.yaml")``).
"""

from __future__ import annotations

from physnn.config.data import (
    Augment,
    DataConfig,
    FriendSpec,
    ImageInput,
    SequenceInput,
    Split,
    Standardize,
    Strict,
    TargetSpec,
)
from physnn.config.files import (
    apply_overrides,
    format_validation_error,
    load_config,
    read_yaml,
    rebase_data_paths,
    relative_to,
)
from physnn.config.package_data import resolve_config_path, shipped, shipped_names

__all__ = ["Augment", "DataConfig", "FriendSpec", "ImageInput", "SequenceInput", "Split", "Standardize", "Strict",
           "TargetSpec", "apply_overrides", "format_validation_error", "load_config", "read_yaml",
           "rebase_data_paths", "relative_to", "resolve_config_path", "shipped", "shipped_names"]
