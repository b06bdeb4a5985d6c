"""The configs of ``configs/`` ship with physnn and are named ``physnn:NAME`` from any folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from physnn.cli import app
from physnn.config import DataConfig, load_config, shipped, shipped_names
from physnn.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_a_shipped_config_is_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shipped("train/epi.yaml").read_text() == (REPO / "configs/train/epi.yaml").read_text()
    assert "data/events.yaml" in shipped_names()
    cfg = load_config("physnn:data/events.yaml", DataConfig, ["files=mine.root"])
    assert cfg.files == ["mine.root"]  # an override is relative to the current folder
    assert cfg.tree == "events"


def test_an_unknown_shipped_config_is_one_line_with_close_names():
    with pytest.raises(ConfigError, match=r"physnn:train/epy\.yaml: physnn ships no such config \(did you mean "
                                          r"'train/epi\.yaml'"):
        load_config("physnn:train/epy.yaml", DataConfig)


def test_the_command_line_reads_a_shipped_config(events_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["load", "physnn:data/events.yaml", "--set", f"files={events_file}"])
    assert result.exit_code == 0, result.output
    assert "events" in result.output


def test_an_installed_package_reads_its_own_copy(tmp_path, monkeypatch):
    from physnn.config import package_data as module

    (tmp_path / "configs/train").mkdir(parents=True)
    (tmp_path / "configs/train/epi.yaml").write_text("data: {}\n")
    monkeypatch.setattr(module, "_PACKAGE", tmp_path)
    assert shipped("physnn:train/epi.yaml") == tmp_path / "configs/train/epi.yaml"


def test_the_wheel_carries_the_configs():
    text = (REPO / "pyproject.toml").read_text()  # tomllib is not in Python 3.10
    section = text.split("[tool.hatch.build.targets.wheel.force-include]\n", 1)[1].split("\n[", 1)[0]
    assert '"configs" = "physnn/configs"' in section.splitlines()
