"""Several predictions of the same events, their error bars side by side: MC dropout, an ensemble, conformal.

``physnn evaluate A.root B.root ...`` judges each predictions file of a
regression (:func:`~physnn.evaluation.report.evaluate`, no plots) and puts one
row per interval next to the others: ±1σ of each file (the MC-dropout, the
ensemble's or the deterministic error bar, by what the file says it holds)
and, where ``predict --conformal`` wrote one, the conformal interval. Per row:
the bias, the mean half width, the coverage against its nominal value, and the
coverage in and out of the training domain, where the error bars that look
right on average are put to the test; and per bin of the true value (the
resolution's bins), each interval's mean half width and coverage, drawn in
``TARGET_side_by_side.png``. ``report.html`` holds the table, the plots and the
provenance of every file, as for every other evaluation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from physnn.errors import ConfigError
from physnn.evaluation.image_format import check_format
from physnn.evaluation.report import EvaluationResult, check_report_dir, evaluate, report_dir
from physnn.evaluation.summary import bracket, with_unit
from physnn.fmt import num, with_error
from physnn.models.tasks import ONE_SIGMA

__all__ = ["SideBySide", "side_by_side", "side_by_side_table", "table_note"]


@dataclass
class SideBySide:
    """What :func:`side_by_side` judged: one row per interval of each file and target, and the files written."""

    rows: list[dict[str, Any]]
    out: Path | None
    files: list[Path] = field(default_factory=list)
    judged: str = "side_by_side"


def _label(figures: dict[str, Any]) -> str:
    """How a predictions file got its error bars (what its ``physnn_meta`` says, in the figures)."""
    members, mc = int(figures.get("members", 1)), int(figures.get("mc_samples", 0))
    parts = [f"ensemble of {members}"] if members > 1 else []
    parts += [f"MC dropout, T = {mc}"] if mc else ([] if parts else ["deterministic"])
    return ", ".join(parts)


def _rows(path: str, result: EvaluationResult, label: str) -> list[dict[str, Any]]:
    """The ±1σ row and the conformal row (when there is one) of every target of one file."""
    rows = []
    for target, fig in (result.figures.get("regression") or {}).items():
        base = {"file": path, "label": label, "target": target, "events": fig["events"], "bias": fig["bias"],
                "bias_err": fig.get("bias_err"), "unit": fig.get("unit")}
        domain = fig.get("domain") or {}
        if "coverage_1sigma" in fig:
            bins = [{"range": b["range"], "events": b["events"], "half_width": b["mean_std"],
                     "coverage": b["coverage_1sigma"]} for b in fig["bins"] if b.get("coverage_1sigma") is not None]
            rows.append({**base, "interval": "±1σ", "half_width": fig.get("mean_std"),
                         "coverage": fig["coverage_1sigma"], "nominal": ONE_SIGMA,
                         **{f"coverage_{part}": figs.get("coverage_1sigma") for part, figs in domain.items()},
                         "bins": bins})
        conformal = fig.get("conformal")
        if conformal:
            bins = [{"range": b["range"], "events": b["events"], "half_width": b["conformal_half_width"],
                     "coverage": b["conformal_coverage"]} for b in conformal.get("bins") or []]
            rows.append({**base, "interval": f"conformal {conformal['level']:g}",
                         "half_width": conformal["conformal_half_width"], "coverage": conformal["conformal_coverage"],
                         "nominal": conformal["level"],
                         **{f"coverage_{part}": figs.get("conformal_coverage") for part, figs in domain.items()},
                         "bins": bins})
    return rows


def side_by_side_table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The columns (with the unit, when the rows share one) and one row of strings per interval: the file's
    number, the target (several), the interval, bias, mean half width, coverage, nominal, and (when a file
    has a training domain) the coverage in and out of it."""
    files = list(dict.fromkeys(r["file"] for r in rows))
    several = len({r["target"] for r in rows}) > 1
    units = {r.get("unit") for r in rows}
    shared = units.pop() if len(units) == 1 else None
    head = bracket(shared) if shared else ""
    domain = [k for k in ("coverage_in", "coverage_out") if any(r.get(k) is not None for r in rows)]
    columns = ["", *(["target"] if several else []), "interval", f"bias{head}", f"half width{head}", "covered",
               "nominal", *({"coverage_in": "in domain", "coverage_out": "outside"}[k] for k in domain)]

    def value(v: float | None, unit: str | None, err: float | None = None) -> str:
        return "-" if v is None else with_error(v, err) if shared or not unit else with_unit(with_error(v, err), unit)

    cells = []
    for r in rows:
        cells.append([f"[{files.index(r['file']) + 1}]", *([r["target"]] if several else []), r["interval"],
                      value(r["bias"], r.get("unit"), r.get("bias_err")), value(r["half_width"], r.get("unit")),
                      num(r["coverage"]),
                      num(r["nominal"]), *("-" if r.get(k) is None else num(r[k]) for k in domain)])
    return columns, cells


