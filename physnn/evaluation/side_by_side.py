"""Several predictions of the same events, their error bars side by side: MC dropout, an ensemble, conformal.

``physnn evaluate A.root B.root ...`` judges each predictions file of a
regression (:func:`~physnn.evaluation.report.evaluate`, no plots) and puts one
row per interval next to the others: ±1σ of each file (the MC-dropout, the
ensemble's or the deterministic error bar, by what the file says it holds)
and, where ``predict --conformal`` wrote one, the conformal interval. Per row:
the bias, the mean half width, the coverage against its nominal value, and the
coverage in and out of the training domain, where the error bars that look
right on average are put to the test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from physnn.errors import ConfigError
from physnn.evaluation.report import EvaluationResult, evaluate, report_dir
from physnn.models.tasks import ONE_SIGMA

__all__ = ["SideBySide", "side_by_side"]


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
                "unit": fig.get("unit")}
        domain = fig.get("domain") or {}
        if "coverage_1sigma" in fig:
            rows.append({**base, "interval": "±1σ", "half_width": fig.get("mean_std"),
                         "coverage": fig["coverage_1sigma"], "nominal": ONE_SIGMA,
                         **{f"coverage_{part}": figs.get("coverage_1sigma") for part, figs in domain.items()}})
        conformal = fig.get("conformal")
        if conformal:
            rows.append({**base, "interval": f"conformal {conformal['level']:g}",
                         "half_width": conformal["conformal_half_width"], "coverage": conformal["conformal_coverage"],
                         "nominal": conformal["level"],
                         **{f"coverage_{part}": figs.get("conformal_coverage") for part, figs in domain.items()}})
    return rows


def side_by_side(predictions: Sequence[str | os.PathLike], *, out: str | os.PathLike | None = None,
                 split: str = "auto") -> SideBySide:
    """The error bars of several regression predictions files side by side (see the module docs).

    Parameters
    ----------
    predictions
        Two or more files written by :func:`physnn.predict` (with the truth), e.g. one with ``mc_samples``,
        one of an ensemble, one with ``conformal``.
    out
        Folder for ``side_by_side.json`` (None: compute only).
    split
        Events judged in each file, as :func:`~physnn.evaluation.report.evaluate` takes it.
    """
    rows = []
    for path in predictions:
        result = evaluate(path, split=split, plots=False, n_boot=0)
        if "regression" not in result.figures:
            msg = f"{path}: side by side compares the error bars of regressions; evaluate a classifier on its own"
            raise ConfigError(msg)
        rows += _rows(os.fspath(path), result, _label(result.figures))
    outdir = report_dir(out)
    files = []
    if outdir is not None:
        files.append(outdir / "side_by_side.json")
        files[0].write_text(json.dumps(rows, indent=1))
    return SideBySide(rows, outdir, files)
