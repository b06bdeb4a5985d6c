"""Simulate a calorimeter test beam, read it back as tensors, and check the physics.

A physicist's first look at new data: how do electrons, photons and pions
look in the calorimeter, and does the response behave as expected? Run:

    python examples/simulate_and_load.py [--out physnn-demo]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import physnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("physnn-demo"))
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "testbeam.root"

    result = physnn.simulate("showers", path, events=args.events, seed=7, overwrite=True)
    print(f"simulated {result.events} showers at {result.rate:,.0f} showers/s -> {path}")

    data = physnn.load({"files": str(path), "images": {"branches": "image"}, "label": "label",
                        "targets": "energy", "observers": ["pdgid", "energy"], "split": {"val": 0, "test": 0}})
    images = data.train.inputs["image"].numpy()
    energy = data.train.observers["energy"]
    pdgid = data.train.observers["pdgid"]
    total = images.sum(axis=(1, 2, 3))
    print(f"{'particle':>8} {'response':>9} {'sigma/E at 50 GeV':>18} {'layer fractions':>24}")
    for pid, name in ((11, "e-"), (22, "gamma"), (211, "pi+")):
        sel = pdgid == pid
        response = total[sel] / energy[sel]
        near50 = sel & (np.abs(energy - 50) < 10)
        resolution = np.std(total[near50] / energy[near50]) / np.mean(total[near50] / energy[near50])
        layers = images[sel].sum(axis=(2, 3)).sum(0) / images[sel].sum()
        print(f"{name:>8} {response.mean():9.3f} {resolution:18.3f} {np.array2string(layers, precision=2):>24}")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("install physnn[plot] to draw the average showers")
        return
    fig, axes = plt.subplots(3, images.shape[1], figsize=(3 * images.shape[1], 9))
    for row, (pid, name) in enumerate(((11, "e-"), (22, "gamma"), (211, "pi+"))):
        mean = images[pdgid == pid].mean(axis=0)
        for layer in range(images.shape[1]):
            ax = axes[row, layer]
            ax.imshow(np.log10(mean[layer] + 1e-3), origin="lower", cmap="viridis")
            ax.set_title(f"{name}, layer {layer}")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    png = args.out / "average_showers.png"
    fig.savefig(png, dpi=80)
    print(f"average showers (log10 GeV) -> {png}")


if __name__ == "__main__":
    main()
