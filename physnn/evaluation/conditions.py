"""The conditions two shower samples were made under, and whether they agree.

A classifier told to separate a reference of e- and pi+ from generated e-
finds the pions, not the generator's flaws. So before :func:`physnn.compare`
judges two samples it compares their conditions, whichever both files have:

- the **particle types** (``pdgid``, or else ``label``): types present in one
  sample only, and a chi-square test of the proportions of the shared ones;
- the **incident energy**: ranges and a two-sample Kolmogorov-Smirnov test;
- the **impact point** (``x0``, ``y0``): ranges and a KS test each.

A test with a p-value below :data:`ALPHA` is a difference (with identical
conditions about one comparison in 250 warns by chance). :class:`Match`
restricts the reference to the candidate's conditions (``--match``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from physnn.errors import ConfigError, DataError
from physnn.fmt import particle
from physnn.io.metadata import readout_of, suppression_text

#: A condition test with a p-value below this is reported as a difference.
ALPHA = 1e-3
#: Branches naming the particle type, in order of preference.
PARTICLE_BRANCHES = ("pdgid", "label")
#: Branches of the impact point.
POSITION_BRANCHES = ("x0", "y0")
#: What is compared, in order: particles, the incident energy, the impact point.
CHECKS = ("particles", "energy", *POSITION_BRANCHES)

def condition_branches(handle: Any, names: Sequence[str]) -> list[str]:
    """The condition branches of a tree that hold one number per event: a particle branch, ``x0``, ``y0``.

    Parameters
    ----------
    handle
        The uproot TTree or RNTuple.
    names
        Its branch names.
    """
    found = [b for b in PARTICLE_BRANCHES if b in names and _is_number(handle, b)][:1]
    return found + [b for b in POSITION_BRANCHES if b in names and _is_number(handle, b)]


def _is_number(handle: Any, name: str) -> bool:
    try:
        probe = handle.arrays([name], entry_stop=1, library="np")[name]
    except Exception:
        return False
    return isinstance(probe, np.ndarray) and probe.ndim == 1 and probe.dtype.kind in "biuf"


def particle_name(branch: str, value: float) -> str:
    """``e-`` for pdgid 11, ``pdgid 13`` for an unnamed one, ``label 2`` for a label."""
    number = int(value)
    if branch == "pdgid":
        return particle(number)
    return f"{branch} {number}"


def _particle_branch(cond: Mapping[str, np.ndarray]) -> str | None:
    return next((b for b in PARTICLE_BRANCHES if b in cond), None)


def _p(value: float) -> str:
    return f"p = {value:.2g}" if value > 0 else "p < 1e-300"


def _range(values: np.ndarray) -> str:
    return f"{values.min():.3g} to {values.max():.3g} (mean {values.mean():.3g})"


def summarize(cond: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Counts and fractions per particle type, min/max/mean of the energy and impact point."""
    out: dict[str, Any] = {}
    branch = _particle_branch(cond)
    if branch is not None:
        values, counts = np.unique(cond[branch], return_counts=True)
        total = max(int(counts.sum()), 1)
        out["particles"] = {particle_name(branch, v): {"count": int(c), "fraction": round(int(c) / total, 6)}
                            for v, c in zip(values, counts, strict=True)}
    for key in CHECKS[1:]:
        if key in cond and len(cond[key]):
            values = np.asarray(cond[key], dtype=np.float64)
            out[key] = {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean())}
    return out


def _compare_particles(branch: str, ref: np.ndarray, cand: np.ndarray, alpha: float) -> tuple[dict, list[str]]:
    from scipy.stats import chi2_contingency

    differences = []
    for who, mine, theirs in (("reference", ref, cand), ("candidate", cand, ref)):
        for value in np.setdiff1d(np.unique(mine), np.unique(theirs)):
            n = int((mine == value).sum())
            differences.append(f"particles: {particle_name(branch, value)} only in the {who} "
                               f"({n:,} of {len(mine):,} showers, {n / len(mine):.1%})")
    shared = np.intersect1d(np.unique(ref), np.unique(cand))
    test: dict[str, Any] = {"branch": branch}
    if len(shared) >= 2:
        table = np.array([[(sample == v).sum() for v in shared] for sample in (ref, cand)])
        test["chi2_pvalue"] = float(chi2_contingency(table)[1])
        if test["chi2_pvalue"] < alpha:
            share = lambda row: ", ".join(  # noqa: E731
                f"{particle_name(branch, v)} {c / row.sum():.1%}" for v, c in zip(shared, row, strict=True))
            differences.append(f"particles: other proportions ({_p(test['chi2_pvalue'])}): "
                               f"reference {share(table[0])}; candidate {share(table[1])}")
    return test, differences


def _compare_values(key: str, ref: np.ndarray, cand: np.ndarray, alpha: float) -> tuple[dict, list[str]]:
    from scipy.stats import ks_2samp

    test = {"ks_pvalue": float(ks_2samp(ref, cand).pvalue)}
    if test["ks_pvalue"] >= alpha:
        return test, []
    return test, [f"{key}: distributions differ (KS {_p(test['ks_pvalue'])}); "
                  f"reference {_range(ref)}, candidate {_range(cand)}"]


