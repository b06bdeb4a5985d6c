"""report.html: one self-contained page per evaluate, compare and autoencoder evaluation."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml

import physnn
from physnn.evaluation.html_report import caption, write_page
from physnn.evaluation.summary import num, regression_rows
from physnn.fmt import with_error

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "wbr"}


class Strict(HTMLParser):
    """Checks that every element is closed in order; collects the images, captions, <pre> text and links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.captions: list[str] = []
        self.pre: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            self.images.append(found)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1:] == [tag], f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "figcaption" in self.stack:
            self.captions.append(data)
        if "pre" in self.stack:
            self.pre.append(data)
        self.text.append(data)


def check_page(folder: Path) -> tuple[str, Strict]:
    """The page of ``folder``: well-formed, self-contained, every PNG of the folder embedded with its caption."""
    page = (folder / "report.html").read_text(encoding="utf-8")
    parser = Strict()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], f"unclosed elements {parser.stack}"
    assert page.startswith("<!DOCTYPE html>")
    assert all(link.startswith("data:image/png;base64,") for link in parser.links), "a reference to another file"
    assert "<script" not in page
    assert "<link" not in page
    assert "url(" not in page
    pngs = sorted(folder.glob("*.png"))
    assert pngs
    embedded = {img["alt"]: base64.b64decode((img["src"] or "").split(",", 1)[1]) for img in parser.images}
    for png in pngs:
        assert embedded[png.name] == png.read_bytes(), png.name
        text = caption(png.name)
        assert text, f"no caption for {png.name}"
        assert any(text in line for line in parser.captions), png.name
    assert next(iter(embedded.values())).startswith(b"\x89PNG\r\n\x1a\n")
    return page, parser


def test_evaluate_classification_page(tmp_path: Path) -> None:
    """A classification: the header, AUC and ECE as metrics.json has them, the plots, config and provenance."""
    import uproot

    rng = np.random.default_rng(0)
    n = 1200
    truth = rng.integers(0, 2, n)
    p1 = np.clip(1 / (1 + np.exp(-(2.5 * (truth - 0.5) + rng.normal(0, 1, n)))), 1e-4, 1 - 1e-4)
    run_dir = tmp_path / "run <1>"
    run_dir.mkdir()
    config = {"data": {"files": "a&b.root", "selection": "pdgid < 22", "label": "pdgid"}, "model": {"name": "cnn"}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "metrics.csv").write_text("epoch,train_loss,val_loss\n1,0.7,0.69\n2,0.5,0.55\n")
    meta = {"physnn": physnn.__version__, "command": "physnn predict", "config_hash": "sha256:0123456789abcdef",
            "seed": 7, "inputs": ["a&b.root", str(run_dir / "best.pt")], "checkpoint": str(run_dir / "best.pt"),
            "task": {"kind": "classification", "classes": [11, 211]}, "mc_samples": 10}
    preds = tmp_path / "p<&>.root"
    with uproot.recreate(preds) as f:
        f["predictions"] = {"entry": np.arange(n), "split": np.full(n, -1, np.int8), "true_class": truth,
                            "prob": np.stack([1 - p1, p1], 1), "prob_std": np.full((n, 2), 0.05)}
        f["physnn_meta"] = json.dumps(meta)
    res = physnn.evaluate(preds, out=tmp_path / "rep", n_boot=20)
    assert tmp_path / "rep" / "report.html" in res.files
    page, parser = check_page(tmp_path / "rep")
    assert {p.name for p in (tmp_path / "rep").glob("*.png")} >= {"roc.png", "calibration.png", "confusion.png",
                                                                 "mc_scores.png", "loss.png"}
    saved = json.loads((tmp_path / "rep" / "metrics.json").read_text())["classification"]
    text = " ".join(parser.text)
    assert f"AUC {num(saved['auc'])} (68% bootstrap interval {num(saved['roc']['auc_low'])}" in text
    assert num(saved["ece"]) in text
    from physnn.evaluation.summary import summary_rows

    for label, value in summary_rows(res.figures):  # every row the terminal prints
        assert f"{label} {value}" in text
    assert "p&lt;&amp;&gt;.root" in page
    assert "p<&>" not in page
    assert "run &lt;1&gt;" in page
    assert "".join(parser.pre) == (run_dir / "config.yaml").read_text()  # the config, verbatim once unescaped
    assert "pdgid &lt; 22" in page
    assert "sha256:0123456789abcdef" in text
    assert "physnn predict" in text
    assert "1,200" in text
    assert "files not used in training" in text
    assert physnn.__version__ in text


def test_evaluate_regression_page(tmp_path: Path) -> None:
    """A regression with a baseline: σ with its unit, the per-bin table, the worst bin marked."""
    from test_evaluate import calorimeter_with_a_bad_bin, write_predictions

    e, pred, base = calorimeter_with_a_bad_bin(3000)
    preds = write_predictions(tmp_path / "r.root", e, pred, std=np.abs(pred - e) + 0.01 * e, run_dir=tmp_path / "run",
                              data={"targets": {"energy": {"unit": "GeV", "kind": "energy"}}})
    ev = physnn.evaluate(preds, out=tmp_path / "rep", baselines={"cell sum": {"energy": base}})
    page, parser = check_page(tmp_path / "rep")
    r = json.loads((tmp_path / "rep" / "metrics.json").read_text())["regression"]["energy"]
    text = " ".join(parser.text)
    assert f"{with_error(r['sigma'], r['sigma_err'])} GeV" in text  # σ with its error (PDG rounding) and unit
    for label, value in regression_rows("energy", r):  # every headline row as the terminal prints it
        assert f"{label} {value}" in text
    assert "true energy [GeV]" in text
    assert "cell sum σ/E" in text
    assert r["baselines"]["cell sum"]["comparison"]["summary"] in text
    assert '<tr class="worst">' in page
    assert {"energy_residuals.png", "energy_resolution.png", "energy_pulls.png"} <= {p.name for p in ev.files}
    assert ev.files[-1].name == "report.html"
    assert physnn.evaluate(preds, out=tmp_path / "bare", plots=False).files == [tmp_path / "bare" / "metrics.json"]


