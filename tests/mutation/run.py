"""Mutation check: plant known bugs one at a time and see whether the tests catch them (on demand, not in CI).

Each entry of :data:`MUTANTS` breaks one promise of physnn with a one-line
textual edit ``(file, old, new)`` and names the tests that guard that
promise. The tool copies the repository's working tree (tracked and
untracked, not ignored files: uncommitted edits included) to a temporary
folder, then for each mutant: checks that ``old`` occurs exactly once in the
file (else the mutant is **stale**: update the table), applies it, runs
``python -m pytest -x -q -p no:cacheprovider SELECTION`` in the copy with a
timeout, and restores the file. A mutant is **killed** when a test fails,
**SURVIVED** when all pass (that promise has no test that can fail),
**timeout** when the tests ran past ``--timeout``, **error** when pytest could
not run the selection (usage error, no test collected). Before the mutants, each
distinct selection runs once on the unmutated copy (skip with ``--no-baseline``):
a mutant whose selection already fails is reported as **baseline fails**.

Usage (from the repository root, in the project's virtual environment)::

    python tests/mutation/run.py                  # all mutants, about 5-10 minutes on 2 cores
    python tests/mutation/run.py --only split     # mutants whose name contains "split"
    python tests/mutation/run.py --list           # the table of mutants, nothing run
    python tests/mutation/run.py --strict         # exit 1 unless every mutant is killed

The exit code is 0 whatever the outcome, unless ``--strict`` is given. The
repository itself is never modified; the copy is deleted at the end (kept
with ``--keep``). ``PYTHONDONTWRITEBYTECODE=1`` keeps stale ``.pyc`` files
from hiding a mutation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (which must occur exactly once) by ``new`` in ``file``, run ``tests``."""

    name: str
    promise: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MC = "physnn/models/mc_dropout.py"
MC_TESTS = ("tests/test_predict.py", "-k", "batch_norm or prefix_caching")
CALIB_TESTS = ("tests/test_trust_errorbars.py", "-k", "sigma_scale or epistemic")
SPLIT_TESTS = ("tests/test_data.py", "tests/test_trust_split.py", "tests/test_trust_safety.py", "-k", "split")
STD_TESTS = ("tests/test_data.py", "-k", "standardisation or streaming")
FREEZE_TESTS = ("tests/test_trust_training.py", "-k", "transfer_freezing")
MONITOR_TESTS = ("tests/test_trust_training.py::test_monitor_goals_come_from_the_task",  # the fast one first
                 "tests/test_trust_training.py::test_best_gan_epoch_is_the_lowest_separation_power")

MUTANTS: tuple[Mutant, ...] = (
    Mutant("mc-bn-train", "MC: batch norm stays off", MC,
           "    model.eval()\n    if not active:", "    model.train(active)\n    if not active:", MC_TESTS),
    Mutant("mc-dropout-never-on", "MC: dropout on", MC, "            module.train()", "            module.eval()",
           MC_TESTS),
    Mutant("mc-prefix-train-mode", "MC: prefix caching", MC, "        set_dropout(model, False)\n        side =",
           "        model.train()\n        side =", MC_TESTS),
    Mutant("mc-repeat-interleaved", "MC: prefix caching", MC, "return x.repeat(times, *([1] * (x.dim() - 1)))",
           "return x.repeat_interleave(times, dim=0)", MC_TESTS),
    Mutant("sigma-scale-one", "σ calibration", "physnn/training/calibration.py",
           "float(torch.quantile(pulls[:, j], ONE_SIGMA))", "1.0", CALIB_TESTS),
    Mutant("sigma-pulls-variance", "σ calibration", "physnn/training/calibration.py",
           "pulls = residual.double().abs() / std.double()", "pulls = residual.double().abs() / std.double() ** 2",
           CALIB_TESTS),
    Mutant("sigma-std-is-variance", "σ calibration", MC, 'out["std"] = total.sqrt() * scale',
           'out["std"] = total * scale', CALIB_TESTS),
    Mutant("split-no-file-id", "split: file identity", "physnn/data/split.py",
           "u = uniform_hash(np.asarray(entries), seed, file_key(file_id))",
           "u = uniform_hash(np.asarray(entries), seed, 0)", SPLIT_TESTS),
    Mutant("split-file-id-not-passed", "split: file identity", "physnn/data/dataset.py",
           "file_id=chunk.file_id)", 'file_id="")', SPLIT_TESTS),
    Mutant("split-swap-val-test", "split: fractions", "physnn/data/split.py",
           "    out[u < test] = TEST", "    out[u < val] = TEST", SPLIT_TESTS),
    Mutant("standardise-all-splits", "standardisation: training split only", "physnn/data/dataset.py",
           'fitter.add(raws["train"])', "fitter.add(RawChunk.concatenate(list(raws.values())))", STD_TESTS),
    Mutant("standardise-all-streamed", "standardisation: training split only", "physnn/data/dataset.py",
           "fitter.add(raw.select(raw.split == TRAIN))", "fitter.add(raw)", STD_TESTS),
    Mutant("write-in-place", "atomic writes", "physnn/io/write.py",
           "        yield tmp\n        as_user_file(tmp)\n        os.replace(tmp, path)",
           "        tmp.unlink()\n        yield path",
           ("tests/test_errors.py", "-k", "failure_mid_write or overwrite_failure_keeps")),
    Mutant("unsafe-load", "safe loading", "physnn/training/checkpoint.py",
           'map_location="cpu", weights_only=True)', 'map_location="cpu", weights_only=False)',
           ("tests/test_trust_safety.py", "tests/test_training.py::test_a_checkpoint_with_pickled_code_is_refused")),
    Mutant("transfer-no-freeze", "frozen = what transfer froze", "physnn/training/transfer.py",
           "    if freeze:", "    if False and freeze:", FREEZE_TESTS),
    Mutant("frozen-norms-none", "frozen = what transfer froze", "physnn/training/steps.py",
           "        return norms\n", "        return []\n", FREEZE_TESTS),
    Mutant("frozen-norms-train", "frozen = what transfer froze", "physnn/training/steps.py",
           "module.eval()  # frozen", "module.train()  # frozen", FREEZE_TESTS),
    Mutant("monitor-max-ignored", "best epoch: direction", "physnn/training/monitor.py",
           "            return -float(value)", "            return float(value)", MONITOR_TESTS),
    Mutant("monitor-nominal-ignored", "best epoch: direction", "physnn/training/monitor.py",
           "return abs(float(value) - float(self.goal))", "return float(value)", MONITOR_TESTS),
)


