"""Replace the calorimeter simulation by a GAN and judge it like the Fast Calorimeter Simulation Challenge.

1. Simulate 30k showers (e-, gamma, pi+, 1-100 GeV) with the built-in calorimeter.
2. Train the conditional GAN of configs/train/fastsim.yaml on them (conditions:
   incident energy, impact point, particle type), with per-epoch sample
   images in the run's plots/ folder.
3. Generate 10k showers with the training mix of conditions into a ROOT file
   with the simulator's layout, and time it (showers/s, ROOT writing
   included).
4. Simulate an independent reference sample of 10k showers and compare:
   separation power of every high-level feature, classifier AUC on cells
   and on features, FPD and KPD on the features, the speed-up; and, as the
   floor, the same comparison of two independent simulator samples.

Run: python examples/gan_fastsim.py [--out physnn-gan]   (about 20 minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import physnn

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "train"


def summary(name: str, result: physnn.ComparisonResult) -> None:
    sep = result.separation
    layers = np.mean([v for k, v in sep.items() if k.startswith("e_layer")])
    aucs = "  ".join(f"AUC {k} {v['auc']:.3f} [{v['auc_low']:.3f}, {v['auc_high']:.3f}]"
                     for k, v in result.classifier.items())
    dist = result.distances
    print(f"{name:28s} S(E/Einc) {sep['e_ratio']:.4f}  S(E_layer) {layers:.4f}  "
          f"mean S {np.mean(list(sep.values())):.4f}  {aucs}  FPD {dist['fpd']:.5f} ± {dist['fpd_err']:.5f}  "
          f"KPD {dist['kpd']:.5f} ± {dist['kpd_err']:.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("physnn-gan"))
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's")
    args = parser.parse_args()
    out = args.out
    out.mkdir(exist_ok=True)
    showers = out / "showers.root"
    physnn.simulate("showers", showers, events=args.events, seed=7, overwrite=True)
    sets = [f"data.files={showers}"] + ([f"train.epochs={args.epochs}"] if args.epochs else [])
    run = physnn.train(CONFIGS / "fastsim.yaml", out=out / "run", overrides=sets, overwrite=True)
    print(f"best epoch {run.best['epoch']}: validation mean separation power {run.best['val_loss']:.4f}")

    generated = physnn.generate(out / "run", out / "fastsim.root", events=10_000, seed=1, overwrite=True)
    print(f"generated {generated.events} showers: {generated.rate:,.0f} showers/s with ROOT writing, "
          f"{generated.forward_rate:,.0f}/s for the network alone")
    reference = out / "reference.root"
    physnn.simulate("showers", reference, events=10_000, seed=101, overwrite=True)
    twin = out / "reference_twin.root"
    physnn.simulate("showers", twin, events=10_000, seed=102, overwrite=True)

    gan = physnn.compare(reference, out / "fastsim.root", out=out / "report", max_events=10_000)
    floor = physnn.compare(reference, twin, out=out / "report_floor", max_events=10_000)
    summary("GAN vs simulation", gan)
    summary("simulation vs simulation", floor)
    worst = sorted(gan.separation.items(), key=lambda kv: -kv[1])[:5]
    print("largest separation powers:", ", ".join(f"{k} {v:.3f}" for k, v in worst))
    print(f"speed-up over the simulator: {gan.timing.get('speedup', float('nan')):.1f}x")
    print(f"report: {out / 'report'}/ (metrics.json, separation.csv, features_*.png)")


if __name__ == "__main__":
    main()
