"""Issue 15 item 9: a checkpoint that carries code is refused before the code runs, by every entry point.

(Also the tests that ``tests/mutation/run.py`` found missing: the split depends on the file identity.)

The payload's ``__reduce__`` touches a marker file when it is unpickled, so
these tests see whether it ran: each one asserts that the load is refused
with :class:`~physnn.errors.InputFileError` (exit code 2 and one line on the
command line) *and* that the marker does not exist. They fail if any
``torch.load`` in physnn reads checkpoints with ``weights_only=False``.
"""

from __future__ import annotations

import ast
import pathlib
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import run_config
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.config import DataConfig
from physnn.data.dataset import iter_raw
from physnn.data.split import assign_split
from physnn.errors import InputFileError
from physnn.training.checkpoint import load_checkpoint

runner = CliRunner()
PACKAGE = Path(physnn.__file__).resolve().parent
FORMATS = ["torch.save", "pickle"]


class TouchOnLoad:
    """Unpickling this object creates ``marker`` (``pathlib.Path.touch``): the trace of code that ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (pathlib.Path.touch, (self.marker,))


def write_malicious(path: Path, payload: dict[str, Any], marker: Path, fmt: str) -> Path:
    """``payload`` plus a code-running object, written as physnn writes checkpoints (zip) or as a plain pickle."""
    data = {**payload, "note": TouchOnLoad(marker)}
    if fmt == "torch.save":
        torch.save(data, path)
    else:
        path.write_bytes(pickle.dumps(data))
    return path


@pytest.fixture(scope="module")
def clean_run(showers_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny, one-epoch) e/pi run folder."""
    out = tmp_path_factory.mktemp("safety") / "clean"
    physnn.train(run_config(showers_file, epochs=1), out=out, progress=False)
    return out


@pytest.fixture(params=FORMATS)
def evil_run(request: pytest.FixtureRequest, clean_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of ``clean_run`` whose best.pt and last.pt are the real checkpoints plus the payload.

    Returns the run folder and the marker that exists iff the payload ran.
    Unpickled without ``weights_only``, each checkpoint would load in full and
    the command would go on as if nothing happened.
    """
    run = tmp_path / "evil"
    shutil.copytree(clean_run, run)
    marker = tmp_path / "code-ran.marker"
    for name in ("best.pt", "last.pt"):
        real = torch.load(clean_run / name, map_location="cpu", weights_only=True)
        write_malicious(run / name, real, marker, request.param)
    assert not marker.exists()
    return run, marker


def assert_refused(call: Callable[[], Any], marker: Path) -> None:
    """``call`` raises InputFileError ("not a readable physnn checkpoint") and the payload did not run."""
    try:
        call()
    except Exception as err:  # checked below, after the marker
        error: Exception | None = err
    else:
        error = None
    assert not marker.exists(), "unpickling the checkpoint ran the code inside it (weights_only=False?)"
    assert isinstance(error, InputFileError), f"expected InputFileError, got {error!r}"
    assert "not a readable physnn checkpoint" in str(error)


def assert_cli_refused(args: list[str], marker: Path) -> str:
    """The command exits with code 2 and one ``error:`` line, no traceback, and the payload did not run."""
    result = runner.invoke(app, args)
    assert not marker.exists(), "unpickling the checkpoint ran the code inside it (weights_only=False?)"
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text
    assert text.startswith("error:"), text
    assert len(text.splitlines()) == 1, text
    assert "not a readable physnn checkpoint" in text
    return text


@pytest.mark.parametrize("fmt", FORMATS)
def test_payload_runs_when_unpickled_without_weights_only(tmp_path, fmt):
    """The probe works: the same files DO touch the marker when loaded unsafely, so its absence means something."""
    marker = tmp_path / "code-ran.marker"
    path = write_malicious(tmp_path / "evil.pt", {"format": "physnn-checkpoint-1"}, marker, fmt)
    try:
        torch.load(path, map_location="cpu", weights_only=False)
    except RuntimeError:  # a plain pickle is not a torch file ("Invalid magic number"), after the code ran
        assert fmt == "pickle"
    assert marker.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_checkpoint_refuses_a_file_with_code(tmp_path, fmt):
    marker = tmp_path / "code-ran.marker"
    path = write_malicious(tmp_path / "evil.pt", {"format": "physnn-checkpoint-1", "epoch": 1}, marker, fmt)
    assert_refused(lambda: load_checkpoint(path), marker)


def test_load_checkpoint_and_load_run_refuse_a_run_folder_with_code(evil_run):
    run, marker = evil_run
    assert_refused(lambda: load_checkpoint(run), marker)
    assert_refused(lambda: load_checkpoint(run, "last.pt"), marker)
    assert_refused(lambda: physnn.load_run(run, device="cpu"), marker)


def test_transfer_and_resume_refuse_a_run_folder_with_code(evil_run, showers_file, tmp_path):
    run, marker = evil_run
    cfg = run_config(showers_file, epochs=1)
    assert_refused(lambda: physnn.train(cfg, out=tmp_path / "new", progress=False, init_from=run), marker)
    assert_refused(lambda: physnn.train(out=run, resume=True, progress=False), marker)


def test_predict_api_refuses_a_run_folder_with_code(evil_run, showers_file, tmp_path):
    run, marker = evil_run
    out = tmp_path / "p.root"
    assert_refused(lambda: physnn.predict(run, showers_file, out=out), marker)
    assert not out.exists()


def test_cli_predict_refuses_a_run_folder_with_code(evil_run, showers_file, tmp_path):
    run, marker = evil_run
    out = tmp_path / "p.root"
    text = assert_cli_refused(["predict", str(run), str(showers_file), "--out", str(out), "--device", "cpu"], marker)
    assert "best.pt" in text
    assert not out.exists()


def test_cli_train_init_from_and_resume_refuse_a_run_folder_with_code(evil_run, tmp_path):
    run, marker = evil_run
    new = tmp_path / "new"
    assert_cli_refused(["train", str(run / "config.yaml"), "--out", str(new), "--init-from", str(run),
                        "--device", "cpu"], marker)
    assert not (new / "best.pt").exists()
    assert "last.pt" in assert_cli_refused(["train", "--resume", "--out", str(run)], marker)


def test_cli_evaluate_refuses_a_run_folder_with_code(evil_run, tmp_path):
    run, marker = evil_run
    assert_cli_refused(["evaluate", str(run), "--out", str(tmp_path / "report")], marker)


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """``(dotted name, call)`` of every call of a name or attribute chain (``torch.load``, ``np.load``, ...)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name):
                out.append((".".join([func.id, *reversed(parts)]), node))
    return out