def copy_tree(dest: Path) -> Path:
    """Copy the working tree's tracked and untracked (not ignored) files to ``dest/<repo name>``."""
    listing = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout.decode()
    repo = dest / ROOT.name
    for rel in filter(None, listing.split("\0")):
        src = ROOT / rel
        if src.is_file():  # deleted-but-tracked files are skipped
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    shared = ROOT.parent / "shared"
    if shared.is_dir():  # tests/conftest.py finds the real ROOT files in ../shared/data/real
        (dest / "shared").symlink_to(shared)
    return repo


def run_pytest(repo: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """Run the selection in ``repo``.

    Returns
    -------
    tuple
        ``passed``, ``failed``, ``timeout`` or ``error`` (pytest could not run
        the selection); the seconds taken; the first failure or pytest's last line.
    """
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the pytest we started and its children (CLI jobs, torchrun)
        proc.communicate()
        return "timeout", time.monotonic() - start, f"> {timeout:.0f} s"
    seconds = time.monotonic() - start
    lines = [line for line in out.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    detail = (failed[0] if failed else lines[-1] if lines else "").removeprefix("FAILED ").removeprefix("tests/")
    outcome = {0: "passed", 1: "failed"}.get(proc.returncode, "error")
    return outcome, seconds, detail


def main(argv: list[str] | None = None) -> int:
    """Run the mutants; print a table and the score. Returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="run mutants whose name contains this")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per pytest run (default 300)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of each selection")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless every mutant is killed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    mutants = [m for m in MUTANTS if not args.only or any(s in m.name for s in args.only)]
    if args.list:
        table = Table("mutant", "promise", "file", "tests", title="mutants")
        for m in mutants:
            table.add_row(m.name, m.promise, m.file, " ".join(m.tests))
        console.print(table)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="physnn-mutation-"))
    rows: list[tuple[Mutant, str, float, str]] = []
    try:
        repo = copy_tree(tmp)
        where = subprocess.run([sys.executable, "-c", "import physnn; print(physnn.__file__)"], cwd=repo,
                               env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True)
        if not where.stdout.strip().startswith(str(repo)):
            console.print(f"[red]the copy does not import its own physnn: {where.stdout}{where.stderr}")
            return 2
        baseline: dict[tuple[str, ...], tuple[str, float, str]] = {}
        if not args.no_baseline:
            for tests in dict.fromkeys(m.tests for m in mutants):
                baseline[tests] = run_pytest(repo, tests, args.timeout)
                console.print(f"baseline {' '.join(tests)}: {baseline[tests][0]} ({baseline[tests][1]:.0f} s)")
        for m in mutants:
            path = repo / m.file
            text = path.read_text() if path.is_file() else ""
            count = text.count(m.old)
            if count != 1:
                rows.append((m, "stale", 0.0, f"old text found {count} times in {m.file}"))
            elif baseline and baseline[m.tests][0] != "passed":
                rows.append((m, "baseline fails", 0.0, baseline[m.tests][2]))
            else:
                path.write_text(text.replace(m.old, m.new))
                try:
                    status, seconds, detail = run_pytest(repo, m.tests, args.timeout)
                    rows.append((m, {"failed": "killed", "passed": "SURVIVED"}.get(status, status), seconds, detail))
                finally:
                    path.write_text(text)
            console.print(f"{m.name}: {rows[-1][1]} ({rows[-1][2]:.0f} s)")
    finally:
        if args.keep:
            console.print(f"copy kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    style = {"killed": "green", "SURVIVED": "bold red"}
    table = Table("mutant", "promise", "result", "s", "first failing test / detail", title="mutation check")
    for m, outcome, seconds, detail in rows:
        table.add_row(m.name, m.promise, f"[{style.get(outcome, 'yellow')}]{outcome}", f"{seconds:.0f}", detail)
    console.print(table)
    killed = sum(outcome == "killed" for _, outcome, _, _ in rows)
    console.print(f"score: {killed}/{len(rows)} killed" + "".join(
        f", {n} {k}" for k in ("SURVIVED", "timeout", "stale", "error", "baseline fails")
        if (n := sum(o == k for _, o, _, _ in rows))))
    return 1 if args.strict and killed < len(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
