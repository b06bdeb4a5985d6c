"""Every YAML shipped in configs/ validates, so the documented examples stay true."""

from __future__ import annotations

from pathlib import Path

import pytest

from physnn.config import DataConfig, load_config
from physnn.simulation import ShowerConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted((CONFIGS / "data").glob("*.yaml")), ids=lambda p: p.name)
def test_data_configs_validate(path):
    cfg = load_config(path, DataConfig)
    assert cfg.files


def test_simulator_config_validates():
    cfg = load_config(CONFIGS / "simulate" / "calorimeter.yaml", ShowerConfig)
    assert cfg == ShowerConfig()  # the documented file holds the defaults


@pytest.mark.parametrize("name", ["cms_dimuon_rntuple.yaml", "hzz_leptons.yaml", "th2_images.yaml"])
def test_real_data_configs_load(name, real_dir, monkeypatch):
    import physnn

    monkeypatch.chdir(CONFIGS.parent)
    data = physnn.load(CONFIGS / "data" / name)
    assert len(data.train) > 0
