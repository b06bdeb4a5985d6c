"""Photon vs π0 -> two photons: a CNN against the experiments' shower-shape baseline, per energy bin.

The classic hard problem of an electromagnetic calorimeter: a π0 decays to two
photons whose opening angle is at least 2 m / E. At a few GeV they hit the
calorimeter several cells apart (two maxima); above ~30 GeV they are less
than a cell apart and the π0 looks like one, slightly wider, photon. The
experiments separate them with shower-shape variables (energy fractions,
widths, the ratio of the two highest maxima, ...) in a boosted decision
tree; this example trains the CNN of ``configs/train/gamma_pi0.yaml`` on the
same showers and compares the two on the test split, per bin of the true
energy: ROC AUC and the π0 rejection at 80% photon efficiency, each with a
bootstrap 68% interval.

    python examples/gamma_pi0.py [--events 20000] [--out gamma_pi0] [--strips 4]

``--strips 4`` gives the calorimeter a first layer of η strips 4x finer than its
cells (``configs/simulate/strips.yaml``): the CNN reads ``image`` and
``strips`` (folded into channels) and the BDT gains the strip variables
(:func:`physnn.physics.photon_id.strip_variables`).

It writes ``OUT/gamma_pi0.root`` (showers), ``OUT/run`` (the CNN),
``OUT/predictions.root`` and ``OUT/photon_id.json`` (the table).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import physnn
from physnn.evaluation.photon_id import discrimination_by_bin, shower_shape_scores

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train" / "gamma_pi0.yaml"
EDGES = (1, 5, 10, 20, 40, 70, 100)
CNN, BASELINE = "CNN", "BDT (shapes)"


def compare(out: Path, *, events: int = 20000, seed: int = 0, overrides: Sequence[str] = (),
            progress: bool = True, strips: int = 0, spectrum: str = "uniform") -> list[dict[str, Any]]:
    """Simulate, train, predict and compare; the rows of :func:`discrimination_by_bin` (test split).

    ``strips``: the first layer's η strips per cell (0: none, the default geometry); ``spectrum``: the
    simulator's energy spectrum from 1 to 100 GeV (``log-uniform`` puts as many showers in 5-10 as in 50-100 GeV).
    """
    out.mkdir(parents=True, exist_ok=True)
    showers = out / "gamma_pi0.root"
    geometry = [f"strips={{layer: 0, eta: {strips}}}"] if strips else []
    if not showers.exists():
        physnn.simulate("showers", showers, events=events, seed=seed,
                        overrides=["particles=['gamma', 'pi0']", "energy_min=1", "energy_max=100",
                                   f"spectrum={spectrum}", *geometry])
    branches = ["image", "strips"] if strips else ["image"]
    if not (out / "run" / "best.pt").exists():
        physnn.train(CONFIG, out=out / "run", progress=progress,
                     overrides=[f"data.files={showers}", f"data.images.branches={branches}", *overrides])
    preds = physnn.predict(out / "run", showers, out=out / "predictions.root", collect=True, overwrite=True).arrays
    cells = {k: np.asarray(v) for k, v in physnn.read(showers, [*branches, "pdgid", "energy"]).items()}
    y = (cells["pdgid"] == 111).astype(int)
    # the baseline is fitted on the CNN's training split, both are judged on the test split
    baseline = shower_shape_scores(cells["image"], y, preds["split"] == 0, seed=seed, strips=cells.get("strips"))
    test = preds["split"] == 2
    p_pi0 = preds["prob"][:, 1]  # classes {22: photon, 111: pi0}: P(pi0); score is P(photon), the config's signal
    return discrimination_by_bin(y[test], {CNN: p_pi0[test], BASELINE: baseline[test]},
                                 cells["energy"][test], EDGES)


def table(rows: list[dict[str, Any]]) -> Table:
    """The rows as a rich table: per bin, each score's AUC and rejection with their intervals."""
    out = Table(title="photon vs π0, test split: AUC and π0 rejection at 80% photon efficiency (68% intervals)")
    for column in ("E (GeV)", "photons / π0", "classifier", "AUC", "rejection"):
        out.add_column(column)
    for row in rows:
        out.add_row(f"{row['low']:g}-{row['high']:g}", f"{row['n_signal']} / {row['n_background']}", row["score"],
                    f"{row['auc']:.3f} [{row['auc_low']:.3f}, {row['auc_high']:.3f}]",
                    f"{row['rejection']:.1f} [{row['rejection_low']:.1f}, {row['rejection_high']:.1f}]")
    return out


def pairs(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The rows of each energy bin as (CNN, baseline), lowest bin first."""
    by_bin = [{r["score"]: r for r in rows if r["low"] == low} for low in sorted({r["low"] for r in rows})]
    return [(b[CNN], b[BASELINE]) for b in by_bin]


def verdict(cnn: dict[str, Any], bdt: dict[str, Any]) -> str:
    """Whether the CNN's AUC interval lies above the baseline's (non-overlapping bands), in words."""
    if cnn["auc_low"] > bdt["auc_high"]:
        return "CNN better"
    if bdt["auc_low"] > cnn["auc_high"]:
        return "baseline better"
    return f"{'CNN' if cnn['auc'] > bdt['auc'] else 'baseline'} higher, the intervals overlap"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gamma_pi0"))
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--strips", type=int, default=0, help="η strips per cell in the first layer (0: none)")
    parser.add_argument("--spectrum", choices=["uniform", "log-uniform"], default="uniform",
                        help="the showers' energy spectrum from 1 to 100 GeV")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="a run-config override, e.g. train.epochs=2")
    args = parser.parse_args(argv)
    rows = compare(args.out, events=args.events, overrides=args.overrides, strips=args.strips,
                   spectrum=args.spectrum)
    console = Console()
    console.print(table(rows))
    for cnn, bdt in pairs(rows):
        console.print(f"{cnn['low']:g}-{cnn['high']:g} GeV: {verdict(cnn, bdt)} (AUC {cnn['auc']:.3f} vs "
                      f"{bdt['auc']:.3f})", highlight=False)
    finite = [{k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in r.items()} for r in rows]
    (args.out / "photon_id.json").write_text(json.dumps(finite, indent=1, allow_nan=False))  # inf: null
    console.print(f"table: {args.out / 'photon_id.json'}", highlight=False)


if __name__ == "__main__":
    main()

