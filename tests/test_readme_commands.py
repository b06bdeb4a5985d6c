"""Every line of the README's command-line section runs, in order, in a fresh folder (scaled down); so do its
Python snippets.

The lines are taken from README.md itself, so an edit that breaks one (a file no earlier line makes, a
folder that does not exist yet, a flag that was renamed) fails here. Only sizes are scaled: showers,
events, epochs and MC-dropout passes; every scaling rule must match, so the test follows the README.
"""

from __future__ import annotations

import glob
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

#: (pattern, replacement): the sizes only. Each must match at least one line.
SCALE = [
    (r"(simulate showers -n )10000\b", r"\g<1>600"),
    (r"(simulate events +-n )100000\b", r"\g<1>2000"),
    (r"--events 10000\b", "--events 200"),
    (r"--mc-samples 50\b", "--mc-samples 3"),
    (r"-T 20\b", "-T 3"),
    (r"train\.epochs=5\b", "train.epochs=1"),
    (r"(--resume --set )train\.epochs=8\b", r"\g<1>train.epochs=2"),
    (r"^physnn demo --overwrite$", "physnn demo --overwrite -n 300 --epochs 1 -T 2"),
]


def readme_command_lines() -> list[str]:
    """The ``physnn ...`` lines of the README's first bash block after '## Command line', comments removed."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Command line", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines()]
    return [line for line in lines if line]


def scaled(lines: list[str]) -> list[str]:
    """The lines with smaller sizes; every train command with a config runs one epoch."""
    used = set()
    out = []
    for line in lines:
        for i, (pattern, repl) in enumerate(SCALE):
            line, n = re.subn(pattern, repl, line)
            used.update([i] if n else [])
        if line.startswith("physnn train configs/") and "train.epochs=" not in line:
            line += " --set train.epochs=1"
        out.append(line)
    unused = [SCALE[i][0] for i in range(len(SCALE)) if i not in used]
    assert not unused, f"scaling rules that no README line matches any more: {unused}"
    return out


def argv(line: str) -> list[str]:
    """The arguments a POSIX shell passes: quotes removed, unquoted globs expanded."""
    unquoted_globs = {tok for tok in line.split() if "*" in tok and not tok.startswith(("'", '"'))}
    args = []
    for tok in shlex.split(line)[1:]:
        args.extend(sorted(glob.glob(tok)) or [tok] if tok in unquoted_globs else [tok])
    return args


def test_the_readme_lines_are_shell_commands():
    lines = readme_command_lines()
    assert len(lines) >= 20
    assert all(line.startswith("physnn ") for line in lines), [x for x in lines if not x.startswith("physnn ")]
    assert not any("[" in line for line in lines), "optional parts in brackets do not run verbatim"


@pytest.mark.slow
def test_every_readme_command_line_runs_in_a_fresh_folder(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from physnn.cli import app

    shutil.copytree(REPO / "configs", tmp_path / "configs")  # a fresh clone: configs, no data, no runs
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for line in scaled(readme_command_lines()):
        result = runner.invoke(app, argv(line))
        assert result.exit_code == 0, f"{line}\n{result.output}"
    for made in ("preds.root", "clean.root", "codes.root", "fastsim.root", "epi.onnx", "runs/e/best.pt",
                 "report/epi/metrics.json", "report/fastsim", "physnn-demo/showers.root"):
        assert (tmp_path / made).exists(), made


#: (pattern, replacement) for the Python snippets: the sizes only. Each must match.
SCALE_PYTHON = [
    (r"events=10_000\b", "events=600"),
    (r"train\.epochs=5\b", "train.epochs=1"),
    (r"mc_samples=50\b", "mc_samples=3"),
]


def readme_python_snippets() -> list[str]:
    """The README's ``python`` blocks in order, but the PyROOT one (``tests/test_predict_workflows.py`` runs it)."""
    blocks = re.findall(r"^```python\n(.*?)^```", (REPO / "README.md").read_text(), flags=re.DOTALL | re.MULTILINE)
    return [block for block in blocks if "ROOT.RDataFrame" not in block]


def test_the_readme_python_snippets_are_found():
    snippets = readme_python_snippets()
    assert len(snippets) >= 2
    assert any("physnn.train(" in s for s in snippets)


@pytest.mark.slow
def test_the_readme_python_snippets_run_in_a_fresh_folder(tmp_path, monkeypatch):
    """In order, in one namespace, in a folder that is not the repository: shipped configs are found as
    ``physnn:NAME``, and the snippet trains on what it simulated."""
    code = "\n".join(readme_python_snippets())
    for pattern, repl in SCALE_PYTHON:
        code, n = re.subn(pattern, repl, code)
        assert n, f"scaling rule that no README snippet matches any more: {pattern}"
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "configs").exists()
    namespace: dict = {}
    exec(compile(code, "README.md (python snippets)", "exec"), namespace)
    assert namespace["run"].run_dir == Path("runs/epi")
    assert (tmp_path / "runs/epi/best.pt").exists()
    trained_on = yaml.safe_load((tmp_path / "runs/epi/config.yaml").read_text())["data"]["files"]
    assert trained_on == [str(tmp_path / "showers.root")]
    assert 0.0 <= namespace["report"].figures["classification"]["auc"] <= 1.0
    assert namespace["prob"].shape[0] == 600
