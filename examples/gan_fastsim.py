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

import physnn

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "train"


def challenge_table(gan: physnn.ComparisonResult, floor: physnn.ComparisonResult) -> None:
    """The CaloChallenge's figures per particle type: classifier AUC on cells and on high-level features,
    FPD and KPD on the features, each beside the floor of two simulator samples."""
    def auc(result: physnn.ComparisonResult, kind: str, group: str) -> str:
        c = result.classifier[kind]
        c = c if group == "all" else c["per_type"][group]
        return f"{c['auc']:.3f} [{c['auc_low']:.3f}, {c['auc_high']:.3f}]"

    def distance(result: physnn.ComparisonResult, key: str, group: str) -> str:
        d = result.distances if group == "all" else result.distances["by_type"][group]
        return f"{d[key]:.5f} ± {d[key + '_err']:.5f}"

    groups = ["all", *gan.classifier["low"].get("per_type", {})]
    print("classifier AUC (0.5: cannot tell), GAN | floor (simulation vs simulation)")
    for kind, name in (("low", "cells"), ("high", "high-level features")):
        print(f"  on {name}")
        for group in groups:
            print(f"    {group:6s} {auc(gan, kind, group)} | {auc(floor, kind, group)}")
    for key in ("fpd", "kpd"):
        print(f"{key.upper()} on the high-level features, GAN | floor")
        for group in groups:
            print(f"    {group:6s} {distance(gan, key, group)} | {distance(floor, key, group)}")


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
    challenge_table(gan, floor)
    worst = sorted(gan.separation.items(), key=lambda kv: -kv[1])[:5]
    print("largest separation powers:", ", ".join(f"{k} {v:.3f}" for k, v in worst))
    print(f"speed-up over the simulator: {gan.timing.get('speedup', float('nan')):.1f}x")
    print(f"report: {out / 'report'}/ (metrics.json, separation.csv, features_*.png)")


if __name__ == "__main__":
    main()