def test_compare_page(tmp_path: Path) -> None:
    """Two simulator samples: separation powers and the classifier AUC as printed, both samples' provenance."""
    a, b = tmp_path / "a.root", tmp_path / "b.root"
    physnn.simulate("showers", a, events=300, seed=11)
    physnn.simulate("showers", b, events=300, seed=12)
    result = physnn.compare(a, b, out=tmp_path / "cmp", classifier=["high"], max_events=300, seed=0)
    assert result.files[-1] == tmp_path / "cmp" / "report.html"
    _page, parser = check_page(tmp_path / "cmp")
    saved = json.loads((tmp_path / "cmp" / "metrics.json").read_text())
    text = " ".join(parser.text)
    assert f"{saved['separation_power']['e_ratio']:.4f}" in text
    assert f"mean separation power: {saved['separation_power_mean']:.4f}" in text
    assert f"{saved['classifier']['high']['auc']:.3f}" in text
    assert text.count("physnn simulate showers") >= 2  # the provenance of both samples
    assert str(a) in text
    assert str(b) in text
    assert len(parser.images) == len(list((tmp_path / "cmp").glob("features_*.png"))) >= 4


def test_autoencoder_page(ae_run, tmp_path: Path) -> None:
    result = physnn.evaluate_denoising(ae_run.run_dir, out=tmp_path / "rep")
    _page, parser = check_page(tmp_path / "rep")
    assert result.files[-1].name == "report.html"
    fig = result.figures
    text = " ".join(parser.text)
    assert f"denoising gain (RMS input / RMS output): {fig['gain']:.2f}" in text
    assert f"{fig['rmse_output']:.4g}" in text
    assert "".join(parser.pre) == (Path(ae_run.run_dir) / "config.yaml").read_text()
    assert {img["alt"] for img in parser.images} == {"denoising_panels.png", "denoising_energy.png"}


def test_a_png_name_is_escaped_and_an_unknown_one_still_shown(tmp_path: Path) -> None:
    odd = tmp_path / 'a<b&"c".png'
    odd.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(40)))
    write_page(tmp_path, title="t <&>", header=[("judged", "x < y")], tables=[], images=[odd])
    page = (tmp_path / "report.html").read_text()
    parser = Strict()
    parser.feed(page)
    assert parser.stack == []
    assert "a&lt;b&amp;&quot;c&quot;.png" in page
    assert 'a<b' not in page
    assert parser.images[0]["alt"] == odd.name
    assert "no caption known" in " ".join(parser.captions)
    assert re.search(r"<title>t &lt;&amp;&gt;</title>", page)


@pytest.mark.parametrize(("name", "words"), [("energy_pulls.png", "energy: pulls"),
                                              ("mass_resolution.png", "mass: resolution"),
                                              ("features_width.png", "width features"), ("roc.png", "ROC"),
                                              ("samples_epoch_003.png", "Generated showers"),
                                              ("energy_resolution_by_pdgid.png", "energy: resolution per bin of the "
                                               "true value for each group")])
def test_captions(name: str, words: str) -> None:
    assert words in (caption(name) or "")


def test_gan_evaluation_page(gan_run, tmp_path: Path) -> None:
    """A GAN judged on its test split: the run folder and its config on the page."""
    physnn.evaluate_generator(gan_run, out=tmp_path / "rep", classifier=[], device="cpu")
    page, parser = check_page(tmp_path / "rep")
    assert "".join(parser.pre) == (Path(gan_run) / "config.yaml").read_text()
    assert "physnn GAN (network only)" in " ".join(parser.text)
    assert "<h1>physnn evaluate: GAN run run against held-out showers</h1>" in page
    assert f"<td>run folder</td><td>{gan_run}</td>" in page


def test_the_cli_prints_where_the_report_page_is(tmp_path: Path) -> None:
    """evaluate and compare end with the page's path on a line of its own, the file a physicist opens."""
    from test_evaluate import calorimeter_with_a_bad_bin, write_predictions
    from typer.testing import CliRunner

    from physnn.cli import app

    runner = CliRunner()
    e, pred, _ = calorimeter_with_a_bad_bin(600)
    preds = write_predictions(tmp_path / "r.root", e, pred, run_dir=tmp_path / "run")
    a, b = tmp_path / "a.root", tmp_path / "b.root"
    physnn.simulate("showers", a, events=60, seed=1)
    physnn.simulate("showers", b, events=60, seed=2)
    for args, folder in ((["evaluate", str(preds), "--out", str(tmp_path / "rep")], tmp_path / "rep"),
                         (["compare", str(a), str(b), "--out", str(tmp_path / "cmp"), "--classifier", "none"],
                          tmp_path / "cmp")):
        result = runner.invoke(app, args, env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        last = result.output.strip().splitlines()[-1]
        assert last == f"report: {folder / 'report.html'}", result.output
        assert (folder / "report.html").is_file()
