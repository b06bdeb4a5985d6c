"""``report.html``: one self-contained page per evaluation, comparison or denoising report.

The page holds a header (what was judged, the run folder, the split, the
number of events, the date, the physnn version), the summary tables (the
figures of ``metrics.json``, formatted as the terminal prints them), every figure
the command wrote (PNG and SVG embedded as ``data:`` URIs, each with a
one-line caption saying what it shows and how to read it), the run's
``config.yaml`` and the provenance of the inputs (their ``physnn_meta``).
Nothing outside the page is referenced, so it can be mailed or attached as is;
except PDF figures (``image_format="pdf"``), which the page links to beside it.
The HTML is written with the standard library (no template engine); the
wording of the tables and of the MC-dropout rule is the terminal's
(:mod:`physnn.evaluation.summary`, :func:`physnn.evaluation.metrics.mc_rule`).
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from html import escape, unescape
from pathlib import Path
from typing import Any, NamedTuple

from physnn._version import __version__
from physnn.evaluation.discrimination import bins_of_table
from physnn.evaluation.image_format import FORMATS
from physnn.evaluation.metrics import mc_rule
from physnn.evaluation.summary import bin_table, summary_rows

#: The page's file name, written beside the PNGs.
PAGE = "report.html"

#: One line per PNG name (``fnmatch`` pattern, first match wins); ``{}`` is what the ``*`` stood for.
CAPTIONS: tuple[tuple[str, str], ...] = (
    ("roc.png", "ROC curve, each with its bootstrap 68% band: signal against background efficiency (linear, then "
                "with a log background efficiency to read a near-perfect classifier), and the background "
                "rejection 1/ε_B (log) against the signal efficiency: higher is better; the title names the "
                "signal class."),
    ("calibration.png", "Reliability diagram: the observed fraction of the signal class against the predicted "
                        "probability per bin, with 68% Clopper-Pearson error bars and the events per bin below: "
                        "on the dotted diagonal the probabilities mean what they say (a bin of a few events has "
                        "wide bars); ECE is the event-weighted distance from it."),
    ("confusion.png", "Confusion matrix normalised per true class (rows), event counts in brackets: the diagonal "
                      "is the fraction of each class classified correctly."),
    ("mc_scores.png", "MC dropout: the mean score of each true class, and the spread of the T passes against the "
                      "mean score (sure predictions sit at the ends with a small spread); with the samples kept, "
                      "the T scores of the surest event of each class and of the most uncertain one. Categories (the "
                      f"summary's MC rows): {mc_rule()}."),
    ("discrimination_by_*.png", "Per quantile bin of {} (evaluate --bins-of; horizontal bars: the bin's range, "
                                "the point at the mean in it): the AUC (top) and the background rejection 1/ε_B "
                                "at 80% signal efficiency (bottom, log), each with its bootstrap 68% interval; "
                                "dotted: a random classifier. A bin with no background passing the cut is a red "
                                "triangle at its background events, a lower limit."),
    ("loss.png", "Training and validation loss per epoch on one axis, each validation metric in its own panel "
                 "(for a GAN: critic, generator and separation power apart), the dashed line at the epoch "
                 "best.pt holds: a validation loss that rises while the training loss falls means overfitting."),
    ("*_residuals.png", "{}: histogram of predicted - true with the bias and the robust σ, and predicted against "
                        "true (dotted: a perfect prediction)."),
    ("*_resolution.png", "{}: resolution per bin of the true value, the model next to every baseline, the worst "
                         "bin marked; lower is better, and the ratio panel is model / baseline (below 1: the "
                         "model is better)."),
    ("*_resolution_by_*.png", "{}: resolution per bin of the true value for each group (evaluate --by), the model "
                              "(filled markers) and every baseline (open) in the group's colour: a group where the "
                              "model is worse than the baseline shows here even when the overall figure hides it."),
    ("*_pulls.png", "{}: pulls (predicted - true) / σ against N(0, 1), and the fraction of events within ±kσ "
                    "against the Gaussian expectation: a pull std above 1 (coverage below the curve) means error "
                    "bars too small."),
    ("*_side_by_side.png", "{}: per bin of the true value, the mean half width of each file's intervals (top) and "
                           "the fraction of true values inside them (bottom, 68% Clopper-Pearson bars), each "
                           "interval's nominal coverage dashed in its colour: an interval is honest in a bin "
                           "where it covers its nominal there, however wide it is."),
    ("features_*.png", "{} features: unit-normalised histograms of the reference (black) and the candidate (red), "
                       "candidate / reference below (1: agreement; triangles at the top: above 2); under- and "
                       "overflow in the edge bins; S is the separation power (0: identical, 1: disjoint)."),
    ("denoising_panels.png", "Example events from low to high energy, one per row: noisy input, denoised output "
                             "and truth (layers summed, log colour scale, titles: total energy); cells below the "
                             "scale, negative ones included, take its lowest colour, and the titles count the negative "
                             "cells."),
    ("denoising_energy.png", "Total energy over the true total energy per event, noisy input against denoised "
                             "output: a narrow peak at 1 means the energy is kept; the legend counts what the edge "
                             "bins hold besides their range (events whose sum is 0, below 0 or above 2)."),
    ("*samples*.png", "Generated showers at fixed conditions: one row per (particle type, energy), one column "
                      "per layer (log colour scale)."),
)

#: ``physnn_meta`` keys shown first (others follow when short).
PROVENANCE_KEYS = ("physnn", "command", "created", "config_hash", "checkpoint", "epoch", "model", "seed",
                   "train_seed", "mc_samples", "inputs", "files", "tree", "training_files", "training_selection",
                   "generator", "versions")
STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;margin:.4em 0 1em}th,td{border:1px solid #bbb;padding:2px 8px;"
         "text-align:left;vertical-align:top}th{background:#eee}td.n{text-align:right}"
         "tr.worst td{background:#fdd}tr.worse td{background:#ffe}h3{font-size:1em;margin:1em 0 .2em}"
         "figure{margin:1.5em 0}img{max-width:100%}figcaption{margin-top:.3em}"
         "pre{background:#f4f4f4;padding:.6em;overflow-x:auto}p.note{color:#444;margin-top:0}")


RIGHT = ' class="n"'


class Table(NamedTuple):
    """A table of strings: a title, column names (none: no header row), rows, a note under it, the columns
    aligned right (numbers), and whether a last cell saying ``worst``/``worse`` colours its row."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    note: str = ""
    right: Sequence[int] = ()
    marks: bool = False


