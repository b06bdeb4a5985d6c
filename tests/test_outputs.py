"""Every output file: provenance metadata, seeded reproducibility, and crash safety under kill -9."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import uproot
import yaml
from conftest import run_config

import physnn
from physnn.io.metadata import META, REQUIRED, config_hash
from physnn.io.write import atomic_path, remove_stale_temporaries
from physnn.training.config import RunConfig

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _outputs(kind: str, runs: dict, files: dict, out: Path) -> tuple[Path, int, list[str]]:
    """Write one physnn output of each kind; return (path, seed, expected inputs)."""
    if kind == "simulate showers":
        physnn.simulate("showers", out, events=50, seed=4)
        return out, 4, []
    if kind == "simulate events":
        physnn.simulate("events", out, events=50, seed=5)
        return out, 5, []
    run = runs[kind]
    if kind == "predict":
        physnn.predict(run, files["epi"], out=out, mc_samples=3, seed=6)
        return out, 6, [str(files["epi"]), str(run / "best.pt")]
    if kind == "denoise":
        physnn.denoise(run, files["showers"], out=out, seed=7)
        return out, 7, [str(files["showers"]), str(run / "best.pt")]
    if kind == "encode":
        physnn.encode(run, files["showers"], out=out, seed=8)
        return out, 8, [str(files["showers"]), str(run / "best.pt")]
    physnn.generate(run, out, events=40, seed=9)
    return out, 9, [str(run / "best.pt")]


@pytest.mark.parametrize("kind", ["simulate showers", "simulate events", "predict", "denoise", "encode", "generate"])
def test_every_output_file_carries_provenance(kind, cls_run, ae_run, gan_run, epi_file, showers_file, tmp_path):
    runs = {"predict": cls_run.run_dir, "denoise": ae_run.run_dir, "encode": ae_run.run_dir, "generate": gan_run}
    path, seed, inputs = _outputs(kind, runs, {"epi": epi_file, "showers": showers_file}, tmp_path / "out.root")
    with uproot.open(path) as f:
        assert f.classname_of(META) == "TObjString"  # readable from ROOT: f.Get<TObjString>("physnn_meta")
        meta = json.loads(str(f[META]))
    assert set(REQUIRED) <= set(meta)
    assert meta["physnn"] == physnn.__version__
    assert meta["command"] == f"physnn {kind}"
    assert meta["seed"] == seed
    assert meta["inputs"] == inputs
    assert meta["versions"]["torch"] == torch.__version__
    if kind in runs:  # the hash of the run's config.yaml: a file can be matched to the run that made it
        saved = yaml.safe_load((runs[kind] / "config.yaml").read_text())
        assert meta["config_hash"] == config_hash(saved) == config_hash(RunConfig.model_validate(saved))
    else:
        assert meta["config_hash"] == config_hash(meta["config"])
    assert physnn.read_metadata(path) == meta


def test_config_hash_tells_configs_apart(epi_file):
    a = RunConfig.model_validate(run_config(epi_file))
    b = RunConfig.model_validate(run_config(epi_file, epochs=4))
    assert config_hash(a) == config_hash(a.model_dump(mode="json")) == config_hash(RunConfig.model_validate(
        a.model_dump()))
    assert config_hash(a) != config_hash(b)
    assert config_hash(a).startswith("sha256:")
    assert len(config_hash(a)) == 7 + 16


def test_inspect_shows_the_provenance(showers_file):
    from typer.testing import CliRunner

    from physnn.cli import app

    res = CliRunner().invoke(app, ["inspect", str(showers_file)], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert f"written by physnn {physnn.__version__} (physnn simulate showers)" in res.output
    assert "seed 3" in res.output


def test_mc_dropout_predictions_are_seeded(cls_run, epi_file):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = physnn.predict(cls_run.run_dir, epi_file, mc_samples=5, seed=1).arrays
    after = torch.rand(1)
    b = physnn.predict(cls_run.run_dir, epi_file, mc_samples=5, seed=1).arrays
    c = physnn.predict(cls_run.run_dir, epi_file, mc_samples=5, seed=2).arrays
    np.testing.assert_array_equal(a["score"], b["score"])
    assert not np.array_equal(a["score_std"], c["score_std"])
    assert torch.equal(before, after)  # the caller's RNG is left alone


# -- crash safety --------------------------------------------------------------------------------
def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    """``python -m physnn ARGS`` in the background, its stderr in ``cwd/stderr-PID.log``."""
    with open(cwd / f"stderr-{len(list(cwd.glob('stderr-*')))}.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "physnn", *args], cwd=cwd, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=log)
    proc.log = Path(log.name)  # type: ignore[attr-defined]
    return proc


def _stderr(proc: subprocess.Popen) -> str:
    return proc.log.read_text()[-800:]  # type: ignore[attr-defined]


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the job ended (exit {proc.returncode}) before the kill: {_stderr(proc)}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the job did not reach the kill point in time")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _temporaries(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f".{name}.*.tmp"))


def _kill_while_writing(args: list[str], out: Path) -> None:
    """Start a writing job, kill -9 it once its temporary file holds data, check nothing is at ``out``."""
    proc = _start(args, out.parent)
    _wait_for(lambda: any(t.stat().st_size > 20_000 for t in _temporaries(out.parent, out.name)), proc)
    _kill(proc)
    assert not out.exists()
    assert _temporaries(out.parent, out.name)  # the killed job's leftover, hidden ...
    assert remove_stale_temporaries(out)  # ... and cleaned by the next write to that path
    assert not _temporaries(out.parent, out.name)


def test_kill_during_simulate_leaves_no_output(tmp_path):
    out = tmp_path / "showers.root"
    _kill_while_writing(["simulate", "showers", "--events", "5000000", "--out", str(out)], out)


def test_kill_during_predict_leaves_no_output(cls_run, epi_file, tmp_path):
    out = tmp_path / "pred.root"
    _kill_while_writing(["predict", str(cls_run.run_dir), str(epi_file), str(epi_file), str(epi_file),
                         str(epi_file), str(epi_file), "-T", "300", "--keep-samples", "--out", str(out)], out)


def test_kill_during_generate_leaves_no_output(gan_run, tmp_path):
    out = tmp_path / "gen.root"
    _kill_while_writing(["generate", str(gan_run), "--events", "5000000", "--out", str(out)], out)


def test_kill_keeps_an_existing_output_intact(tmp_path):
    out = tmp_path / "showers.root"
    physnn.simulate("showers", out, events=100, seed=1)
    before = out.read_bytes()
    proc = _start(["simulate", "showers", "--events", "5000000", "--overwrite", "--out", str(out)], tmp_path)
    _wait_for(lambda: any(t.stat().st_size > 20_000 for t in _temporaries(tmp_path, out.name)), proc)
    _kill(proc)
    assert out.read_bytes() == before  # --overwrite replaces the old file only once the new one is complete


def test_atomic_path_leaves_running_jobs_temporaries_alone(tmp_path):
    out = tmp_path / "x.root"
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"partial")
        assert remove_stale_temporaries(out) == []  # our own, live process
        assert tmp.exists()
    assert out.read_bytes() == b"partial"


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", map_location="cpu", weights_only=True)["model"]


def test_kill_during_training_then_resume_gives_the_same_weights(epi_file, tmp_path):
    cfg = run_config(epi_file, epochs=5)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    ref = _start(["train", "run.yaml", "--out", "ref"], tmp_path)
    assert ref.wait(timeout=300) == 0, _stderr(ref)
    epoch_seconds = min(row["seconds"] for row in _rows(tmp_path / "ref"))

    # a random point in epochs 2-4: after the checkpoint of epoch k (1-3), within the next epoch's training
    rng = random.Random(os.getpid())
    k = rng.randint(1, 3)
    proc = _start(["train", "run.yaml", "--out", "run"], tmp_path)
    _wait_for(lambda: _epoch_done(tmp_path / "run") >= k, proc)
    time.sleep(rng.uniform(0, 0.9 * epoch_seconds))
    _kill(proc)
    done = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=True)["epoch"]
    assert 1 <= done < 5, "the kill came after the run finished; the test did not test anything"
    resumed = _start(["train", "--resume", "--out", "run"], tmp_path)
    assert resumed.wait(timeout=300) == 0, _stderr(resumed)

    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "run")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["epoch"] for r in _rows(tmp_path / "run")] == [1, 2, 3, 4, 5]
    assert [r["train_loss"] for r in _rows(tmp_path / "run")] == [r["train_loss"] for r in _rows(tmp_path / "ref")]


def _epoch_done(run: Path) -> int:
    """The epoch of the last checkpoint (0 before the first); checkpoints are replaced atomically."""
    if not (run / "last.pt").exists():
        return 0
    return int(torch.load(run / "last.pt", map_location="cpu", weights_only=True)["epoch"])


def _rows(run: Path) -> list[dict]:
    import csv

    with open(run / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
