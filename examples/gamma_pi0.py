"""Photon vs π0 -> two photons: a CNN against the experiments' shower-shape baseline, per energy bin.

The classic hard problem of an electromagnetic calorimeter: a π0 decays to two
photons whose opening angle is at least 2 m / E. At a few GeV they hit the
calorimeter several cells apart (two maxima); above ~30 GeV they are less
than a cell apart and the π0 looks like one, slightly wider, photon. The
experiments separate them with shower-shape variables (energy fractions,
widths, the ratio of the two highest maxima, ...) in a boosted decision
tree; this example trains the CNN of ``configs/train/gamma_pi0.yaml`` on the
same showers and compares the two on the test split, or with ``--test-events N``
on an independent sample of N showers, per bin of the true energy: ROC AUC and
the π0 rejection at 80% photon efficiency, each with a bootstrap 68% interval.

    python examples/gamma_pi0.py [--events 20000] [--test-events 0] [--out gamma_pi0] [--strips 4]

``--strips 4`` gives the calorimeter a first layer of η strips 4x finer than its
cells (``configs/simulate/strips.yaml``): the CNN reads ``image`` and
``strips`` (folded into channels) and the BDT gains the strip variables
(:func:`physnn.physics.photon_id.strip_variables`).

It writes ``OUT/gamma_pi0.root`` (showers), ``OUT/run`` (the CNN),
``OUT/predictions.root`` and ``OUT/photon_id.json`` (the table); with
``--test-events``, ``OUT/gamma_pi0_test.root`` and ``OUT/predictions_test.root``
instead of ``OUT/predictions.root``.
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
from physnn.evaluation.photon_id import ShowerShapeBDT, discrimination_by_bin, shower_shape_scores

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train" / "gamma_pi0.yaml"
EDGES = (1, 5, 10, 20, 40, 70, 100)
CNN, BASELINE = "CNN", "BDT (shapes)"


def compare(out: Path, *, events: int = 20000, test_events: int = 0, seed: int = 0,
            overrides: Sequence[str] = (), progress: bool = True, strips: int = 0,
            spectrum: str = "uniform") -> list[dict[str, Any]]:
    """Simulate, train, predict and compare; the rows of :func:`discrimination_by_bin`.

    ``strips``: the first layer's η strips per cell (0: none, the default geometry); ``spectrum``: the
    simulator's energy spectrum from 1 to 100 GeV (``log-uniform`` puts as many showers in 5-10 as in 50-100 GeV).
    ``test_events``: 0 judges both on the test split of the ``events`` showers; more simulates an independent
    test sample of that many showers (seed + 1), and the ``events`` showers are all for training and
    validation (``split.test=0``): a benchmark's intervals shrink with its test sample, its cost grows with
    its training sample.
    """
    check_settings(out, {"events": events, "test_events": test_events, "seed": seed, "strips": strips,
                         "spectrum": spectrum, "overrides": list(overrides)})
    branches = ["image", "strips"] if strips else ["image"]
    showers = simulate(out / "gamma_pi0.root", events, seed, strips, spectrum)
    split = ["data.split.test=0"] if test_events else []
    if not (out / "run" / "best.pt").exists():
        physnn.train(CONFIG, out=out / "run", progress=progress,
                     overrides=[f"data.files={showers}", f"data.images.branches={branches}", *split, *overrides])
    training = read_showers(showers, branches)
    if test_events:  # the baseline is fitted on every training shower (the CNN's training and validation splits)
        tests = simulate(out / "gamma_pi0_test.root", test_events, seed + 1, strips, spectrum)
        judged, (p_pi0, _) = read_showers(tests, branches), predict(out, tests, "predictions_test.root")
        bdt = ShowerShapeBDT.fit(training["image"], training["label"], seed=seed, strips=training.get("strips"))
        baseline = bdt.scores(judged["image"], judged.get("strips"))
    else:  # the baseline is fitted on the CNN's training split, both are judged on the test split
        p_pi0, split_of = predict(out, showers, "predictions.root")
        test = split_of == 2
        baseline = shower_shape_scores(training["image"], training["label"], split_of == 0, seed=seed,
                                       strips=training.get("strips"))[test]
        judged, p_pi0 = {k: v[test] for k, v in training.items()}, p_pi0[test]
    return discrimination_by_bin(judged["label"], {CNN: p_pi0, BASELINE: baseline}, judged["energy"], EDGES)


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Record the settings in ``out/settings.json``; refuse a folder whose showers and CNN (kept between runs) were
    made with other settings, which would judge one sample with the other's split or test file."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "settings.json"
    if stamp.exists() and json.loads(stamp.read_text()) != settings:
        msg = (f"{out} holds showers and a CNN made with other settings ({stamp.read_text().strip()}); "
               f"give another --out or remove it")
        raise SystemExit(msg)
    stamp.write_text(json.dumps(settings))


def predict(out: Path, showers: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """P(π0) of every shower from the CNN in ``out/run``, and its split, written to ``out/name``.

    The classes are {22: photon, 111: pi0}: ``prob[:, 1]`` is P(π0); the config's score is P(photon), its signal.
    """
    arrays = physnn.predict(out / "run", showers, out=out / name, collect=True, overwrite=True).arrays
    return arrays["prob"][:, 1], arrays["split"]


def simulate(path: Path, events: int, seed: int, strips: int, spectrum: str) -> Path:
    """Photons and π0s from 1 to 100 GeV in ``path`` (kept when it exists)."""
    geometry = [f"strips={{layer: 0, eta: {strips}}}"] if strips else []
    if not path.exists():
        physnn.simulate("showers", path, events=events, seed=seed,
                        overrides=["particles=['gamma', 'pi0']", "energy_min=1", "energy_max=100",
                                   f"spectrum={spectrum}", *geometry])
    return path


def read_showers(path: Path, branches: list[str]) -> dict[str, np.ndarray]:
    """The cells, the true energy and the label (1: π0) of every shower in ``path``."""
    cells = {k: np.asarray(v) for k, v in physnn.read(path, [*branches, "pdgid", "energy"]).items()}
    cells["label"] = (cells["pdgid"] == 111).astype(int)
    return cells


def table(rows: list[dict[str, Any]]) -> Table:
    """The rows as a rich table: per bin, each score's AUC and rejection with their intervals."""
    out = Table(title="photon vs π0, test showers: AUC and π0 rejection at 80% photon efficiency (68% intervals)")
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
    parser.add_argument("--events", type=int, default=20000, help="showers to train on")
    parser.add_argument("--test-events", type=int, default=0,
                        help="an independent test sample of this many showers (0: the test split)")
    parser.add_argument("--strips", type=int, default=0, help="η strips per cell in the first layer (0: none)")
    parser.add_argument("--spectrum", choices=["uniform", "log-uniform"], default="uniform",
                        help="the showers' energy spectrum from 1 to 100 GeV")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="a run-config override, e.g. train.epochs=2")
    args = parser.parse_args(argv)
    rows = compare(args.out, events=args.events, test_events=args.test_events, overrides=args.overrides,
                   strips=args.strips, spectrum=args.spectrum)
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