def caption(name: str) -> str | None:
    """The caption of a figure's file name (``roc.png``, ``roc.svg``, ``roc.pdf``), None when none is known."""
    stem, dot, suffix = name.rpartition(".")
    if dot and suffix.lower() in FORMATS:  # the captions are written for the PNG names
        name = f"{stem}.png"
    for pattern, text in CAPTIONS:
        if fnmatch.fnmatchcase(name, pattern):
            head, _, tail = pattern.partition("*")
            literal = tail.split("*", 1)[0]  # what follows the first * up to a second one
            end = name.find(literal, len(head)) if literal else len(name)
            return text.format(name[len(head):end] if "*" in pattern else "")
    return None


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        last = row[-1] if row and table.marks else ""
        cls = ' class="worst"' if last.startswith("worst") else ' class="worse"' if "worse" in last else ""
        cells = "".join(f"<td{RIGHT if i in table.right else ''}>{escape(str(c))}</td>" for i, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    head = f"<thead><tr>{head}</tr></thead>" if head else ""
    title = f"<h3>{escape(table.title)}</h3>" if table.title else ""
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return f"{title}<table>{head}<tbody>{''.join(body)}</tbody></table>{note}"


#: How the page shows a figure of each format: embedded as an image (PNG, SVG), or linked (PDF, beside the page).
MIME = {".png": "image/png", ".svg": "image/svg+xml"}


def _figure(path: Path) -> str:
    text = caption(path.name) or "(no caption known for this figure)"
    label = f"<figcaption><b>{escape(path.name)}</b>: {escape(text)}</figcaption></figure>"
    name = escape(path.name)
    if path.suffix.lower() == ".pdf":  # browsers do not show a PDF inline reliably: a link to the file beside
        return f'<figure><p><a href="{name}">{name}</a> (PDF, beside this page)</p>{label}'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img src="data:{MIME[path.suffix.lower()]};base64,{data}" alt="{name}">{label}'


def listed_figures(page: Path) -> list[str]:
    """The file names of the figures an earlier ``report.html`` shows (each figure's caption names its file, as
    :func:`write_page` writes it): the files that report wrote beside it."""
    text = page.read_text(encoding="utf-8", errors="replace")
    return list(dict.fromkeys(unescape(name) for name in re.findall(r"<figcaption><b>(.*?)</b>", text)))


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple, Mapping)) and not value:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_value, value))
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def provenance_rows(meta: Mapping[str, Any]) -> list[list[str]]:
    """The rows of a ``physnn_meta``: the known keys first, then the others whose value is short."""
    rows = [[k, _value(meta[k])] for k in PROVENANCE_KEYS if k in meta]
    rows += [[k, _value(v)] for k, v in meta.items() if k not in PROVENANCE_KEYS and len(json.dumps(v, default=str))
             <= 120]
    return rows


