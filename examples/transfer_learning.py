"""Transfer learning: reuse the e/pi classifier's convolutional features on a small new task.

The story: a large simulated sample of electrons and pions trains a CNN classifier. A new
task arrives with little data — telling photons from pions with only a few hundred
labelled showers. We compare, on the same large independent test sample:

- a CNN trained from scratch on the small set;
- the same CNN whose feature extractor comes from the e/pi run (``--init-from``), frozen
  (``--freeze features``), with only the dense head trained on the small set.

Run: ``python examples/transfer_learning.py [--small 80] [--out transfer-demo]``
(about a minute on a laptop CPU). The CLI equivalent of the transfer step is::

    physnn train run.yaml --out runs/gpi --init-from runs/epi --freeze features
"""

from __future__ import annotations

import argparse
from pathlib import Path

import physnn
from physnn.demo import EPI_MODEL


def run_config(files: Path, classes: list[int], *, epochs: int, seed: int = 0) -> dict:
    return {"data": {"files": str(files), "images": {"branches": ["image"]}, "label": "pdgid",
                     "classes": classes, "split": {"val": 0.2, "test": 0.0, "seed": seed}},
            "model": EPI_MODEL, "task": {"kind": "classification"},
            "train": {"epochs": epochs, "batch_size": 64, "seed": seed, "early_stopping": {"patience": 8}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("transfer-demo"))
    parser.add_argument("--small", type=int, default=80, help="labelled gamma/pi showers for the new task")
    args = parser.parse_args()
    out = args.out
    out.mkdir(exist_ok=True)

    big = out / "epi.root"
    small = out / "gpi_small.root"
    test = out / "gpi_test.root"
    physnn.simulate("showers", big, events=10000, seed=11, config={"particles": ["e-", "pi+"]}, overwrite=True)
    physnn.simulate("showers", small, events=args.small, seed=12, config={"particles": ["gamma", "pi+"]},
                    overwrite=True)
    physnn.simulate("showers", test, events=5000, seed=13, config={"particles": ["gamma", "pi+"]}, overwrite=True)

    physnn.train(run_config(big, [11, 211], epochs=8), out=out / "run_epi", overwrite=True)
    results = {}
    for name, extra in (("from scratch", {}), ("e/pi features, frozen", {"init_from": out / "run_epi",
                                                                         "freeze": "features"})):
        folder = out / ("run_scratch" if not extra else "run_transfer")
        physnn.train(run_config(small, [22, 211], epochs=40), out=folder, overwrite=True, **extra)
        preds = physnn.predict(folder, test, out=out / f"{folder.name}.root", overwrite=True)
        results[name] = physnn.evaluate(preds.path, split="all", n_boot=200).figures["classification"]

    print(f"\ngamma/pi with {args.small} labelled showers; test on 5,000 independent showers")
    for name, fig in results.items():
        roc = fig["roc"]
        print(f"  {name:24s} AUC {fig['auc']:.4f} [{roc['auc_low']:.4f}, {roc['auc_high']:.4f}]  "
              f"accuracy {fig['accuracy']:.3f}  ECE {fig['ece']:.3f}")


if __name__ == "__main__":
    main()

# Measured (2-core CPU, seeds as above): with 80 labelled showers, from scratch AUC 0.9871
# [0.9858, 0.9884], accuracy 0.940, ECE 0.100; with the frozen e/pi features AUC 0.9952
# [0.9943, 0.9965], accuracy 0.973, ECE 0.020. With 300 showers both reach AUC ~0.996.