def test_every_torch_load_in_physnn_is_weights_only():
    """No other unpickling path: each ``torch.load`` passes ``weights_only=True``; no pickle, dill or marshal."""
    bad, loads = [], 0
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{where}:{node.lineno} imports {n}" for n in names
                    if n.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "cloudpickle")]
        for name, call in _calls(tree):
            keywords = {k.arg: k.value for k in call.keywords}
            if name.endswith("torch.load"):
                loads += 1
                value = keywords.get("weights_only")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    bad.append(f"{where}:{call.lineno} {name}(...) without weights_only=True")
            pickled = keywords.get("allow_pickle")
            if name.endswith(("np.load", "numpy.load")) and pickled is not None and not (
                    isinstance(pickled, ast.Constant) and pickled.value is False):
                bad.append(f"{where}:{call.lineno} {name}(..., allow_pickle=...)")
            if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load") and "Safe" not in ast.unparse(call):
                bad.append(f"{where}:{call.lineno} {name}(...) (use yaml.safe_load)")
    assert loads >= 1, "checkpoint.py's torch.load was not found: the scan is broken"
    assert not bad, "\n".join(bad)


def test_split_depends_on_the_file_identity(tmp_path):
    """Issue 15 item 2, found by the mutation check: entry ``i`` of two files is not always in the same split.

    The split hashes the file's UUID (and tree) with the entry number; without
    it, the first events of every file would share one split pattern.
    """
    entries = np.arange(20000)
    a = assign_split(entries, val=0.2, test=0.1, seed=5, file_id="uuid-a/showers")
    b = assign_split(entries, val=0.2, test=0.1, seed=5, file_id="uuid-b/showers")
    assert np.mean(a == 2) == pytest.approx(0.1, abs=0.01)
    assert np.mean(b == 2) == pytest.approx(0.1, abs=0.01)
    assert np.mean(a != b) > 0.35  # independent splits differ for 1 - (0.7² + 0.2² + 0.1²) = 46% of the events
    splits = []
    for seed in (1, 2):  # two files written by physnn: two UUIDs, so two split patterns
        path = tmp_path / f"f{seed}.root"
        physnn.simulate("showers", path, events=400, seed=seed)
        cfg = DataConfig.model_validate({"files": str(path), "scalars": ["energy"]})
        splits.append(np.concatenate([r.split for r in iter_raw(cfg)]))
    assert len(splits[0]) == len(splits[1]) == 400
    assert np.mean(splits[0] != splits[1]) > 0.25
