"""The tables and lines the judging and training commands print."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from physnn.cli.app import console
from physnn.evaluation.summary import DASH, summary_rows
from physnn.fmt import num, plural, with_error, with_interval


def _print_metrics(row: dict[str, Any], title: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in row.items():
        table.add_row(key, num(value) if isinstance(value, float) else f"{value:,}" if isinstance(value, int)
                      else str(value))
    console.print(table)


def _print_page(files: list[Path]) -> None:
    """The report page among ``files``, on a line of its own (not wrapped: a path to open or copy)."""
    page = next((f for f in files if f.name == "report.html"), None)
    if page is not None:
        console.print(f"report: {page}", soft_wrap=True, highlight=False, markup=False)


def _say(text: str, first: str = "", rest: str = "  ") -> None:
    """Print ``text`` wrapped to the terminal, with a hanging indent."""
    import textwrap

    width = max(console.width, 40)
    console.print(textwrap.fill(text, width=width, initial_indent=first, subsequent_indent=rest,
                                break_on_hyphens=False), soft_wrap=True, highlight=False, markup=False)


def _print_conditions(cond: dict[str, Any]) -> None:
    """The conditions check of :func:`physnn.compare`: what --match kept, and a warning where they differ."""
    match = cond.get("match")
    if match is not None:
        _say(f"--match: kept {match['kept']:,} of {match['of']:,} reference showers within the candidate's "
             f"conditions ({match['within']})")
    if cond["matched"] is None:
        _say("conditions not compared (neither particle type, incident energy nor impact point in both files)")
    elif cond["matched"]:
        _say(f"conditions match ({', '.join(cond['checked'])} compared)")
    else:
        readout_only = all(line.startswith("readout:") for line in cond["differences"])
        why = (" even after --match (it keeps the candidate's types and ranges but does not reweight)"
               if match is not None and not readout_only else "")
        advice = ("" if match is not None else "; --match cannot remove a different readout" if readout_only
                  else "; rerun with --match to compare like with like")
        _say(f"warning: the samples were made under different conditions{why}, so the separation powers and "
             f"the AUC below measure that too{advice}:")
        for line in cond["differences"]:
            _say(line, first="  - ", rest="    ")
    if cond["checked"] and cond["unchecked"]:
        for line in cond["unchecked"]:
            _say(f"not compared: {line}", first="  ")


def _print_comparison(result: Any) -> None:
    cond = result.conditions
    if cond is not None:
        _print_conditions(cond)
    console.print(f"separation power ({result.events['reference']:,} reference vs "
                  f"{result.events['candidate']:,} candidate showers; 0 = identical):")
    table = Table()
    table.add_column("feature")
    table.add_column("separation", justify="right")
    for name, value in result.separation.items():
        table.add_row(name, num(value))
    console.print(table)
    figures = result.figures()
    console.print(f"mean separation power: {num(figures['separation_power_mean'])}")
    for kind, test in result.classifier.items():
        what = "cells" if kind == "low" else "high-level features"
        auc, band = num(test["auc"]), ""
        if test.get("auc_low") is not None:
            auc, low, high = with_interval(test["auc"], test["auc_low"], test["auc_high"])
            band = f"68% bootstrap interval {low}{DASH}{high}; "
        jsd = f", JSD {num(test['jsd'])}" if "jsd" in test else ""
        console.print(f"classifier AUC on {what}: {auc}{jsd} ({band}{test['events']['test']:,} + "
                      f"{test['events']['test']:,} test showers; 0.5 = indistinguishable)")
        if test.get("per_type"):
            _print_per_type(what, test)
    _print_distances(result.distances)
    if cond is not None and cond["matched"] is False:
        _say("warning: the samples' conditions differ (see above), so these figures compare unlike samples")
    timing = result.timing
    for who in ("reference", "candidate"):
        if f"{who}_showers_per_s" in timing:
            console.print(f"{who}: {timing[f'{who}_showers_per_s']:,.0f} showers/s ({timing[f'{who}_by']})")
    if "speedup" in timing:
        console.print(f"speed-up: {num(timing['speedup'], 2)}×")


def _print_distances(dist: dict[str, Any]) -> None:
    """FPD and KPD on the high-level features, one line each, with the floor and per particle type where known."""
    for key in ("fpd", "kpd"):
        if key not in dist:
            continue
        floor = (f", floor (reference vs --floor) {with_error(dist[f'{key}_floor'], dist[f'{key}_floor_err'])}"
                 if f"{key}_floor" in dist else "")
        types = "".join(f"; {name} {with_error(d[key], d[f'{key}_err'])}"
                        + (f" (floor {with_error(d[f'{key}_floor'], d[f'{key}_floor_err'])})"
                           if f"{key}_floor" in d else "")
                        for name, d in dist.get("by_type", {}).items())
        _say(f"{key.upper()} on high-level features (JetNet's; 0 = same distribution): "
             f"{with_error(dist[key], dist[f'{key}_err'])}{floor}{types}")


def _print_per_type(what: str, test: dict[str, Any]) -> None:
    """The classifier test of each particle type beside all types together (``compare`` of typed samples)."""
    console.print(f"classifier test on {what}, per particle type (calibrated on the validation split, measured "
                  f"on the test split; network {test.get('network', '')}):", soft_wrap=True, highlight=False)
    table = Table()
    for column in ("particle", "AUC", "68% interval", "JSD", "test showers"):
        table.add_column(column, justify="left" if column == "particle" else "right")
    for name, row in {"all": test, **test["per_type"]}.items():
        band = ""
        if row.get("auc_low") is not None:
            _, low, high = with_interval(row["auc"], row["auc_low"], row["auc_high"])
            band = f"{low}{DASH}{high}"
        table.add_row(name, num(row["auc"]), band, num(row["jsd"]), f"{row['events']['test']:,} + "
                      f"{row['events']['test']:,}")
    console.print(table)


def _print_denoising(figures: dict[str, Any]) -> None:
    table = Table(title=f"denoising, {plural(figures['events'], 'event')} ({figures['split']})", title_justify="left")
    table.add_column("figure")
    table.add_column("noisy input", justify="right")
    table.add_column("denoised", justify="right")
    table.add_row("RMS difference per cell", num(figures["rmse_input"]), num(figures["rmse_output"]))
    e = figures["total_energy"]
    signed = lambda v: num(v) if v < 0 else f"+{num(v)}"  # noqa: E731
    table.add_row("total energy: median E/E_true - 1", signed(e["input"]["median"]), signed(e["output"]["median"]))
    table.add_row("total energy: spread", num(e["input"]["spread"]), num(e["output"]["spread"]))
    for row in figures.get("layers", []):
        table.add_row(f"layer {row['layer']}: centroid shift x (cells)", num(row["input_centroid_shift_x"]),
                      num(row["output_centroid_shift_x"]))
        table.add_row(f"layer {row['layer']}: width / true width (x)", num(row["input_width_ratio_x"]),
                      num(row["output_width_ratio_x"]))
    console.print(table)
    console.print(f"denoising gain (RMS input / RMS output): {num(figures['gain'])}")


def _print_bins(name: str, r: dict[str, Any]) -> None:
    """The resolution of one regression target per bin of its true value, model next to every baseline."""
    from physnn.evaluation.summary import bin_table

    columns, rows = bin_table(name, r)
    what = "; σ/E: the same of (pred - true) / true" if r.get("kind") == "energy" else ""
    table = Table(title=f"{name}: resolution per bin of the true value", title_justify="left",
                  caption=f"bias: median of pred - true; σ: half the 16-84% interval of pred - true{what}; "
                          f"outliers: {r['outliers']['criterion']}", caption_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i in (0, len(columns) - 1) else "right")
    for cells in rows:
        table.add_row(*cells, style="bold red" if cells[-1].startswith("worst") else
                      "yellow" if cells[-1] else None)
    console.print(table)


def _print_bins_of(c: dict[str, Any]) -> None:
    """A binary classifier's AUC and background rejection per bin of ``evaluate --bins-of``."""
    from physnn.evaluation.discrimination import bins_of_table

    names = c.get("class_names") or ["background", "signal"]
    title, columns, rows, note = bins_of_table(c["bins_of"], str(c.get("signal", names[1])),
                                               str(c.get("background", names[0])))
    table = Table(title=title, title_justify="left", caption=note, caption_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for cells in rows:
        table.add_row(*cells)
    console.print(table)


def _print_evaluation(figures: dict[str, Any]) -> None:
    table = Table(title=f"evaluation of {figures['predictions']}", title_justify="left")
    table.add_column("figure")
    table.add_column("value", overflow="fold")
    for name, value in summary_rows(figures):
        table.add_row(name, value)
    console.print(table)
    for name, r in (figures.get("regression") or {}).items():
        _print_bins(name, r)
    if "bins_of" in (figures.get("classification") or {}):
        _print_bins_of(figures["classification"])


def print_result(result: Any, out: Path) -> None:
    """What :func:`physnn.evaluate` judged, as tables, then the files written and the report page."""
    printer, what = PRINTERS[result.judged]
    printer(result)
    console.print(f"wrote {plural(len(result.files), 'file')} to {out}/ ({what})")
    _print_page(result.files)


def _print_side_by_side(result: Any) -> None:
    """The files, then one row per interval of each: bias, half width, coverage against nominal, in and out of
    the training domain."""
    files = list(dict.fromkeys(r["file"] for r in result.rows))
    for i, name in enumerate(files, 1):
        row = next(r for r in result.rows if r["file"] == name)
        console.print(f"[{i}] {name}: {row['label']}, {row['events']:,} events", soft_wrap=True, highlight=False,
                      markup=False)
    from physnn.evaluation.side_by_side import side_by_side_table, table_note

    columns, cells = side_by_side_table(result.rows)
    table = Table(title="error bars side by side", title_justify="left", caption=table_note(result.rows),
                  caption_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in ("", "target", "interval") else "right",
                         no_wrap=column == "interval")
    for row in cells:
        table.add_row(*row)
    console.print(table)


#: How each kind of judgement prints (``result.judged``), and what its folder holds.
PRINTERS = {"predictions": (lambda r: _print_evaluation(r.figures), "metrics.json and plots"),
            "side_by_side": (_print_side_by_side, "side_by_side.json, plots"),
            "denoising": (lambda r: _print_denoising(r.figures), "metrics.json and plots"),
            "comparison": (_print_comparison, "metrics.json, separation.csv, histograms")}
