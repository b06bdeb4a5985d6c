"""The Particle Transformer on the demo's collision events: signal/background AUC and the muon-pair mass.

For each variant (with and without particle identification as an input, ``is_muon``), trains the shipped
``configs/model/particle_transformer.yaml`` with the shipped event configs (``configs/train/events_cls.yaml``,
``events_mass.yaml``) plus ``sequence.kinematics``, predicts with MC dropout and evaluates on the test split
against the classic methods: the generator's likelihood-ratio AUC (the ceiling) and the dimuon mass of the
identified muons (:func:`physnn.demo.dimuon_mass`), per mass bin with intervals.

    python examples/particle_transformer_events.py [--events 10000] [--epochs 10] [--out part_run]
        [--param selections=0]   # ParT as published: pairwise features only, no particle selections
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uproot
import yaml
from sklearn.metrics import roc_auc_score

import physnn
from physnn import demo
from physnn.simulation.events import log_likelihood_ratio

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
KINEMATICS = ["part_pt", "part_eta", "part_phi", "part_e"]


def config(task: str, events: Path, epochs: int, *, pid: bool, model: str, params: dict[str, Any]) -> dict[str, Any]:
    """The shipped run config of ``task`` (cls or mass) on ``events``, with the model (its ``params`` changed)
    and the four-vectors."""
    cfg = yaml.safe_load((CONFIGS / "train" / f"events_{task}.yaml").read_text())
    cfg["data"]["files"] = str(events)
    cfg["data"]["sequence"]["kinematics"] = KINEMATICS
    cfg["model"] = yaml.safe_load((CONFIGS / "model" / f"{model}.yaml").read_text())
    cfg["model"]["params"].update(params)
    cfg["train"]["epochs"] = epochs
    if pid:  # what a detector gives: which particles are muons
        cfg["data"]["define"] = {"is_muon": "abs(part_pid) == 13"}
        cfg["data"]["sequence"]["features"] = [*cfg["data"]["sequence"]["features"], "is_muon"]
        cfg["data"]["standardize"]["exclude"] = [*cfg["data"]["standardize"]["exclude"], "is_muon"]
    return cfg


def run(task: str, events: Path, out: Path, epochs: int, pid: bool, model: str, params: dict[str, Any],
        tag: str) -> dict[str, Any]:
    """Train, predict (MC dropout, T = 50) and evaluate one variant; the figures and seconds per epoch."""
    name = f"{model}{tag}_{task}_{'id' if pid else 'noid'}"
    trained = physnn.train(config(task, events, epochs, pid=pid, model=model, params=params), out=out / name,
                           overwrite=True, progress=False)
    pred = physnn.predict(trained.run_dir, events, out=out / f"{name}.root", mc_samples=50, overwrite=True,
                          collect=task == "mass")
    baselines = None
    if task == "mass":
        assert pred.arrays is not None
        baselines = {"dimuon mass (muons identified)": {"mass": demo.dimuon_mass(events, pred.arrays["entry"])}}
    report = physnn.evaluate(pred.path, out=out / f"report_{name}", baselines=baselines, overwrite=True)
    seconds = [h["seconds"] for h in trained.history]
    return {"name": name, "figures": report.figures, "epoch_s": sum(seconds) / len(seconds), "pred": pred.path}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", default="particle_transformer", help="a config name in configs/model")
    parser.add_argument("--tasks", default="cls,mass")
    parser.add_argument("--pid", default="no,yes", help="without and/or with is_muon as an input")
    parser.add_argument("--param", action="append", default=[], help="KEY=VALUE: change a model parameter")
    parser.add_argument("--out", type=Path, default=Path("part_run"))
    args = parser.parse_args()
    params = {k: yaml.safe_load(v) for k, _, v in (p.partition("=") for p in args.param)}
    tag = "".join(f"_{k}{v}" for k, v in params.items())
    args.out.mkdir(parents=True, exist_ok=True)
    events = args.out / "events.root"
    if not events.is_file():
        physnn.simulate("events", events, events=args.events, seed=0)
    for task in args.tasks.split(","):
        for pid in args.pid.split(","):
            res = run(task, events, args.out, args.epochs, pid == "yes", args.model, params, tag)
            print(f"{res['name']}: {res['epoch_s']:.1f} s per epoch")
            if task == "cls":
                c = res["figures"]["classification"]
                with uproot.open(res["pred"]) as f:
                    split = f["predictions"]["split"].array(library="np")
                    entry = f["predictions"]["entry"].array(library="np")
                with uproot.open(events) as f:
                    ev = f["events"].arrays(["part_pt", "part_phi", "part_pid", "mass", "label"])[entry[split == 2]]
                ceiling = roc_auc_score(ev["label"], log_likelihood_ratio(ev))
                print(f"  AUC {c['auc']:.4f} [{c['roc']['auc_low']:.4f}, {c['roc']['auc_high']:.4f}] "
                      f"vs likelihood-ratio ceiling {ceiling:.4f} (short by {ceiling - c['auc']:.4f})")
            else:
                m = res["figures"]["regression"]["mass"]
                base = m["baselines"]["dimuon mass (muons identified)"]
                print(f"  mass σ {m['sigma']:.2f} GeV vs dimuon mass {base['sigma']:.2f} GeV "
                      f"({m['sigma'] / base['sigma']:.2f}x); {base['comparison']['summary']}; "
                      f"±1σ coverage {m['coverage_1sigma']:.3f}")
                for b in m.get("bins", []):
                    ref = b["baselines"]["dimuon mass (muons identified)"]
                    print(f"    {b['range'][0]:.0f}-{b['range'][1]:.0f} GeV: σ {b['sigma']:.2f} ± {b['sigma_err']:.2f}"
                          f" vs {ref['sigma']:.2f} ± {ref['sigma_err']:.2f} GeV")

if __name__ == "__main__":
    main()
