"""Signal/background on simulated collision events: GRU, LSTM and the 1D-conv baseline side by side.

Each event is a list of 5-60 particles (two muons from a resonance or a
continuum, plus soft hadrons), read as a pt-ordered sequence. The same
trainer, ``predict`` (with MC dropout) and ``evaluate`` serve every model;
only the ``model:`` section changes. The AUC ceiling is the generator's own
likelihood ratio of the true mass and the muon-pair pt: the networks must
find the muons among the particles and learn the invariant mass themselves.

    python examples/event_sequences.py [--events 20000] [--out events_run]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uproot
import yaml
from sklearn.metrics import roc_auc_score

import physnn
from physnn import demo
from physnn.simulation.events import log_likelihood_ratio

MODELS = Path(__file__).resolve().parents[1] / "configs" / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("events_run"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    events = args.out / "events.root"
    physnn.simulate("events", events, events=args.events, seed=11, overwrite=True)

    rows = []
    for name in ("gru", "lstm", "seq_conv"):
        cfg = demo.events_cls_config(events, epochs=args.epochs)
        cfg["model"] = yaml.safe_load((MODELS / f"{name}.yaml").read_text())
        run = physnn.train(cfg, out=args.out / f"run_{name}", overwrite=True, progress=False)
        pred = physnn.predict(run.run_dir, events, out=args.out / f"pred_{name}.root", mc_samples=30,
                              overwrite=True)
        fig = physnn.evaluate(pred.path, out=args.out / f"report_{name}").figures["classification"]
        rows.append((name, fig["auc"], fig["roc"]["auc_low"], fig["roc"]["auc_high"],
                     run.history[-1]["samples_per_s"]))

    with uproot.open(args.out / "pred_gru.root") as f:
        split = f["predictions"]["split"].array(library="np")
    with uproot.open(events) as f:
        ev = f["events"].arrays(["part_pt", "part_phi", "part_pid", "mass", "label"])[split == 2]
    ceiling = roc_auc_score(ev["label"], log_likelihood_ratio(ev))
    print(f"{args.events:,} events, test split; AUC with 68% bootstrap interval")
    for name, auc, lo, hi, rate in rows:
        print(f"  {name:9s} AUC {auc:.4f} [{lo:.4f}, {hi:.4f}]   training {rate:,.0f} samples/s")
    print(f"  generator likelihood ratio (true mass, muon-pair pt): AUC {ceiling:.4f}")


if __name__ == "__main__":
    main()
