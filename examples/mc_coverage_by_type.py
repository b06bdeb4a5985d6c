"""Do the energy error bars cover 68% for each particle type, with and without MC dropout?

1. Simulate showers (e-, gamma, pi+, 1-100 GeV; by default the demo's 10k, seed 1) and train the demo's
   energy CNN on them (physnn.demo.energy_config: log(E / cell sum), Gaussian head, dropout in the head).
   Training fits the error bars' factors on the validation split (physnn.training.calibration): per mode
   a scale s and, where the error bar has an epistemic part (MC dropout), that part's weight rho.
2. Predict every shower deterministically (T = 0) and with MC dropout (T = 50), and evaluate against the
   calibrated cell sum per particle type (``evaluate --baseline cell-sum --by pdgid``).
3. Per type, on the test split: the ±1σ coverage with its binomial error, the pull width (std, and the
   robust IQR/1.349, which the few pions with a leaking shower do not set), and σ/E against the cell sum.

Run: python examples/mc_coverage_by_type.py [--out physnn-coverage] [--events 10000]
(about 4 minutes on 2 CPU cores at 10k showers)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import physnn
from physnn import demo
from physnn.evaluation.coverage import interval_coverage

TYPES = {"11": "e-", "22": "gamma", "211": "pi+"}


def per_type(a: dict[str, np.ndarray], predictions: Path, report: Path, mc_samples: int) -> None:
    """Print the coverage, pull widths and σ/E ratio to the cell sum of each type on the test split of the
    predictions ``a`` (written to ``predictions``)."""
    ev = physnn.evaluate(predictions, out=report, baseline="cell-sum", by="pdgid", overwrite=True, plots=False)
    groups = ev.figures["regression"]["energy"]["by"]["groups"]
    test = np.asarray(a["split"]) == 2
    for code, name in TYPES.items():
        sel = test & (np.asarray(a["pdgid"]) == int(code))
        true, pred, std = (np.asarray(a[k])[sel] for k in ("energy", "energy_pred", "energy_std"))
        c = interval_coverage(true, pred, std=std)
        p, n = c["coverage_1sigma"], c["events"]
        pull = (pred - true) / std
        robust = float(np.subtract(*np.percentile(pull, [75, 25])) / 1.349)
        g = groups[code]
        ratio = g["sigma_rel"] / g["baselines"]["calibrated cell sum"]["sigma_rel"]
        print(f"T={mc_samples:<3} {name:6s} {n:4d} events  coverage {p:.3f} ± {np.sqrt(p * (1 - p) / n):.3f}  "
              f"pull std {c['pull_std']:.2f} (robust {robust:.2f})  σ/E {g['sigma_rel']:.4f} = {ratio:.2f}x cell sum")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("physnn-coverage"))
    parser.add_argument("--events", type=int, default=10000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    showers = args.out / "showers.root"
    physnn.simulate("showers", showers, events=args.events, seed=1, overwrite=True)
    run = args.out / "run"
    trained = physnn.train(demo.energy_config(showers), out=run, overwrite=True, progress=False)
    print(f"error-bar factors fitted on the validation split: {trained.task.sigma_scale}")
    for t in (0, 50):
        predictions = args.out / f"predictions_T{t}.root"
        pred = physnn.predict(run, showers, out=predictions, mc_samples=t, overwrite=True, collect=True)
        per_type(pred.arrays, predictions, args.out / f"report_T{t}", t)


if __name__ == "__main__":
    main()
