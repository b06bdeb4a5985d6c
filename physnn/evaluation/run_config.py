"""The data config a predictions file was made with, read back from its run folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from physnn.config import DataConfig
from physnn.io.metadata import config_hash


def run_data_config(meta: Mapping[str, Any], run_dir: Path | None) -> DataConfig | None:
    """``run_dir/config.yaml``'s data section when it is the config the predictions were made with (its hash is
    the ``config_hash`` of the file's ``physnn_meta``); None when there is no such file or it differs."""
    config = run_dir / "config.yaml" if run_dir is not None else None
    if config is None or not config.is_file() or not meta.get("config_hash"):
        return None
    import yaml

    try:
        saved = yaml.safe_load(config.read_text())
        if config_hash(saved) == meta["config_hash"]:
            return DataConfig.model_validate(saved["data"])
    except (yaml.YAMLError, ValidationError, KeyError, TypeError):
        pass
    return None