def table_note(rows: Sequence[dict[str, Any]]) -> str:
    """What the columns mean, under the table (terminal and page alike)."""
    note = "covered: the fraction of true values inside the interval; nominal: the fraction it claims"
    if any(r.get("coverage_in") is not None or r.get("coverage_out") is not None for r in rows):
        note += "; in domain / outside: the same for the events inside and outside the training domain"
    return note


def _page(outdir: Path, rows: list[dict[str, Any]], files: list[str], images: list[Path],
          split: str) -> Path:
    """``report.html``: the files, the table, the plots and each file's provenance."""
    from physnn.evaluation.html_report import Table, write_page
    from physnn.io.metadata import read_metadata

    listed = [[f"[{i}]", f, next(r["label"] for r in rows if r["file"] == f),
               f"{next(r['events'] for r in rows if r['file'] == f):,}"] for i, f in enumerate(files, 1)]
    columns, cells = side_by_side_table(rows)
    tables = [Table("files", ["", "predictions", "error bars", "events"], listed, right=[3]),
              Table("error bars side by side", columns, cells, table_note(rows), range(columns.index("interval") + 1,
                                                                                len(columns)))]
    header = [("judged", "; ".join(files)), ("run folder", "one per file (see the provenance)"), ("split", split)]
    return write_page(outdir, title=f"physnn evaluate: {len(files)} predictions side by side", header=header,
                      tables=tables, images=images, provenance={f"[{i}] {f}": read_metadata(f)
                                                                for i, f in enumerate(files, 1)})


def side_by_side(predictions: Sequence[str | os.PathLike], *, out: str | os.PathLike | None = None,
                 split: str = "auto", plots: bool = True, image_format: str = "png",
                 overwrite: bool = False) -> SideBySide:
    """The error bars of several regression predictions files side by side (see the module docs).

    Parameters
    ----------
    predictions
        Two or more files written by :func:`physnn.predict` (with the truth), e.g. one with ``mc_samples``,
        one of an ensemble, one with ``conformal``.
    out
        Folder for ``side_by_side.json``, the plots and ``report.html`` (None: compute only).
    split
        Events judged in each file, as :func:`~physnn.evaluation.report.evaluate` takes it.
    plots
        Write the plots (needs matplotlib) and ``report.html``.
    image_format
        ``png``, ``svg`` or ``pdf``: the file format of the plots (as :func:`~physnn.evaluation.report.evaluate`).
    overwrite
        Replace an earlier report in ``out`` (as :func:`~physnn.evaluation.report.evaluate`); without it, such a
        folder is refused before any work.
    """
    fmt = check_format(image_format)
    check_report_dir(out, overwrite=overwrite)
    rows = []
    judged = ""
    for path in predictions:
        result = evaluate(path, split=split, plots=False, n_boot=0)
        if "regression" not in result.figures:
            msg = f"{path}: side by side compares the error bars of regressions; evaluate a classifier on its own"
            raise ConfigError(msg)
        rows += _rows(os.fspath(path), result, _label(result.figures))
        judged = judged or str(result.figures["split"])
    outdir = report_dir(out, overwrite=overwrite)
    files: list[Path] = []
    if outdir is not None:
        files.append(outdir / "side_by_side.json")
        files[0].write_text(json.dumps(rows, indent=1))
        if plots:
            from physnn.evaluation.plots_side_by_side import plot_side_by_side

            names = list(dict.fromkeys(r["file"] for r in rows))
            for target in dict.fromkeys(r["target"] for r in rows):
                if any(r["target"] == target and r["bins"] for r in rows):
                    files.append(plot_side_by_side(rows, target, names, outdir / f"{target}_side_by_side.{fmt}"))
            files.append(_page(outdir, rows, names, files[1:], judged))
    return SideBySide(rows, outdir, files)
