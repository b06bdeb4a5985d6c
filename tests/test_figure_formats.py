"""Vector output: every figure physnn draws as png, svg or pdf (``--format``, ``image_format=`` in Python), and
report.html showing them (PNG and SVG embedded, PDF linked)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import run_config
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.errors import ConfigError

FIGURES = (".png", ".svg", ".pdf")


@pytest.fixture(scope="module")
def small_preds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A one-epoch e/pi classifier on 400 showers and its MC-dropout predictions."""
    where = tmp_path_factory.mktemp("formats")
    physnn.simulate("showers", where / "epi.root", events=400, seed=5, config={"particles": ["e-", "pi+"]})
    run = where / "run"
    physnn.train(run_config(where / "epi.root", epochs=1), out=run, progress=False)
    physnn.predict(run, where / "epi.root", out=where / "preds.root", mc_samples=3)
    return run, where / "preds.root"


def _figures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in FIGURES)


def test_evaluate_writes_svg_that_parses_and_embeds_it_in_the_page(small_preds, tmp_path):
    _, preds = small_preds
    result = physnn.evaluate(preds, out=tmp_path / "svg", image_format="svg", n_boot=5, split="all")
    drawn = _figures(tmp_path / "svg")
    assert {p.name for p in drawn} >= {"roc.svg", "calibration.svg", "confusion.svg", "mc_scores.svg", "loss.svg"}
    assert all(p.suffix == ".svg" for p in drawn), drawn
    for path in drawn:
        assert ET.parse(path).getroot().tag.endswith("svg"), path
    assert set(drawn) <= set(result.files)
    page = (tmp_path / "svg" / "report.html").read_text()
    assert page.count("data:image/svg+xml;base64,") == len(drawn)
    assert "(no caption known" not in page


def test_evaluate_writes_pdf_files_and_the_page_links_them(small_preds, tmp_path):
    _, preds = small_preds
    physnn.evaluate(preds, out=tmp_path / "pdf", image_format="pdf", n_boot=5, split="all")
    drawn = _figures(tmp_path / "pdf")
    assert {p.name for p in drawn} >= {"roc.pdf", "mc_scores.pdf"}
    assert all(p.suffix == ".pdf" for p in drawn), drawn
    for path in drawn:
        assert path.read_bytes().startswith(b"%PDF"), path
    page = (tmp_path / "pdf" / "report.html").read_text()
    assert all(f'href="{p.name}"' in page for p in drawn)


def test_a_bad_image_format_is_refused_in_the_callers_terms(small_preds, tmp_path):
    _, preds = small_preds
    with pytest.raises(ConfigError, match=r"image_format='jpg': expected 'png', 'svg' or 'pdf'"):
        physnn.evaluate(preds, out=tmp_path / "py", image_format="jpg")
    result = CliRunner().invoke(app, ["evaluate", str(preds), "--out", str(tmp_path / "cli"), "--format", "jpg"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "--format 'jpg': expected png, svg or pdf" in lines[0]
    assert "image_format" not in result.output
    assert not (tmp_path / "cli").exists()  # nothing half-written


def test_compare_draws_in_the_format_asked(small_preds, tmp_path):
    run, _ = small_preds
    showers = str(run.parent / "epi.root")
    result = CliRunner().invoke(app, ["compare", showers, showers, "--out", str(tmp_path / "cmp"), "--classifier",
                                      "none", "--format", "svg"])
    assert result.exit_code == 0, result.output
    drawn = _figures(tmp_path / "cmp")
    assert drawn
    assert all(p.suffix == ".svg" for p in drawn), drawn


def test_train_draws_its_loss_curves_in_the_format_asked(small_preds, tmp_path):
    run, _ = small_preds
    out = tmp_path / "trained"
    result = CliRunner().invoke(app, ["train", "--data", str(_data_yaml(run.parent / "epi.root", tmp_path)),
                                      "--out", str(out), "--set", "train.epochs=1", "--format", "pdf"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in _figures(out)] == ["loss.pdf"]
    assert (out / "plots" / "loss.pdf").read_bytes().startswith(b"%PDF")


def _data_yaml(files: Path, folder: Path) -> Path:
    import yaml

    path = folder / "data.yaml"
    path.write_text(yaml.safe_dump(run_config(files)["data"]))
    return path


def test_demo_refuses_a_bad_format_before_any_work(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo"), "-n", "200", "--format", "jpg"])
    assert result.exit_code == 2
    assert "--format 'jpg': expected png, svg or pdf" in result.output
    assert not (tmp_path / "demo").exists()
    from physnn.demo import run

    with pytest.raises(ConfigError, match="image_format='jpg'"):
        run(tmp_path / "py", events=200, image_format="jpg")
    assert not (tmp_path / "py").exists()
