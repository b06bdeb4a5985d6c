"""Shared fixtures: small simulated ROOT files and the real files in ../shared/data/real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist every worker is one process of its own: one torch thread each, no oversubscription."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def torchrun(cwd: Path, *args: str, processes: int = 2):
    """``torchrun --standalone --nproc_per_node=2 ARGS`` in ``cwd`` on the CPU (one thread per process)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={processes}", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide terminal for rich, so that CLI messages with long temporary paths do not wrap mid-phrase."""
    monkeypatch.setenv("COLUMNS", "300")


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The folder of real ROOT files; tests using it skip when it is absent."""
    if not REAL.is_dir():
        pytest.skip(f"real ROOT files not found in {REAL}")
    return REAL


@pytest.fixture
def skhep_cache(real_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """scikit-hep-testdata's cache (``~/.local/skhepdata``) in a fresh home, filled with the real files: the
    package finds them there and downloads nothing."""
    pytest.importorskip("skhep_testdata")
    home = tmp_path_factory.mktemp("home")
    cache = home / ".local" / "skhepdata"
    cache.mkdir(parents=True)
    for path in real_dir.glob("*.root"):
        (cache / path.name).symlink_to(path)
    monkeypatch.setenv("HOME", str(home))
    return cache


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


def write_classifier_predictions(path: Path, truth: np.ndarray, prob: np.ndarray, *, meta_extra: dict | None = None,
                                 branches: dict | None = None, kind: str = "binary") -> Path:
    """A classifier's predictions file as physnn.predict writes it: classes 22, 111 (and 211 for three columns of
    ``prob``) of the label pdgid; ``meta_extra`` joins ``physnn_meta``, ``branches`` the tree (e.g. an observer)."""
    import json

    import uproot

    classes = [22, 111, 211][: prob.shape[1]]
    meta = {"command": "physnn predict", "task": {"kind": kind, "classes": classes}, "label": "pdgid",
            "mc_samples": 0, **(meta_extra or {})}
    tree = {"entry": np.arange(len(truth)), "split": np.full(len(truth), -1, np.int8), "prob": prob,
            "pred": prob.argmax(1), "score": prob[:, 1], "true_class": truth.astype(np.int32),
            "pdgid": np.asarray(classes)[truth].astype(np.int32), **(branches or {})}
    with uproot.recreate(path) as f:
        f["predictions"] = tree
        f["physnn_meta"] = json.dumps(meta)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


#: A small CNN for fast tests: one conv, one pooling, a dense head with dropout.
TINY_CNN = {"name": "cnn", "params": {
    "features": [{"type": "conv", "filters": 4, "kernel_size": 3}, {"type": "pool", "mode": "max", "pool_size": 4},
                 {"type": "flatten"}],
    "head": [{"type": "dense", "units": 16}, {"type": "dropout", "rate": 0.3}],
}}


def run_config(files, *, task: str = "classification", epochs: int = 3, **train) -> dict:
    """A run config on simulated showers: e/pi classification or energy regression."""
    data = {"files": str(files), "images": {"branches": ["image"]}, "observers": ["energy", "pdgid"]}
    if task == "classification":
        data.update(selection="pdgid != 22", label="pdgid", classes=[11, 211])
    else:
        data.update(targets=["energy"], observers=["pdgid"])
    return {"data": data, "model": TINY_CNN, "task": {"kind": task},
            "train": {"epochs": epochs, "batch_size": 32, "seed": 1, "early_stopping": {"patience": None}, **train}}


@pytest.fixture(scope="session")
def epi_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2000 electron and pion showers."""
    import physnn

    path = tmp_path_factory.mktemp("sim") / "epi.root"
    physnn.simulate("showers", path, events=2000, seed=5, config={"particles": ["e-", "pi+"]})
    return path


