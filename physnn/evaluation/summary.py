"""Plain-text lines and tables of a regression evaluation (for the terminal and ``metrics.json``).

The headline never stands alone: a comparison with a baseline says in how many
bins of the true value the model is better and names every bin where it is
worse; a rejected σ/E fit is printed as rejected, with its χ²/ndf.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from physnn.fmt import num, particle_label, percent, with_error, with_interval

__all__ = ["DASH", "NAMED_BINS", "PDG_BRANCH", "bin_table", "bracket", "class_names", "class_rows", "comparison_line",
           "fit_line", "fmt_range", "group_comparison", "group_names", "judge_groups", "key_name", "num",
           "percent", "ratio", "regression_rows", "summary_rows", "verdict", "with_unit", "worst_line"]

#: Bins named one by one in a comparison line before "... and N more".
NAMED_BINS = 3
#: Between the edges of a range (not a hyphen: a range of negative values stays readable).
DASH = "\N{EN DASH}"


#: Label branches holding PDG ids (``pdgid``, ``part_pid``, ``pdg``).
PDG_BRANCH = re.compile(r"pdg|(^|_)pid$", re.IGNORECASE)


def class_names(classes: Sequence[Any] | None, label: str | None = None, k: int = 2,
                names: Sequence[str] | None = None) -> list[str]:
    """What to call each class on a plot or in a table.

    Parameters
    ----------
    classes
        The run's class values (``meta["task"]["classes"]``); None: ``0 .. k-1``.
    label
        The label branch (``meta["label"]``): a PDG-id branch (``pdgid``)
        turns 11, -211, 22 into e-, pi-, gamma (:data:`physnn.fmt.PARTICLES`); another
        branch names the raw value (``is_signal 1``, as the condition checks
        of ``physnn compare`` do); without a label, the raw values.
    k
        The number of classes when ``classes`` is None.
    names
        The names the data config gave the classes (``classes: {22: photon, 111: pi0}``): they win.
    """
    if names:
        return [str(n) for n in names]
    values = list(classes) if classes is not None else list(range(k))
    if label is None:
        return [str(v) for v in values]
    if PDG_BRANCH.search(str(label)):
        return [particle_label(v) for v in values]
    return [f"{label} {v}" for v in values]


def with_unit(text: str, unit: str | None) -> str:
    """``"2.58 GeV"``, or the number alone without a unit."""
    return f"{text} {unit}" if unit else text


def bracket(unit: str | None) -> str:
    """``" [GeV]"`` for axis labels and column names, empty without a unit."""
    return f" [{unit}]" if unit else ""


def fmt_range(lo: float, hi: float, unit: str | None = None) -> str:
    """A bin range with as many decimals as its width asks: ``1 to 13 GeV`` is ``1{DASH}13 GeV``."""
    width = hi - lo
    decimals = max(1 - math.floor(math.log10(width)), 0) if width > 0 else 3
    return with_unit(f"{lo:.{decimals}f}{DASH}{hi:.{decimals}f}", unit)


def key_name(key: str) -> str:
    """``σ/E`` for ``sigma_rel``, ``σ`` for ``sigma``."""
    return "σ/E" if key == "sigma_rel" else "σ"


def ratio(model: float, base: float) -> float:
    """``model / base``, infinite for a zero base (a perfect baseline), NaN when either is undefined."""
    if not (math.isfinite(model) and math.isfinite(base)):
        return math.nan
    return model / base if base > 0 else (math.inf if model > 0 else 1.0)


def verdict(model: float, base: float) -> str:
    """``3.3× better``, ``1.4× worse`` or ``the same`` for two resolutions (smaller is better)."""
    r = ratio(model, base)
    if math.isnan(r) or r == 1:
        return "the same" if r == 1 else "not comparable"
    if r < 1:
        return f"{num(1 / r, 2)}× better" if r > 0 else "better: the model's σ is 0"
    return f"{num(r, 2)}× worse" if math.isfinite(r) else "worse: the baseline's σ is 0"


def comparison_line(rows: Sequence[Mapping[str, Any]], label: str, comparison: Mapping[str, Any],
                    overall: tuple[float, float], unit: str | None) -> str:
    """One line: ``σ 2.6 vs 8.5 GeV overall (3.3× better); better in 7 of 8 bins, worse in 1`` and the bins
    where the model is worse, the worst first, e.g. ``(1{DASH}13 GeV: σ/E 0.80 vs 0.27)``."""
    key, n = comparison["key"], comparison["bins"]
    model, base = overall
    head = f"σ {num(model)} vs {with_unit(num(base), unit)} overall ({verdict(model, base)})"
    worse = sorted(comparison["worse_bins"], key=lambda i: -ratio(rows[i][key], rows[i]["baselines"][label][key]))
    unit_shown = None if key == "sigma_rel" else unit
    named = [f"{fmt_range(*rows[i]['range'], unit)}: {key_name(key)} {num(rows[i][key], 2)} vs "
             f"{with_unit(num(rows[i]['baselines'][label][key], 2), unit_shown)}" for i in worse[:NAMED_BINS]]
    more = f"; and {len(worse) - NAMED_BINS} more" if len(worse) > NAMED_BINS else ""
    if not worse:
        bins = f"better in all {n} bins" if comparison["better"] == n else f"better in {comparison['better']} of {n}"
    elif comparison["better"] == 0:
        bins = f"worse in all {n} bins ({'; '.join(named)}{more})"
    else:
        bins = f"better in {comparison['better']} of {n} bins, worse in {len(worse)} ({'; '.join(named)}{more})"
    return f"{head}; {bins}"


def fit_line(fit: Mapping[str, Any] | None) -> str:
    """The σ/E fit as a headline, or why there is none."""
    if fit is None:
        return "no fit (fewer than 3 bins, or it did not converge)"
    quality = f"χ²/ndf = {num(fit['chi2'], 3)}/{fit['ndf']} = {num(fit['chi2_ndf'], 2)}"
    if not fit["accepted"]:
        return (f"fit rejected: {quality} (p = {fit['p_value']:.1g} < {fit.get('p_min', 1e-3):g}): σ/E does not "
                "follow a/√E ⊕ b, see the bins")
    return f"{fit_terms(fit)} ({quality})"


def fit_terms(fit: Mapping[str, Any]) -> str:
    """``(0.42 ± 0.03)/√E ⊕ (0.011 ± 0.004)``: the σ/E fit's terms with their errors (PDG rounding)."""
    a = with_error(fit["stochastic"], fit.get("stochastic_err"))
    b = with_error(fit["constant"], fit.get("constant_err"))
    return f"({a})/√E ⊕ ({b})" if "±" in a + b else f"{num(fit['stochastic'], 3)}/√E ⊕ {num(fit['constant'], 2)}"


