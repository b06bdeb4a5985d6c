"""``physnn evaluate``: figures of merit and plots from a predictions file.

Reads the ``predictions`` tree and its ``physnn_meta`` written by
:func:`physnn.predict`, picks the events to judge (by default the test split
when the predictions were made on the training files, so that no training
event is counted), computes the figures (:mod:`physnn.evaluation.metrics`)
and writes ``metrics.json`` and the plots (PNG, SVG or PDF).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from physnn.config import TargetSpec, format_validation_error
from physnn.data.split import SPLITS, describe_held_out, held_out
from physnn.errors import ConfigError, DataError, InputFileError, OutputError
from physnn.evaluation import metrics
from physnn.evaluation.baselines import Baseline, BaselineInput, get_baselines
from physnn.evaluation.coverage import coverage_by_bin, coverage_by_domain, interval_coverage
from physnn.evaluation.discrimination import check_bins_of, classification_by_bin
from physnn.evaluation.html_report import PAGE, listed_figures
from physnn.evaluation.image_format import check_format
from physnn.evaluation.run_config import run_data_config
from physnn.evaluation.summary import PDG_BRANCH, class_names, judge_groups
from physnn.inference.predict import TREE
from physnn.io.files import open_root
from physnn.io.metadata import META
from physnn.io.write import check_folder, make_folder


@dataclass
class EvaluationResult:
    """The figures (also in ``metrics.json``), the files written, and what was judged (``predictions`` of a
    classifier or regressor, or ``denoising`` of an autoencoder run)."""

    figures: dict[str, Any]
    out: Path | None
    files: list[Path] = field(default_factory=list)
    judged: str = "predictions"


#: The files by whose presence a folder holds a physnn report (``evaluate``, side by side, ``compare``).
REPORT_MARKERS = ("report.html", "metrics.json", "side_by_side.json")
#: The files of fixed name a physnn report writes; its figures are those its ``report.html`` lists.
REPORT_FILES = (*REPORT_MARKERS, "separation.csv")


def check_report_dir(out: str | os.PathLike | None, *, overwrite: bool = False) -> None:
    """Check before any work that ``out`` can take a report: a folder (or none yet) that holds no earlier report,
    or ``overwrite``. An empty or missing folder needs no ``overwrite``.

    Raises
    ------
    OutputError
        ``OUT: holds an earlier report (...); pass overwrite=True to replace it``, or when the folder cannot be
        created (:func:`~physnn.io.write.check_folder`).
    """
    if out is None:
        return
    check_folder(out)  # a file in its place: "cannot create output folder OUT: OUT is a file, not a folder"
    found = [name for name in REPORT_MARKERS if (Path(out) / name).is_file()]
    if found and not overwrite:
        msg = f"{out}: holds an earlier report ({', '.join(found)}); pass overwrite=True to replace it"
        raise OutputError(msg, options=["overwrite"])


def earlier_report(folder: Path) -> list[Path]:
    """The files an earlier physnn report wrote in ``folder``: those of fixed name (``report.html``,
    ``metrics.json``, ...) and the figures its ``report.html`` lists; never another file."""
    names = [*REPORT_FILES, *(listed_figures(folder / PAGE) if (folder / PAGE).is_file() else [])]
    return [folder / name for name in dict.fromkeys(names) if Path(name).name == name and (folder / name).is_file()]


def report_dir(out: str | os.PathLike | None, *, overwrite: bool = False) -> Path | None:
    """The report folder, created if needed (None stays None), with the files of an earlier report removed when
    ``overwrite`` (so that no stale figure stays beside the new ones); a one-line error when it cannot be, or
    when it holds an earlier report and not ``overwrite`` (:func:`check_report_dir`)."""
    if out is None:
        return None
    check_report_dir(out, overwrite=overwrite)
    folder = make_folder(out)
    for path in earlier_report(folder):
        path.unlink(missing_ok=True)
    return folder


def read_predictions(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The branches of a predictions file as numpy arrays, and its metadata."""
    handle = open_root(path)
    if TREE not in handle or META not in handle:
        msg = f"{path}: not a physnn predictions file (expected the tree {TREE!r} and {META!r})"
        raise InputFileError(msg)
    meta = json.loads(str(handle[META]))
    tree = handle[TREE]
    arrays = {k: np.asarray(v) for k, v in tree.arrays(library="np").items()}
    return arrays, meta


