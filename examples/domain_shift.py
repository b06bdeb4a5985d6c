"""Error bars under a shift: the demo's energy CNN on showers unlike its training ones.

1. Simulate 10k showers (e-, gamma, pi+, 1-100 GeV) and train an ensemble of 5 energy
   CNNs of configs/train/energy.yaml on them (`physnn train --ensemble 5`; member 0
   is the network `physnn demo` trains).
2. Predict fresh showers of the same kind, showers of 150-250 GeV (beyond the training
   energies) and showers from a noisier detector (50 MeV of noise per cell instead of
   10), three ways: member 0 with MC dropout (T = 20), ±1σ; the ensemble of 5 (their
   mean, their spread as the epistemic error), ±1σ; member 0's split-conformal
   interval at 90% (MC dropout, fitted on the validation split). At 68.27% the
   conformal interval is member 0's calibrated ±1σ itself: physnn's σ scale is
   already that quantile of the validation pulls.
3. Per case and method: the fraction flagged out of the training domain
   (``in_domain`` 0) and by the feature distance alone, the bias, the mean half width
   of the interval and the fraction of events within it, against its nominal
   coverage.

Run: python examples/domain_shift.py [--out physnn-shift]   (about 5 minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import physnn
from physnn import demo

CASES = {"1-100 GeV, fresh": {}, "150-250 GeV": {"energy_min": 150.0, "energy_max": 250.0},
         "noise 50 MeV per cell": {"noise": 0.05}}


def shift_rows(out: Path, events: int = 10_000, mc_samples: int = 20, members: int = 5
               ) -> list[dict[str, float | str]]:
    """Train the ensemble once, then predict every case every way; one dict of figures per case and method."""
    out.mkdir(parents=True, exist_ok=True)
    showers = out / "showers.root"
    physnn.simulate("showers", showers, events=events, seed=1, overwrite=True)
    config = demo.energy_config(showers)
    config["train"]["ensemble"] = members
    physnn.train(config, out=out / "run", overwrite=True, progress=False)
    single = out / "run" / "members" / "member-0"
    rows = []
    for i, (name, settings) in enumerate(CASES.items()):
        path = out / f"case{i}.root"
        physnn.simulate("showers", path, events=events if i == 0 else events // 5, seed=50 + i, config=settings,
                        overwrite=True)
        methods = {f"MC dropout, T = {mc_samples}": (single, {"mc_samples": mc_samples}),
                   f"ensemble of {members}": (out / "run", {}),
                   "conformal 90% (MC dropout)": (single, {"mc_samples": mc_samples, "conformal": 0.9})}
        for method, (run, options) in methods.items():
            pred = physnn.predict(run, path, collect=True, **options)
            rows.append({"case": name, "method": method, **_figures(pred)})
    return rows


def _figures(pred: physnn.PredictionResult) -> dict[str, float]:
    """Flagged fraction, bias, mean error bar (or conformal half width) and the fraction within it."""
    a = pred.arrays
    res = a["energy_pred"] - a["energy"]
    if "energy_low" in a:
        half = (a["energy_high"] - a["energy_low"]) / 2
        inside = (a["energy"] >= a["energy_low"]) & (a["energy"] <= a["energy_high"])
    else:
        half, inside = a["energy_std"], np.abs(res) <= a["energy_std"]
    return {"events": pred.events, "flagged": pred.counts["out_of_domain"] / pred.events,
            "by_features": pred.counts.get("out_of_feature_domain", 0) / pred.events,
            "nominal": 0.9 if "energy_low" in a else 0.683,
            "bias": float(res.mean()), "sigma": float(half.mean()), "coverage": float(inside.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("physnn-shift"))
    args = parser.parse_args()
    table = Table(title="energy CNN trained on 1-100 GeV")
    for column in ("showers", "interval", "events", "flagged", "by features", "bias (GeV)", "half width (GeV)",
                   "coverage", "nominal"):
        table.add_column(column)
    for r in shift_rows(args.out):
        table.add_row(str(r["case"]), str(r["method"]), f"{r['events']:,}", f"{r['flagged']:.1%}",
                      f"{r['by_features']:.1%}", f"{r['bias']:+.1f}", f"{r['sigma']:.1f}", f"{r['coverage']:.3f}",
                      f"{r['nominal']:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