def compare_conditions(ref: Mapping[str, np.ndarray], cand: Mapping[str, np.ndarray],
                       alpha: float = ALPHA) -> dict[str, Any]:
    """Compare the conditions both samples have.

    Parameters
    ----------
    ref, cand
        Per event: ``pdgid`` or ``label``, ``energy``, ``x0``, ``y0`` (any subset).
    alpha
        Tests with a p-value below it are differences.

    Returns
    -------
    dict
        ``matched`` (True, False, or None when nothing could be compared),
        ``differences`` (one line each), ``checked`` and ``unchecked`` (why
        not), the p-values per condition (``tests``) and each sample's
        :func:`summarize` (``reference``, ``candidate``).
    """
    checked, unchecked, differences = [], [], []
    tests: dict[str, Any] = {}
    ref_branch, cand_branch = _particle_branch(ref), _particle_branch(cand)
    for key in CHECKS:
        a, b = (ref_branch, cand_branch) if key == "particles" else (key if key in ref else None,
                                                                      key if key in cand else None)
        if a is None or b is None or a != b:
            unchecked.append(_why_not(key, a, b))
            continue
        checked.append(key)
        compare = _compare_particles if key == "particles" else _compare_values
        tests[key], found = compare(a, np.asarray(ref[a]), np.asarray(cand[b]), alpha)
        differences += found
    return {"matched": (not differences) if checked else None, "differences": differences, "checked": checked,
            "unchecked": unchecked, "tests": tests, "reference": summarize(ref), "candidate": summarize(cand)}


def _why_not(key: str, ref: str | None, cand: str | None) -> str:
    what = "pdgid or label branch" if key == "particles" else ("incident energy" if key == "energy"
                                                               else f"{key} branch")
    if ref is None and cand is None:
        return f"{key}: no {what} in either sample"
    if ref is None or cand is None:
        return f"{key}: no {what} in the {'reference' if ref is None else 'candidate'}"
    return f"{key}: {ref} in the reference, {cand} in the candidate"


@dataclass
class Match:
    """Which reference showers lie within the candidate's conditions (its particle types and ranges)."""

    particles: tuple[str, np.ndarray] | None = None
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def of(cls, candidate: Mapping[str, np.ndarray], reference_keys: Sequence[str]) -> Match:
        """The candidate's conditions, on those the reference has too (a ConfigError if none)."""
        branch = _particle_branch(candidate)
        match = cls()
        if branch is not None and branch in reference_keys:
            match.particles = (branch, np.unique(candidate[branch]))
        for key in CHECKS[1:]:
            if key in candidate and key in reference_keys:
                match.ranges[key] = (float(candidate[key].min()), float(candidate[key].max()))
        if match.particles is None and not match.ranges:
            msg = ("--match: the two files share no condition to match (a pdgid or label branch, the incident "
                   "energy, x0, y0)")
            raise ConfigError(msg)
        return match

    def __call__(self, cond: Mapping[str, np.ndarray]) -> np.ndarray:
        """The mask of the events of ``cond`` within these conditions."""
        keep = np.ones(len(next(iter(cond.values()))), dtype=bool)
        if self.particles is not None:
            keep &= np.isin(cond[self.particles[0]], self.particles[1])
        for key, (lo, hi) in self.ranges.items():
            keep &= (cond[key] >= lo) & (cond[key] <= hi)
        return keep

    def describe(self) -> str:
        """``particles e-; energy 20 to 50; x0 -1 to 1``."""
        parts = []
        if self.particles is not None:
            parts.append("particles " + ", ".join(particle_name(self.particles[0], v) for v in self.particles[1]))
        parts += [f"{key} {lo:.3g} to {hi:.3g}" for key, (lo, hi) in self.ranges.items()]
        return "; ".join(parts)

    def nothing_kept(self, path: str | os.PathLike, events: int) -> DataError:
        """The error when no reference shower is left."""
        return DataError(f"--match: none of the {events:,} reference showers of {os.fspath(path)} has the "
                         f"candidate's conditions ({self.describe()})")


def condition_report(ref: Mapping[str, np.ndarray], cand: Mapping[str, np.ndarray], kept: np.ndarray | None = None,
                     match: Match | None = None) -> dict[str, Any]:
    """:func:`compare_conditions` of the reference showers kept; with ``match``, what it kept and changed.

    Parameters
    ----------
    ref
        The conditions of every reference shower read.
    cand
        The candidate's.
    kept
        The reference showers that were compared (all when None).
    match
        The :class:`Match` that chose ``kept``.
    """
    compared = ref if kept is None else {k: v[kept] for k, v in ref.items()}
    report = compare_conditions(compared, cand)
    if match is not None:
        before = compare_conditions(ref, cand)
        events = len(next(iter(ref.values()))) if ref else 0
        report["match"] = {"kept": int(np.count_nonzero(kept)) if kept is not None else events, "of": events,
                           "within": match.describe(), "differences_before": before["differences"]}
    return report


def add_readout_check(report: dict[str, Any], ref_meta: Mapping[str, Any], cand_meta: Mapping[str, Any]) -> None:
    """Compare the readouts the two files declare (``physnn_meta["readout"]``: the zero-suppression threshold
    and whether it keeps negative cells) and add the result to a :func:`condition_report`: a different
    readout changes the number of cells hit and the energy of soft showers, whatever the generator does."""
    readouts = [readout_of(meta) for meta in (ref_meta, cand_meta)]
    if not all(readouts):
        if any(readouts):
            report["unchecked"].append("readout: only one file declares it in physnn_meta")
        return
    ref, cand = readouts
    report["checked"].append("readout")
    same = (ref.get("suppression") == cand.get("suppression")
            and abs(ref["threshold"] - cand["threshold"]) <= 0.01 * max(abs(ref["threshold"]), 1e-12))
    if not same:
        report["differences"].append(f"readout: zero suppression {suppression_text(ref)} in the reference, "
                                     f"{suppression_text(cand)} in the candidate")
    report["matched"] = bool(report["matched"] is not False and same)