def _check_truth(predictions: str | os.PathLike, meta: Mapping[str, Any]) -> None:
    """One line when the predictions were made on files without the truth (``left_out`` in ``physnn_meta``)."""
    left_out = meta.get("left_out") or {}
    role = "targets" if meta["task"]["kind"] == "regression" else "label"
    if role not in left_out:
        return
    names = left_out[role] if isinstance(left_out[role], list) else [left_out[role]]
    files = ", ".join(os.fspath(f) for f in meta.get("files", [])) or "its input"
    what = role if len(names) > 1 else role.rstrip("s")
    msg = (f"{predictions}: holds no truth ({files} has no {what} {', '.join(repr(n) for n in names)}); "
           "evaluate needs predictions of a file with the truth")
    raise DataError(msg)


def _select(arrays: dict[str, np.ndarray], meta: dict[str, Any], split: str) -> tuple[np.ndarray, str]:
    """The events to judge and a description of them.

    ``auto`` judges the events that training never saw: the test split of
    the training files and every event of other files (split -1); never a
    training or validation event.
    """
    n = len(arrays["entry"])
    if split == "all":
        return np.ones(n, bool), "all"
    if split == "auto":
        codes = arrays["split"]
        keep = held_out(codes)
        if not keep.any():
            msg = ("no held-out event to judge: every event of the predictions is in the training or validation "
                   "split; predict on the test split or other files, or pass --split all to judge them anyway")
            raise DataError(msg)
        return keep, describe_held_out(codes)
    if split not in SPLITS:
        msg = f"--split {split!r}: expected auto, all, {', '.join(SPLITS)}"
        raise ConfigError(msg)
    return arrays["split"] == SPLITS[split], split


