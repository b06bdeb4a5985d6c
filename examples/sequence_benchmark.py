"""The sequence benchmark: every sequence family on the same events and split, with and without particle ID.

For each family (``configs/model/NAME.yaml``) and each input set (with the
per-particle ``is_muon``, and without it: kinematics and charge only) two
runs are trained on the demo's events (``physnn simulate events``, seed 1):
signal/background (AUC with its bootstrap interval, against the generator's
likelihood-ratio ceiling) and the muon-pair mass (robust σ in GeV with its
error, against the analytic dimuon mass of the identified muons, per label
and per mass bin). Families whose model config declares ``lorentz`` get the
Cartesian four-momentum as their first four features (the demo's
``events_data``); the others the standardised (pt, η, φ, E, charge).

    python examples/sequence_benchmark.py [--families gru lstm seq_conv pfn] [--events 10000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import uproot
import yaml
from sklearn.metrics import roc_auc_score

import physnn
from physnn import demo
from physnn.simulation.events import log_likelihood_ratio

MODELS = Path(__file__).resolve().parents[1] / "configs" / "model"
FAMILIES = ("gru", "lstm", "seq_conv", "pfn")
BASELINE = "dimuon mass (muons identified)"


def configs(events: Path, family: str, *, particle_id: bool, epochs: int) -> tuple[dict, dict]:
    """The classification and mass run configs of one family and input set (the demo's, another model)."""
    model = yaml.safe_load((MODELS / f"{family}.yaml").read_text())
    data = demo.events_data(events, particle_id=particle_id, four_momentum="lorentz" in model.get("params", {}))
    cls, mass = demo.events_cls_config(events, epochs), demo.events_mass_config(events, epochs)
    for cfg in (cls, mass):
        cfg["model"] = model
        cfg["data"] = {**{k: v for k, v in cfg["data"].items() if k != "define"}, **data}
    return cls, mass


def run_one(events: Path, out: Path, family: str, *, particle_id: bool, epochs: int, mc_samples: int) -> dict:
    """Train, predict and evaluate one family on one input set; the figures the table shows."""
    cls_cfg, mass_cfg = configs(events, family, particle_id=particle_id, epochs=epochs)
    tag = f"{family}_{'id' if particle_id else 'noid'}"
    row: dict[str, Any] = {"family": family, "id": particle_id}
    t0 = time.perf_counter()
    physnn.train(cls_cfg, out=out / f"run_cls_{tag}", overwrite=True, progress=False)
    row["train_s"] = time.perf_counter() - t0
    pred = physnn.predict(out / f"run_cls_{tag}", events, out=out / f"pred_cls_{tag}.root", mc_samples=mc_samples,
                          overwrite=True)
    fig = physnn.evaluate(pred.path, out=out / f"report_cls_{tag}", overwrite=True).figures["classification"]
    row.update(auc=fig["auc"], auc_low=fig["roc"]["auc_low"], auc_high=fig["roc"]["auc_high"], cls_pred=pred.path)
    t0 = time.perf_counter()
    physnn.train(mass_cfg, out=out / f"run_mass_{tag}", overwrite=True, progress=False)
    row["train_s"] += time.perf_counter() - t0
    pred = physnn.predict(out / f"run_mass_{tag}", events, out=out / f"pred_mass_{tag}.root",
                          mc_samples=mc_samples, overwrite=True, collect=True)
    assert pred.arrays is not None
    base = {BASELINE: {"mass": demo.dimuon_mass(events, pred.arrays["entry"])}}
    report = physnn.evaluate(pred.path, out=out / f"report_mass_{tag}", baselines=base, by="label", overwrite=True)
    row["mass"] = report.figures["regression"]["mass"]
    return row


def ceiling(events: Path, predictions: Path) -> float:
    """AUC of the generator's likelihood ratio (true mass, muon-pair pt) on the test split of ``predictions``."""
    with uproot.open(predictions) as f:
        split = f["predictions"]["split"].array(library="np")
        entry = f["predictions"]["entry"].array(library="np")
    with uproot.open(events) as f:
        ev = f["events"].arrays(["part_pt", "part_phi", "part_pid", "mass", "label"])[entry[split == 2]]
    return float(roc_auc_score(np.asarray(ev["label"]), log_likelihood_ratio(ev)))


def compare(out: Path, *, events: int = 10000, families: tuple[str, ...] = FAMILIES, epochs: int = 30,
            mc_samples: int = 20) -> tuple[list[dict], float, dict]:
    """Every family with and without particle ID on one file; the rows, the AUC ceiling, the analytic mass's σ."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "events.root"
    physnn.simulate("events", path, events=events, seed=1, overwrite=True)
    rows = [run_one(path, out, family, particle_id=pid, epochs=epochs, mc_samples=mc_samples)
            for family in families for pid in (True, False)]
    base = rows[0]["mass"]["baselines"][BASELINE]
    return rows, ceiling(path, rows[0]["cls_pred"]), base


def _sigma(fig: dict) -> str:
    return f"{fig['sigma']:.2f}±{fig['sigma_err']:.2f}" if fig.get("sigma_err") is not None else f"{fig['sigma']:.2f}"


def table(rows: list[dict], best: float, base: dict) -> list[str]:
    """The table at 80 columns: AUC [68% interval], mass σ ± error (GeV) overall and per label, and per mass bin
    for the row with the smallest σ, each beside the analytic dimuon mass on the same events."""
    lines = [f"{'family':<9}{'inputs':<7}{'AUC [68% interval]':<26}{'mass σ (GeV)':<13}{'signal':<12}{'backgr.':<12}"]
    for r in rows:
        m, groups = r["mass"], r["mass"].get("by", {}).get("groups", {})
        per = [_sigma(groups[k]) if k in groups else "-" for k in ("1", "0")]
        auc = f"{r['auc']:.4f} [{r['auc_low']:.4f}, {r['auc_high']:.4f}]"
        inputs = "+ID" if r["id"] else "no ID"
        lines.append(f"{r['family']:<9}{inputs:<7}{auc:<26}{_sigma(m):<13}{per[0]:<12}{per[1]:<12}")
    groups = rows[0]["mass"].get("by", {}).get("groups", {})
    analytic = {k: g["baselines"][BASELINE] for k, g in groups.items()}
    lines.append(f"{'ceiling':<16}{f'{best:.4f} likelihood ratio':<26}{_sigma(base):<13}"
                 f"{_sigma(analytic['1']) if '1' in analytic else '-':<12}"
                 f"{_sigma(analytic['0']) if '0' in analytic else '-':<12}")
    lines.append("mass: robust σ of predicted - true mass (test split); ceiling row: the analytic")
    lines.append("dimuon mass of the identified muons; AUC: the generator's likelihood ratio")
    top = min(rows, key=lambda r: r["mass"]["sigma"])
    lines.append(f"per mass bin, {top['family']} {'+ID' if top['id'] else 'no ID'} vs the analytic dimuon mass (GeV):")
    lines.append(f"  {'true mass':<16}{'events':>7}  {'model σ':<12}{'analytic σ':<12}{'ratio':>6}")
    for b in top["mass"]["bins"]:
        a = b["baselines"][BASELINE]
        lines.append(f"  {b['range'][0]:>6.1f}-{b['range'][1]:<8.1f}{b['events']:>7}  {_sigma(b):<12}{_sigma(a):<12}"
                     f"{b['sigma'] / a['sigma']:>6.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("sequence_benchmark"))
    args = parser.parse_args()
    rows, best, base = compare(args.out, events=args.events, families=tuple(args.families), epochs=args.epochs)
    print(f"{args.events:,} events (seed 1), test split, {args.epochs} epochs")
    print("\n".join(table(rows, best, base)))
    keep = [{k: v for k, v in r.items() if k != "cls_pred"} for r in rows]
    (args.out / "results.json").write_text(json.dumps({"rows": keep, "ceiling": best, "analytic": base}, default=str))
    for r in rows:
        print(f"  {r['family']} {'+ID' if r['id'] else 'no ID'}: training {r['train_s']:.0f} s (both runs); "
              f"{r['mass']['baselines'][BASELINE]['comparison']['summary']}")


if __name__ == "__main__":
    main()
