"""No command replaces an existing output unless asked; the refusal names the caller's spelling of the option.

A Python caller reads ``overwrite=True``, the command line ``--overwrite``; never both. The demo refuses before
it simulates anything.
"""

from __future__ import annotations

import time

import pytest
import yaml
from conftest import run_config
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.errors import OutputError

runner = CliRunner()


def test_python_caller_is_told_overwrite_true(tmp_path):
    out = tmp_path / "s.root"
    out.write_text("old")
    with pytest.raises(OutputError) as err:
        physnn.simulate("events", out, events=10)
    assert "overwrite=True" in str(err.value)
    assert "--overwrite" not in str(err.value)
    assert out.read_text() == "old"


def test_command_line_is_told_dash_dash_overwrite(tmp_path):
    out = tmp_path / "s.root"
    out.write_text("old")
    result = runner.invoke(app, ["simulate", "events", "-n", "10", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "--overwrite" in result.output
    assert "overwrite=True" not in result.output
    assert out.read_text() == "old"


def test_a_run_folder_names_both_options_in_the_callers_words(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(OutputError) as err:
        physnn.train(run_config(tmp_path / "x.root"), out=run, progress=False)
    assert "overwrite=True" in str(err.value)
    assert "resume=True" in str(err.value)
    assert "--" not in str(err.value)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(run_config(tmp_path / "x.root")))
    result = runner.invoke(app, ["train", str(config), "--out", str(run)])
    assert result.exit_code == 2, result.output
    assert "--overwrite" in result.output
    assert "--resume" in result.output
    assert "=True" not in result.output
    assert (run / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("earlier", ["showers.root", "events.root", "predictions_energy.root", "run_photon/best.pt",
                                     "report_energy/report.html"])
def test_the_demo_refuses_a_folder_with_its_outputs_before_any_work(tmp_path, earlier):
    out = tmp_path / "physnn-demo"
    (out / earlier).parent.mkdir(parents=True)
    (out / earlier).write_text("old")
    start = time.perf_counter()
    result = runner.invoke(app, ["demo", "--out", str(out), "-n", "200", "--epochs", "1", "-T", "2"])
    assert result.exit_code == 2, result.output
    assert time.perf_counter() - start < 5  # refused at once: nothing simulated, nothing trained
    text = result.output.strip()
    assert text.startswith("error:"), text
    assert len(text.splitlines()) == 1, text
    assert earlier.split("/")[0] in text
    assert "--overwrite" in text
    assert "overwrite=True" not in text
    assert (out / earlier).read_text() == "old"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == sorted(
        {earlier, *([earlier.split("/")[0]] if "/" in earlier else [])})


def test_the_demo_in_python_says_overwrite_true(tmp_path):
    from physnn.demo import run

    (tmp_path / "gamma_pi0.root").write_text("old")
    with pytest.raises(OutputError) as err:
        run(tmp_path, events=200, epochs=1, mc_samples=2, say=lambda _: None)
    assert "overwrite=True" in str(err.value)
    assert "--overwrite" not in str(err.value)
    assert "gamma_pi0.root" in str(err.value)


def test_the_demo_takes_overwrite():
    result = runner.invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    assert "--overwrite" in result.output


@pytest.mark.parametrize(("command", "run", "options"), [
    ("predict", "cls_run", ["--mc-samples", "2"]),
    ("export", "cls_run", ["--format", "torchscript"]),
    ("denoise", "ae_run", []),
    ("encode", "ae_run", []),
])
def test_every_command_that_writes_a_file_refuses_to_replace_it(command, run, options, tmp_path, request,
                                                                  showers_file):
    """generate's refusal is in test_gan.py (a GAN run), simulate's and train's above."""
    folder = request.getfixturevalue(run).run_dir
    out = tmp_path / "old.out"
    out.write_text("old")
    files = [] if command == "export" else [str(showers_file)]
    result = runner.invoke(app, [command, str(folder), *files, "--out", str(out), *options])
    assert result.exit_code == 2, result.output
    assert "--overwrite" in result.output
    assert "=True" not in result.output
    assert out.read_text() == "old"
    result = runner.invoke(app, [command, str(folder), *files, "--out", str(out), *options, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] != b"old"


# -- reports: evaluate (a predictions file, several side by side, a run folder) and compare -----------------------
@pytest.fixture(scope="module")
def two_predictions(reg_run, showers_file, tmp_path_factory):
    folder = tmp_path_factory.mktemp("preds")
    a, b = folder / "a.root", folder / "b.root"
    physnn.predict(reg_run.run_dir, showers_file, out=a)
    physnn.predict(reg_run.run_dir, showers_file, out=b, mc_samples=2)
    return a, b


def _report_args(form, two_predictions, ae_run, showers_file):
    a, b = two_predictions
    return {"file": ["evaluate", str(a), "--bootstrap", "0"],
            "side": ["evaluate", str(a), str(b)],
            "run": ["evaluate", str(ae_run.run_dir)],
            "compare": ["compare", str(showers_file), str(showers_file), "--classifier", "none", "--bins", "5",
                        "--energy", "none"]}[form]


@pytest.mark.parametrize("form", ["file", "side", "run", "compare"])
def test_a_report_folder_is_replaced_only_with_overwrite(form, two_predictions, ae_run, showers_file, tmp_path):
    args = _report_args(form, two_predictions, ae_run, showers_file)
    out = tmp_path / "report"
    out.mkdir()  # an empty folder needs no flag
    first = runner.invoke(app, [*args, "--out", str(out), "--format", "svg"])
    assert first.exit_code == 0, first.output
    svgs = sorted(p.name for p in out.glob("*.svg"))
    assert svgs
    (out / "notes.txt").write_text("mine")
    (out / "mine.svg").write_text("<svg/>")
    page = (out / "report.html").read_bytes()
    again = runner.invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 2, again.output
    text = again.output.strip()
    assert text.startswith("error:"), text
    assert len(text.splitlines()) == 1, text
    assert str(out) in text
    assert "--overwrite" in text
    assert "=True" not in text
    assert (out / "report.html").read_bytes() == page
    assert sorted(p.name for p in out.glob("*.svg")) == sorted([*svgs, "mine.svg"])
    replaced = runner.invoke(app, [*args, "--out", str(out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert sorted(p.name for p in out.glob("*.svg")) == ["mine.svg"]  # no stale figure of the earlier report
    assert list(out.glob("*.png"))
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "report.html").read_bytes() != page


def test_evaluate_in_python_says_overwrite_true(two_predictions, tmp_path):
    out = tmp_path / "report"
    physnn.evaluate(two_predictions[0], out=out, n_boot=0, plots=False)
    before = (out / "metrics.json").read_text()
    with pytest.raises(OutputError) as err:
        physnn.evaluate(two_predictions[0], out=out, n_boot=0, plots=False)
    assert "overwrite=True" in str(err.value)
    assert "--overwrite" not in str(err.value)
    assert (out / "metrics.json").read_text() == before
    result = physnn.evaluate(two_predictions[0], out=out, n_boot=0, plots=False, overwrite=True)
    assert result.out == out
    with pytest.raises(OutputError, match="overwrite=True"):
        physnn.side_by_side(list(two_predictions), out=out)
    with pytest.raises(OutputError, match="overwrite=True"):
        physnn.compare(two_predictions[0], two_predictions[1], out=out, classifier=[])


def test_the_demo_refuses_its_report_folders_and_replaces_them_with_overwrite(tmp_path):
    from physnn.demo import check_outputs

    out = tmp_path / "physnn-demo"
    (out / "report_energy").mkdir(parents=True)
    check_outputs(out)  # an empty report folder is no earlier report
    (out / "report_energy" / "metrics.json").write_text("{}")
    with pytest.raises(OutputError) as err:
        check_outputs(out)
    assert "report_energy" in str(err.value)
    assert "overwrite=True" in str(err.value)
    check_outputs(out, overwrite=True)


def test_a_failed_comparison_leaves_the_earlier_report(showers_file, tmp_path, monkeypatch):
    """The earlier report goes only once the new figures are computed."""
    from physnn.errors import DataError
    from physnn.evaluation import fastsim

    out = tmp_path / "cmp"
    physnn.compare(showers_file, showers_file, out=out, classifier=[], bins=5, energy=None)
    before = sorted(p.name for p in out.iterdir())

    def fails(*args, **kwargs):
        raise DataError("the classifier test failed")

    monkeypatch.setattr(fastsim, "judge_samples", fails)
    with pytest.raises(DataError):
        physnn.compare(showers_file, showers_file, out=out, classifier=["high"], bins=5, energy=None, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == before