@pytest.fixture(scope="session")
def cls_run(epi_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """An e/pi classifier trained for a few epochs."""
    import physnn

    out = tmp_path_factory.mktemp("runs") / "epi"
    return physnn.train(run_config(epi_file, epochs=6, optimizer={"lr": 3e-3}), out=out, progress=False)


@pytest.fixture(scope="session")
def reg_run(showers_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """An energy regressor with a Gaussian head."""
    import physnn

    out = tmp_path_factory.mktemp("runs") / "energy"
    return physnn.train(run_config(showers_file, task="regression", epochs=4), out=out, progress=False)


TINY_GAN = {"name": "gan", "params": {"latent_dim": 8, "generator_channels": [8, 4], "critic_channels": [4, 8],
                                      "critic_hidden": 16, "n_critic": 2}}


#: the shipped readout (configs/model/gan.yaml): hit fluctuations, the declared noise, the energy the readout keeps
TINY_GAN_HITS = {"name": "gan", "params": {**TINY_GAN["params"], "cell_fluctuations": True, "energy_kept": "readout",
                                           "noise_width": "declared", "energy_lr": 1e-3}}
#: the shipped readout with whole spots (hit_counts) instead of Gamma hits
TINY_GAN_SPOTS = {"name": "gan", "params": {**TINY_GAN_HITS["params"], "hit_counts": True}}


def gan_config(files, *, epochs: int = 2, model: dict | None = None, **train) -> dict:
    """A GAN run on simulated showers conditioned on energy, impact point and particle type."""
    data = {"files": str(files), "tree": "showers", "images": {"branches": ["image"]},
            "scalars": ["energy", "x0", "y0"], "label": "pdgid", "standardize": {"method": "none"}}
    return {"data": data, "model": model or TINY_GAN, "task": {"kind": "generation"},
            "train": {"epochs": epochs, "batch_size": 32, "seed": 3, "early_stopping": {"patience": None},
                      "optimizer": {"lr": 1e-3, "betas": [0.5, 0.9]}, **train}}


@pytest.fixture(scope="session")
def gan_run(showers_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny conditional GAN trained for two epochs."""
    import physnn

    out = tmp_path_factory.mktemp("gan") / "run"
    physnn.train(gan_config(showers_file, epochs=2), out=out)
    return out


@pytest.fixture(scope="session")
def gan_hits_run(showers_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GAN with the shipped readout (hit fluctuations, declared noise), trained for two epochs."""
    import physnn

    out = tmp_path_factory.mktemp("gan_hits") / "run"
    physnn.train(gan_config(showers_file, epochs=2, model=TINY_GAN_HITS), out=out)
    return out


@pytest.fixture(scope="session")
def gan_spots_run(showers_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GAN with whole spots (hit_counts) and the declared noise, trained for two epochs."""
    import physnn

    out = tmp_path_factory.mktemp("gan_spots") / "run"
    physnn.train(gan_config(showers_file, epochs=2, model=TINY_GAN_SPOTS), out=out)
    return out


TINY_AE = {"name": "conv_autoencoder", "params": {
    "encoder": [{"type": "conv", "filters": 8, "kernel_size": 3}, {"type": "pool", "pool_size": 2}],
    "code_size": 8, "dropout": 0.1}}
NOISE = [{"type": "gaussian", "sigma": 0.1}, {"type": "dead_cells", "fraction": 0.05}]


def ae_config(files, *, epochs: int = 2, model: dict | None = None, **task) -> dict:
    return {"data": {"files": str(files), "images": {"branches": ["image"]}, "observers": ["energy", "pdgid"]},
            "model": model or TINY_AE, "task": {"kind": "reconstruction", "noise": NOISE, **task},
            "train": {"epochs": epochs, "batch_size": 32, "seed": 2, "early_stopping": {"patience": None}}}


@pytest.fixture(scope="session")
def ae_run(showers_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """A tiny denoising autoencoder trained for three epochs."""
    import physnn

    out = tmp_path_factory.mktemp("runs") / "ae"
    return physnn.train(ae_config(showers_file, epochs=3), out=out, progress=False)


@pytest.fixture(autouse=True)
def _small_classifier_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """The classifier test of ``physnn compare`` with a small network: the challenge's 3 x 2048 for 50 epochs takes
    about a second per batch of 1000 on one CPU thread. Tests of the challenge's own network pass ``spec``."""
    from physnn.evaluation import classifier_test

    small = classifier_test.ClassifierSpec(width=64, layers=2, epochs=40, batch_size=64, lr=1e-3, patience=8)
    monkeypatch.setattr(classifier_test, "DEFAULT", small)
