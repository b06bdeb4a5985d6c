"""Shared fixtures: small simulated ROOT files and the real files in ../shared/data/real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The folder of real ROOT files; tests using it skip when it is absent."""
    if not REAL.is_dir():
        pytest.skip(f"real ROOT files not found in {REAL}")
    return REAL


@pytest.fixture(scope="session")
def showers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import physnn

    path = tmp_path_factory.mktemp("sim") / "showers.root"
    physnn.simulate("showers", path, events=600, seed=3)
    return path


@pytest.fixture(scope="session")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import physnn

    path = tmp_path_factory.mktemp("sim") / "events.root"
    physnn.simulate("events", path, events=1500, seed=4)
    return path


@pytest.fixture
def write_root(tmp_path: Path):
    """Write a small TTree from a dict of arrays: write_root({"x": ...}, name="t.root")."""
    import uproot

    def make(branches: dict, name: str = "small.root", tree: str = "tree", compression=None) -> Path:
        path = tmp_path / name
        with uproot.recreate(path, compression=compression or uproot.ZLIB(1)) as f:
            f[tree] = branches
        return path

    return make


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