def worst_line(worst: Mapping[str, Any], key: str, unit: str | None) -> str:
    """``1{DASH}13 GeV: σ/E 0.803, 3.0× calibrated cell sum (0.271)``."""
    value_unit = None if key == "sigma_rel" else unit
    text = f"{fmt_range(*worst['range'], unit)}: {key_name(key)} {with_unit(num(worst['value']), value_unit)}"
    if "reference" in worst:
        return f"{text}, {num(worst['ratio'], 2)}× {worst['reference']} ({num(worst['reference_value'])})"
    return f"{text} (the largest)"


def regression_rows(name: str, r: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The headline rows of one regression target: bias, σ, the fit, each comparison, worst bin, outliers."""
    unit = r.get("unit")
    rows = [(f"{name} bias", with_unit(with_error(r["bias"], r.get("bias_err")), unit)),
            (f"{name} resolution σ (robust)", with_unit(with_error(r["sigma"], r.get("sigma_err")), unit))]
    if r.get("kind") == "energy":
        rows.append((f"{name} σ/E fit a/√E ⊕ b", fit_line(r.get("fit"))))
    for label, base in (r.get("baselines") or {}).items():
        if "comparison" in base:
            rows.append((f"{name} vs {label}", base["comparison"]["summary"]))
    if r.get("worst_bin"):
        rows.append((f"{name} worst bin", worst_line(r["worst_bin"], r["key"], unit)))
    out = r["outliers"]
    rows.append((f"{name} catastrophic outliers", f"{out['count']:,} of {out['events']:,} "
                                                  f"({percent(out['fraction'])}): {out['criterion']}"))
    if "coverage_1sigma" in r:
        rows += [(f"{name} pull std", with_error(r["pull_std"], r.get("pull_std_err"))),
                 (f"{name} coverage ±1σ / ±2σ", f"{num(r['coverage_1sigma'])} / {num(r['coverage_2sigma'])} "
                                                "(Gaussian: 0.683 / 0.954)")]
    rows += coverage_rows(name, r)
    by = r.get("by") or {}
    for value, group in (by.get("groups") or {}).items():
        rows.append((f"{name}, {by['name']} {value}", group_line(group, unit, r.get("kind") == "energy")))
    return rows


def coverage_rows(name: str, r: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The conformal interval's coverage, and every interval's in and out of the training domain."""
    unit, rows = r.get("unit"), []
    conformal = r.get("conformal")
    if conformal:
        level = conformal.get("level")
        claim = f" (guaranteed >= {num(level)} for events like the validation split)" if level else ""
        width = with_unit(num(conformal["conformal_half_width"]), unit)
        rows.append((f"{name} conformal interval",
                     f"coverage {num(conformal['conformal_coverage'])}{claim}, mean half width {width}"))
        if conformal.get("bins"):
            rows.append((f"{name} conformal coverage per bin",
                         ", ".join(num(b["conformal_coverage"]) for b in conformal["bins"]) + " (bins as below)"))
    for part, figs in (r.get("domain") or {}).items():
        text = f"{figs['events']:,} events, bias {with_unit(with_error(figs['bias'], figs.get('bias_err')), unit)}"
        if "coverage_1sigma" in figs:
            text += (f", mean σ {with_unit(num(figs['mean_std']), unit)}, ±1σ coverage "
                     f"{num(figs['coverage_1sigma'])}, pull std {num(figs['pull_std'])}")
        if "conformal_coverage" in figs:
            text += f", conformal coverage {num(figs['conformal_coverage'])}"
        rows.append((f"{name} {'in' if part == 'in' else 'out of'} the training domain", text))
    return rows


def group_line(group: Mapping[str, Any], unit: str | None, energy: bool) -> str:
    """One group of :func:`~physnn.evaluation.metrics.regression_by`: events, bias, σ (σ/E), each baseline's,
    coverage."""
    key = "sigma_rel" if energy else "sigma"
    bias = with_unit(with_error(group["bias"], group.get("bias_err")), unit)
    text = f"{group['events']:,} events, bias {bias}, {key_name(key)} {_pm(group, key)}"
    for label, base in group["baselines"].items():
        said = {"better": "the model is better", "worse": "the model is worse",
                "not resolved": "not resolved by the errors"}.get(base.get("verdict", ""), "")
        bias = with_unit(with_error(base["bias"], base.get("bias_err")), unit)
        text += f" ({label}: bias {bias}, {key_name(key)} {_pm(base, key)}{': ' + said if said else ''})"
    if "coverage_1sigma" in group:
        text += f", ±1σ coverage {num(group['coverage_1sigma'])}"
    return text


def _pm(figures: Mapping[str, Any], key: str) -> str:
    """``0.057 ± 0.002``: a σ with its statistical error when there is one."""
    return with_error(figures[key], figures.get(f"{key}_err"))


def group_names(by: str, values: Sequence[str]) -> dict[str, str]:
    """``pdgid 11 (e-)`` for a particle-type branch, ``flag 1`` for another, per group value."""
    names = class_names(values, by)
    return {v: f"{by} {v}" + (f" ({n})" if n not in (str(v), f"{by} {v}") else "")
            for v, n in zip(values, names, strict=True)}


def group_comparison(r: Mapping[str, Any], label: str) -> str:
    """The headline of the model against the baseline ``label`` when the events are grouped (``by``): never
    "better" overall while a group says worse, and each group's verdict named (``base["groups"]``, which
    :func:`judge_groups` gathers)."""
    by = r["by"]
    base = r["baselines"][label]
    groups = base["groups"]
    names = group_names(by["name"], list(groups))
    comparison, key, unit = base["comparison"], r["key"], r.get("unit")
    kinds = {what: [names[v] for v, said in groups.items() if said == what]
             for what in ("better", "worse", "not resolved")}
    per_group = "; ".join(f"{what} for {', '.join(who)}" for what, who in kinds.items() if who)
    overall = ratio(r["sigma"], base["sigma"])
    if kinds["worse"] and overall < 1:  # the overall lead is the mixture's, not the model's
        detail = ", ".join(f"{names[v]} with {key_name(key)} {num(by['groups'][v][key])} vs "
                           f"{num(by['groups'][v]['baselines'][label][key])}"
                           for v in groups if groups[v] == "worse")
        return (f"σ {num(r['sigma'])} vs {with_unit(num(base['sigma']), unit)} overall, but the model is worse "
                f"for {detail}: no overall verdict, the smaller overall σ comes "
                f"from mixing the {by['name']} groups (σ smaller in {comparison['better']} of {comparison['bins']} "
                f"bins of the true value); per group: {per_group}")
    return f"{comparison['summary']}; per group ({key_name(key)} ± its error): {per_group}"


def judge_groups(r: dict[str, Any]) -> None:
    """With groups (``r["by"]``), give each baseline its per-group verdicts (``groups``) and rewrite its
    comparison headline (:func:`group_comparison`)."""
    if not r.get("by") or not r.get("baselines"):
        return
    for label, base in r["baselines"].items():
        base["groups"] = {v: g["baselines"][label]["verdict"] for v, g in r["by"]["groups"].items()
                          if label in g["baselines"]}
        if base["groups"]:
            base["comparison"]["summary"] = group_comparison(r, label)


def bin_table(name: str, r: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Column names and one row of strings per bin: range, events, bias, σ (σ/E), each baseline, outliers, note."""
    unit, energy = r.get("unit"), r.get("kind") == "energy"
    key = r["key"]
    labels = list(r.get("baselines") or {})
    columns = [f"true {name}{bracket(unit)}", "events", f"bias{bracket(unit)}", f"σ{bracket(unit)}"]
    columns += ["σ/E"] if energy else []
    columns += [f"{label} {key_name(key)}{bracket(None if energy else unit)}" for label in labels]
    covered = any(b.get("coverage_1sigma") is not None for b in r["bins"])
    columns += ["±1σ cov."] if covered else []
    columns += ["outliers", "note"]
    worst = (r.get("worst_bin") or {}).get("index")
    rows = []
    for i, b in enumerate(r["bins"]):
        cells = [fmt_range(*b["range"]), f"{b['events']:,}", with_error(b["bias"], b.get("bias_err")), num(b["sigma"])]
        cells += [num(b["sigma_rel"])] if energy else []
        cells += [num(b["baselines"][label][key]) for label in labels]
        cells += [num(b["coverage_1sigma"]) if b.get("coverage_1sigma") is not None else "-"] if covered else []
        worse = [label for label in labels if b[key] > b["baselines"][label][key]]
        note = "worst" if i == worst else ""
        if worse:  # with one baseline its column is beside the note: "worse" says enough at 80 columns
            what = "worse" if len(labels) == 1 else f"worse than {', '.join(worse)}"
            note = ", ".join(filter(None, [note, what]))
        rows.append([*cells, f"{b['outliers']:,}", note])
    return columns, rows


def class_rows(c: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The classes by name, the signal of a binary classifier and the background rejection at 80% of it."""
    names = c.get("class_names")
    if not names:
        return []
    if "signal" not in c:
        return [("classes", ", ".join(names))]
    rows = [("signal", f"{c['signal']} (background: {c['background']}; judged on P({c['signal']}))")]
    r = c.get("rejection")
    if r:
        value = "∞ (no background event passes)" if math.isinf(r["rejection"]) else num(r["rejection"])
        rows.append((f"{c['background']} rejection at {r['efficiency']:.0%} {c['signal']} efficiency",
                     f"{value} (1/ε_B, ε_B = {num(r['background_efficiency'])})"))
    return rows


def summary_rows(figures: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The headline figures of an evaluation as (name, value) rows: ``physnn evaluate`` prints them and
    ``report.html`` shows them."""
    rows: list[tuple[str, str]] = [("events", f"{figures['events']:,} ({figures['split']})")]
    c = figures.get("classification")
    if c:
        rows += class_rows(c)
        if "roc" in c and "auc_low" in c["roc"]:
            auc, low, high = with_interval(c["auc"], c["roc"]["auc_low"], c["roc"]["auc_high"])
            rows.append(("AUC", f"{auc} (68% bootstrap interval {low}{DASH}{high})"))
        elif "auc" in c:
            rows.append(("AUC", num(c["auc"])))
        rows += [("accuracy", num(c["accuracy"])), ("ECE (calibration error)", num(c["ece"]))]
        if "mc" in c:
            frac, acc, labels = c["mc"]["fraction"], c["mc"]["accuracy"], c["mc"].get("labels", {})
            for name in frac:
                a = acc[name]
                rows.append((f"MC {labels.get(name, name.replace('_', ' '))}",
                             f"{percent(frac[name])} of events" + ("" if a is None else f", accuracy {num(a)}")))
            rows.append(("MC categories", c["mc"].get("rule", "certain: 0.5 outside the score ± 2σ band")))
    for label, made in (figures.get("baselines") or {}).items():
        rows += [(label if len(made) == 1 else f"{label} ({target})", info["description"])
                 for target, info in made.items()]
    for name, r in (figures.get("regression") or {}).items():
        rows += regression_rows(name, r)
    if figures.get("training"):
        rows.append(("training epochs", str(figures["training"]["epochs"])))
    return rows