def write_page(out: Path, *, title: str, header: Sequence[tuple[str, str]], tables: Sequence[Table],
               images: Sequence[Path], run_dir: Path | None = None,
               provenance: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Write ``out/report.html`` and return its path.

    Parameters
    ----------
    header
        (name, value) rows before the date and the physnn version.
    images
        Figures to show, in this order: PNG and SVG embedded, PDF linked (the files beside the page).
    run_dir
        The run folder whose ``config.yaml`` is shown.
    provenance
        ``{"predictions file": physnn_meta, ...}``: one table each.
    """
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = [*header, ("date", now), ("physnn", __version__)]
    parts = [f"<h1>{escape(title)}</h1>", _table(Table("", [], [list(r) for r in rows])), "<h2>Summary</h2>"]
    parts += [_table(t) for t in tables]
    parts.append("<h2>Plots</h2>")
    parts += [_figure(p) for p in images if p.suffix.lower().lstrip(".") in FORMATS] or ["<p>no plots</p>"]
    config = run_dir / "config.yaml" if run_dir is not None else None
    parts.append("<h2>Run config</h2>")
    if config is not None and config.is_file():
        parts.append(f"<p>{escape(str(config))}</p><pre>{escape(config.read_text())}</pre>")
    else:
        parts.append(f"<p>no config.yaml in {escape(str(run_dir))}</p>" if run_dir is not None else
                     "<p>no run folder: the inputs were not made by one run (see their provenance)</p>")
    parts.append("<h2>Provenance</h2>")
    for what, meta in (provenance or {}).items():
        parts.append(_table(Table(what, ["key", "value"], provenance_rows(meta))) if meta else
                     f"<p>{escape(what)}: no physnn_meta</p>")
    page = out / PAGE
    page.write_text(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
                    f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n",
                    encoding="utf-8")
    return page


def evaluation_page(out: Path, figures: Mapping[str, Any], files: Sequence[Path], meta: Mapping[str, Any],
                    run_dir: Path | None) -> Path:
    """The page of ``physnn evaluate`` on a predictions file (``figures`` as in ``metrics.json``)."""
    tables = [Table(f"evaluation of {figures['predictions']}", ["figure", "value"], [list(r) for r in
                                                                                    summary_rows(figures)])]
    for name, r in (figures.get("regression") or {}).items():
        columns, rows = bin_table(name, r)
        what = "; σ/E: the same of (pred - true) / true" if r.get("kind") == "energy" else ""
        tables.append(Table(f"{name}: resolution per bin of the true value", columns, rows,
                            f"bias: median of pred - true; σ: half the 16-84% interval of pred - true{what}; "
                            f"outliers: {r['outliers']['criterion']}", range(1, len(columns) - 1), True))
    c = figures.get("classification") or {}
    if "bins_of" in c:
        names = c.get("class_names") or ["background", "signal"]
        title, columns, rows, note = bins_of_table(c["bins_of"], str(c.get("signal", names[1])),
                                                   str(c.get("background", names[0])))
        tables.append(Table(title, columns, rows, note, range(1, len(columns))))
    header = [("judged", f"predictions {figures['predictions']}"), ("run folder", str(run_dir or "unknown")),
              ("split", str(figures["split"])), ("events", f"{figures['events']:,}")]
    return write_page(out, title=f"physnn evaluate: {Path(figures['predictions']).name}", header=header,
                      tables=tables, images=files, run_dir=run_dir, provenance={"predictions file": meta})


def comparison_tables(figures: Mapping[str, Any]) -> list[Table]:
    """Conditions, separation powers, classifier AUCs and speeds of a comparison (as ``physnn compare`` prints)."""
    tables = []
    cond = figures.get("conditions")
    if cond is not None:
        state = {None: "not compared", True: "match", False: "DIFFER: the figures measure that too"}
        rows = [["conditions", f"{state[cond['matched']]} ({', '.join(cond['checked']) or 'none'} compared)"]]
        rows += [["difference", line] for line in cond.get("differences", [])]
        rows += [["not compared", line] for line in cond.get("unchecked", []) if cond["checked"]]
        if cond.get("match") is not None:
            m = cond["match"]
            rows.append(["--match", f"kept {m['kept']:,} of {m['of']:,} reference showers ({m['within']})"])
        tables.append(Table("conditions", ["check", "result"], rows))
    ev = figures["events"]
    tables.append(Table(f"separation power ({ev['reference']:,} reference vs {ev['candidate']:,} candidate "
                        "showers; 0 = identical)", ["feature", "separation"],
                        [[k, f"{v:.4f}"] for k, v in figures["separation_power"].items()],
                        f"mean separation power: {figures['separation_power_mean']:.4f}", [1]))
    rows = []
    for kind, test in figures["classifier"].items():
        what = "cells" if kind == "low" else "high-level features"
        for name, row in {"": test, **test.get("per_type", {})}.items():
            band = f" [{row['auc_low']:.3f}, {row['auc_high']:.3f}]" if row.get("auc_low") is not None else ""
            jsd = f", JSD {row['jsd']:.3f}" if "jsd" in row else ""
            rows.append([f"classifier AUC on {what}{f', {name} only' if name else ''}",
                         f"{row['auc']:.3f}{band}{jsd} ({row['events']['test']:,} + {row['events']['test']:,} test "
                         "showers; 0.5 = indistinguishable)"])
    timing = figures.get("timing", {})
    for who in ("reference", "candidate"):
        if f"{who}_showers_per_s" in timing:
            rows.append([who, f"{timing[f'{who}_showers_per_s']:,.0f} showers/s ({timing[f'{who}_by']})"])
    if "speedup" in timing:
        rows.append(["speed-up", f"{timing['speedup']:,.1f}x"])
    tables.append(Table("classifier test and speed", ["figure", "value"], rows))
    return tables + _distance_tables(figures.get("distances") or {})


def _distance_tables(dist: Mapping[str, Any]) -> list[Table]:
    """FPD and KPD (JetNet's) in all showers and per particle type, beside their floor where there is one."""
    from physnn.fmt import with_error

    if "fpd" not in dist:
        return []
    floor = "fpd_floor" in dist
    columns = ["showers", "FPD", "KPD"] + (["FPD floor", "KPD floor"] if floor else [])
    keys = ["fpd", "kpd"] + (["fpd_floor", "kpd_floor"] if floor else [])
    groups = {"all": dist} | dict(dist.get("by_type", {}))
    rows = [[name, *(with_error(d[k], d[f"{k}_err"]) if k in d else "" for k in keys)] for name, d in groups.items()]
    note = ("on the high-level features, as JetNet defines them (0 = same distribution); floor: the reference "
            f"against a second, independent reference sample ({dist['floor']})" if floor else
            "on the high-level features, as JetNet defines them (0 = same distribution); no floor given")
    return [Table("Fréchet and kernel physics distances", columns, rows, note, list(range(1, len(columns))))]


def comparison_page(out: Path, figures: Mapping[str, Any], files: Sequence[Path], metas: Mapping[str, Any],
                    run_dir: Path | None = None) -> Path:
    """The page of ``physnn compare`` (and of a GAN's evaluation): ``metas`` holds each sample's physnn_meta."""
    cond = figures.get("conditions") or {}
    split = ("as named with the reference; one generated shower per reference shower, with its conditions"
             if run_dir is not None
             else "all showers of both files" if cond.get("match") is None
             else "the reference showers within the candidate's conditions (--match), all candidate showers")
    ev = figures["events"]
    header = [("judged", f"reference {figures['reference']}; candidate {figures['candidate']}"),
              ("run folder", str(run_dir or "none (two files)")), ("split", split),
              ("events", f"{ev['reference']:,} reference, {ev['candidate']:,} candidate")]
    title = (f"physnn evaluate: GAN run {run_dir.name} against held-out showers" if run_dir is not None else
             f"physnn compare: {Path(figures['reference']).name} vs {Path(figures['candidate']).name}")
    return write_page(out, title=title, header=header, tables=comparison_tables(figures), images=files,
                      run_dir=run_dir, provenance=metas)


def denoising_page(out: Path, figures: Mapping[str, Any], images: Sequence[Path], loaded: Any,
                   files: Sequence[str]) -> Path:
    """The page of an autoencoder's evaluation (as ``physnn evaluate RUN`` prints it); ``loaded``: its LoadedRun,
    ``files`` the data files judged."""
    from physnn.io.metadata import config_hash

    run_dir = Path(loaded.checkpoint).parent
    facts = {"checkpoint": str(loaded.checkpoint), "epoch": loaded.epoch, "config_hash": config_hash(loaded.config),
             "model": loaded.config.model.name, "train_seed": loaded.config.train.seed,
             "seed": figures.get("seed"), "mc_samples": figures.get("mc_samples"), "inputs": list(files)}
    e = figures["total_energy"]
    rows = [["RMS difference per cell", f"{figures['rmse_input']:.4g}", f"{figures['rmse_output']:.4g}"],
            ["total energy: median E/E_true - 1", f"{e['input']['median']:+.4f}", f"{e['output']['median']:+.4f}"],
            ["total energy: spread", f"{e['input']['spread']:.4f}", f"{e['output']['spread']:.4f}"]]
    for row in figures.get("layers", []):
        rows += [[f"layer {row['layer']}: centroid shift x (cells)", f"{row['input_centroid_shift_x']:.3f}",
                  f"{row['output_centroid_shift_x']:.3f}"],
                 [f"layer {row['layer']}: width / true width (x)", f"{row['input_width_ratio_x']:.3f}",
                  f"{row['output_width_ratio_x']:.3f}"]]
    note = f"denoising gain (RMS input / RMS output): {figures['gain']:.2f}"
    if "mean_cell_std" in figures:
        note += f"; mean MC-dropout spread per cell: {figures['mean_cell_std']:.4g}"
    tables = [Table(f"denoising, {figures['events']:,} events ({figures['split']})",
                    ["figure", "noisy input", "denoised"], rows, note, [1, 2])]
    header = [("judged", f"autoencoder {figures['checkpoint']} on {', '.join(files)}: noisy input and denoised "
                         "output against the clean truth"),
              ("run folder", str(run_dir)), ("split", str(figures["split"])), ("events", f"{figures['events']:,}")]
    return write_page(out, title=f"physnn evaluate: autoencoder {run_dir.name}", header=header, tables=tables,
                      images=images, run_dir=run_dir, provenance={"autoencoder run and noise seed": facts})