def target_specs(meta: Mapping[str, Any], run_dir: Path | None,
                 given: Mapping[str, TargetSpec | Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Unit, kind and source of each target of a predictions file.

    From ``given``, else from ``run_dir/config.yaml`` when it is the config
    the predictions were made with (its hash is the ``config_hash`` of the
    file's ``physnn_meta``), else ``kind: generic`` without a unit.
    """
    names = list(meta["task"].get("targets") or [])
    data = run_data_config(meta, run_dir)
    found: dict[str, TargetSpec] = data.target_specs if data is not None else {}
    out = {n: {**(found[n] if n in found else TargetSpec()).model_dump(), "source": "run config" if n in found else
               "default"} for n in names}
    for name, spec in (given or {}).items():
        try:
            out[name] = {**TargetSpec.model_validate(spec).model_dump(), "source": "given"}
        except ValidationError as err:
            raise ConfigError(format_validation_error(err, TargetSpec, f"targets {name!r}")) from None
    return out


def _coverage(arrays: Mapping[str, np.ndarray], keep: np.ndarray, name: str, true: np.ndarray, pred: np.ndarray,
              std: np.ndarray | None, level: float | None, ranges: list[list[float]]) -> dict[str, Any]:
    """The conformal interval's coverage (``predict --conformal``), overall and per bin of the truth (the
    resolution's bins), and every interval's in and out of the training domain (``in_domain``), when the
    predictions have them."""
    out: dict[str, Any] = {}
    low, high = (arrays[f"{name}_{side}"][keep] if f"{name}_{side}" in arrays else None for side in ("low", "high"))
    if low is not None and high is not None:
        out["conformal"] = {"level": level, **interval_coverage(true, pred, low=low, high=high),
                            "bins": coverage_by_bin(true, pred, ranges, low=low, high=high)}
    if "in_domain" in arrays:
        out["domain"] = coverage_by_domain(true, pred, arrays["in_domain"][keep], std=std, low=low, high=high)
    return out


def _judge_target(predictions: str | os.PathLike, arrays: Mapping[str, np.ndarray], keep: np.ndarray, name: str,
                  spec: Mapping[str, Any], baselines: Mapping[str, Mapping[str, np.ndarray]] | None,
                  by: str | None = None, level: float | None = None,
                  ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray | None]:
    """The regression figures of one target (model and baselines), and the arrays judged."""
    if name not in arrays:
        msg = f"{predictions}: no true {name!r} branch in the predictions; predict on a file with the target"
        raise DataError(msg)
    true, pred = arrays[name][keep], arrays[f"{name}_pred"][keep]
    std = arrays[f"{name}_std"][keep] if f"{name}_std" in arrays else None
    others = {label: np.asarray(values[name])[keep] for label, values in (baselines or {}).items() if name in values}
    fig = {"target": dict(spec), **metrics.regression(true, pred, std=std, kind=spec["kind"], unit=spec["unit"],
                                                      baselines=others)}
    for part in ("aleatoric", "epistemic", "std"):
        if f"{name}_{part}" in arrays:
            fig[f"mean_{part}"] = float(np.mean(arrays[f"{name}_{part}"][keep]))
    fig.update(_coverage(arrays, keep, name, true, pred, std, level, [row["range"] for row in fig["bins"]]))
    if by is not None:
        fig["by"] = {"name": by, "groups": metrics.regression_by(true, pred, arrays[by][keep], std=std,
                                                                 kind=spec["kind"], unit=spec["unit"],
                                                                 baselines=others)}
        judge_groups(fig)  # per group, better / worse / not resolved; no overall claim a group contradicts
    return fig, true, pred, std


def names_and_signal(meta: Mapping[str, Any], k: int) -> tuple[list[str], int]:
    """The names of the classes of a predictions file in index order (those its data config gave, else PDG
    ids as particle symbols, else ``label value``) and the index of the signal of a binary classifier (the
    config's ``signal``, else class 1)."""
    names = class_names(meta["task"].get("classes"), meta.get("label"), k, meta.get("class_names"))
    signal = meta.get("signal")
    return names, 1 if signal is None else int(signal)


def _judge_classes(predictions: str | os.PathLike, arrays: Mapping[str, np.ndarray], keep: np.ndarray,
                   meta: Mapping[str, Any], split: str, *, n_boot: int, seed: int,
                   outdir: Path | None, fmt: str = "png", bins_of: str | None = None,
                   bins: int = 0) -> tuple[dict[str, Any], list[Path]]:
    """The classification figures, with the classes named and the signal as the config says, per quantile bin
    of ``bins_of`` too when given; the plots when ``outdir`` is given."""
    if "true_class" not in arrays:
        msg = f"{predictions}: no truth (label branch) in the predictions; predict on a file with the label"
        raise DataError(msg)
    sel = keep & (arrays["true_class"] >= 0)
    if not sel.any():
        msg = f"{predictions}: no event with a known class in the {split} split"
        raise DataError(msg)
    prob = arrays["prob"][sel]
    std = arrays["prob_std"][sel] if "prob_std" in arrays else None
    truth = arrays["true_class"][sel]
    weight = arrays[meta["weight"]][sel] if meta.get("weight") and meta["weight"] in arrays else None
    names, s = names_and_signal(meta, prob.shape[1])
    binary = prob.shape[1] == 2
    fig = metrics.classification(truth, prob, weight=weight, prob_std=std, classes=meta["task"]["classes"],
                                 n_boot=n_boot, seed=seed, signal=s if binary else 1, names=names)
    if bins_of is not None:  # a binary classifier (check_bins_of)
        fig["bins_of"] = {"branch": bins_of, **classification_by_bin(truth, prob[:, s], arrays[bins_of][sel],
                                                                      signal=s, bins=bins, weight=weight,
                                                                      n_boot=n_boot, seed=seed)}
    written: list[Path] = []
    if outdir is None:
        return fig, written
    from physnn.evaluation import plots as P

    if "roc" in fig:  # background first, then the signal
        written.append(P.plot_roc(fig["roc"], outdir / f"roc.{fmt}", classes=[names[1 - s], names[s]]))
    written.append(P.plot_calibration(fig["calibration"], outdir / f"calibration.{fmt}",
                                      signal=names[s] if binary else None))
    written.append(P.plot_confusion(fig["confusion"], names, outdir / f"confusion.{fmt}"))
    if std is not None and binary:
        samples = arrays["score_samples"][sel] if "score_samples" in arrays else None
        if samples is not None and meta.get("score_index", 1) != s:  # the passes' score is of the other class
            samples = 1 - samples
        written.append(P.plot_mc_scores(prob[:, s], std[:, s], (truth == s).astype(int), samples,
                                        outdir / f"mc_scores.{fmt}", classes=[names[1 - s], names[s]]))
    if "bins_of" in fig:
        written.append(P.plot_bins_of(fig["bins_of"], outdir / f"discrimination_by_{bins_of}.{fmt}",
                                      classes=[names[1 - s], names[s]]))
    return fig, written


def _named_baselines(predictions: str | os.PathLike, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
                     run_dir: Path | None, specs: Mapping[str, Mapping[str, Any]], chosen: Sequence[Baseline],
                     by: str | None) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """The estimates of the baselines chosen by name, for every target of a kind each estimates, and how each
    was made (its calibration)."""
    estimates: dict[str, dict[str, np.ndarray]] = {}
    made: dict[str, Any] = {}
    for base in chosen:
        names = [t for t in meta["task"]["targets"] if specs[t]["kind"] in base.kinds]
        if not names:
            have = ", ".join(f"{t} (kind {specs[t]['kind']})" for t in meta["task"]["targets"])
            msg = (f"baseline {base.name!r} estimates a target of kind {' or '.join(base.kinds)}; {predictions} "
                   f"has {have}: declare the kind in the run's data config (targets: {{energy: {{kind: energy}}}})")
            raise ConfigError(msg)
        for name in names:
            if name not in arrays:
                msg = f"{predictions}: no true {name!r} branch to calibrate the baseline {base.name!r} on"
                raise DataError(msg)
            inp = BaselineInput(os.fspath(predictions), arrays, meta, run_dir, name,
                                arrays[by] if by is not None else None, by)
            values, info = base.compute(inp)
            estimates.setdefault(base.label, {})[name] = values
            made.setdefault(base.label, {})[name] = {"baseline": base.name, **info}
    return estimates, made


def evaluate(predictions: str | os.PathLike, *, out: str | os.PathLike | None = None,
             run: str | os.PathLike | None = None, split: str = "auto", n_boot: int = 200, seed: int = 0,
             plots: bool = True, baselines: Mapping[str, Mapping[str, np.ndarray]] | None = None,
             targets: Mapping[str, TargetSpec | Mapping[str, Any]] | None = None,
             by: str | None = None, baseline: str | Sequence[str] | None = None, bins_of: str | None = None,
             bins: int | None = None, image_format: str = "png", overwrite: bool = False) -> EvaluationResult:
    """Judge predictions against the truth stored next to them.

    Parameters
    ----------
    predictions
        A file written by :func:`physnn.predict` (with the truth branches).
    out
        Folder for ``metrics.json`` and the plots (None: compute only).
    run
        Run folder for the training curves and the targets' units and kinds
        (default: the checkpoint's folder).
    split
        ``auto`` (test split for predictions on the training files, else
        all), ``all``, ``train``, ``val`` or ``test``.
    n_boot
        Bootstrap resamples for the AUC interval and the ROC band.
    plots
        Write the plots (needs matplotlib) and ``report.html``.
    baselines
        Other estimators to compare resolutions with:
        ``{"calibrated cell sum": {"energy": array}}``, each array aligned
        entry by entry with the predictions file; each is binned and
        compared with the model bin by bin.
    targets
        Unit and kind of each regression target (:class:`TargetSpec` or
        its dict), overriding the run config's ``targets:``; a target
        declared nowhere is ``kind: generic`` without a unit.
    by
        Regression: also judge each value of this integer branch of the predictions (an observer such as
        ``pdgid``) on its own: bias, σ (σ/E and its fit for energies), coverage, each baseline's σ and
        whether the model beats it. None: with a baseline, the predictions' particle-type branch (``pdgid``)
        when they carry one.
    baseline
        Baselines by name (:data:`physnn.evaluation.baselines.BASELINES`), e.g. ``"cell-sum"``: the sum of
        the image cells calibrated on the training split of the predictions, one factor for all events or,
        with ``by``, one per group (``metrics.json`` says which, under ``baselines``).
    bins_of
        Binary classifiers: also judge the classifier per quantile bin of this numeric branch of the
        predictions (an observer such as ``energy``): per bin the events of each class, the AUC and the
        background rejection 1/ε_B at 80% signal efficiency, each with its bootstrap 68% interval
        (:func:`physnn.evaluation.discrimination.classification_by_bin`); under ``classification``/``bins_of``
        in ``metrics.json``, and one figure (``discrimination_by_BRANCH``). A branch the file lacks or that is
        not one number per event, or predictions of a regression or a multi-class classifier: a ConfigError
        before anything is written.
    bins
        The number of quantile bins of ``bins_of`` (default 5; fewer when a bin would hold under 10 events).
    image_format
        ``png``, or vector ``svg`` or ``pdf``: the file format of every plot. ``report.html`` embeds PNG and SVG
        figures and links to PDF files beside it.
    overwrite
        Replace an earlier report in ``out``: its own files (``report.html``, ``metrics.json``, the figures its
        page lists) are removed, other files stay. Without it, such a folder is refused before any work.
    """
    fmt = check_format(image_format)
    check_report_dir(out, overwrite=overwrite)
    chosen = get_baselines(baseline)  # an unknown name fails before anything is read or written
    arrays, meta = read_predictions(predictions)
    task = meta["task"]
    _check_truth(predictions, meta)
    run_dir = Path(run) if run is not None else (Path(meta["checkpoint"]).parent if meta.get("checkpoint") else None)
    keep, split = _select(arrays, meta, split)
    if by is not None and (by not in arrays or arrays[by].ndim != 1 or arrays[by].dtype.kind not in "iub"):
        have = ", ".join(k for k, v in arrays.items() if v.ndim == 1 and v.dtype.kind in "iub")
        msg = f"--by {by}: {predictions} has no integer branch {by!r} to group by (it has: {have})"
        raise ConfigError(msg)
    if "selected" in arrays:  # predict --aligned: the rows outside its selection hold fill values, not predictions
        keep = keep & arrays["selected"].astype(bool)
    bins = check_bins_of(os.fspath(predictions), arrays, meta, bins_of, bins, keep)
    figures: dict[str, Any] = {"predictions": os.fspath(predictions), "checkpoint": meta.get("checkpoint"),
                               "split": split, "mc_samples": meta.get("mc_samples", 0),
                               "members": meta.get("members", 1)}
    if task["kind"] == "regression":
        specs = target_specs(meta, run_dir, targets)
        named, made = _named_baselines(predictions, arrays, meta, run_dir, specs, chosen, by)
        baselines = {**(baselines or {}), **named}
        if made:
            figures["baselines"] = made
        if by is None and baselines:  # verdicts per particle type when the predictions carry one
            by = next((k for k, v in arrays.items() if PDG_BRANCH.search(k) and v.ndim == 1
                       and v.dtype.kind in "iu" and k != meta.get("label")), None)
    elif chosen:
        msg = (f"baseline {chosen[0].name!r} estimates a regression target ({', '.join(chosen[0].kinds)}); "
               f"{predictions} holds a classifier's predictions")
        raise ConfigError(msg)
    written: list[Path] = []
    outdir = report_dir(out, overwrite=overwrite)
    draw = plots and outdir is not None
    if draw:
        from physnn.evaluation import plots as P

    if task["kind"] != "regression":
        fig, written = _judge_classes(predictions, arrays, keep, meta, split, n_boot=n_boot, seed=seed,
                                      outdir=outdir if draw else None, fmt=fmt, bins_of=bins_of, bins=bins)
        figures["classification"] = fig
        figures["events"] = fig["events"]
    else:
        figures["regression"] = {}
        for name in task["targets"]:
            fig, true, pred, std = _judge_target(predictions, arrays, keep, name, specs[name], baselines, by,
                                                 meta.get("conformal"))
            figures["regression"][name] = fig
            if draw:
                written += P.plot_regression(name, true, pred, std, fig, outdir, fmt=fmt)
    figures.setdefault("events", int(keep.sum()))
    if run_dir is not None and run_dir.is_dir():
        from physnn.evaluation.plots import read_history

        history = read_history(run_dir)
        if history:
            figures["training"] = {"epochs": len(history), "last": history[-1]}
            if draw:
                written += P.plot_training(run_dir, outdir, fmt=fmt)
    if outdir is not None:
        path = outdir / "metrics.json"
        path.write_text(json.dumps(figures, indent=1))
        written.insert(0, path)
        if draw:
            from physnn.evaluation.html_report import evaluation_page

            written.append(evaluation_page(outdir, figures, written, meta, run_dir))
    return EvaluationResult(figures, outdir, written)
