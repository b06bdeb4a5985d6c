"""An independent judge of fast simulation: gradient-boosted trees told to tell two shower files apart.

physnn compare's classifier test is a neural network, as the CaloChallenge's. This example asks a different
learner the same question on the same inputs (``physnn.evaluation.classifier_test.challenge_inputs``: the cells
over E_inc with log10 E_inc, and the high-level features), so a weakness of one learner cannot flatter a
generator: scikit-learn's HistGradientBoostingClassifier, trained on half of each particle type's showers (early
stopping on a tenth of that half), its AUC measured on the other half with a 68% bootstrap interval.

Run: python examples/gbdt_judge.py physnn-gan/reference.root physnn-gan/fastsim.root \\
        --floor physnn-gan/reference_twin.root
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from physnn.evaluation.classifier_test import challenge_inputs
from physnn.evaluation.conditions import particle_name
from physnn.evaluation.samples import ShowerSample, read_sample


def inputs(sample: ShowerSample, kind: str, events: int) -> tuple[np.ndarray, np.ndarray]:
    """The classifier inputs of the first ``events`` showers of a sample (:func:`read_sample`, its cells kept
    for at least ``events``), and their particle types."""
    x = challenge_inputs(kind, sample.features, sample.cells, sample.incident, tuple(sample.shape[-2:]))[:events]
    branch, types = sample.particle_types()
    return x, np.array([particle_name(branch, float(np.rint(t))) for t in types[:len(x)]])


def auc(reference: np.ndarray, candidate: np.ndarray, seed: int = 0) -> str:
    """AUC [68% bootstrap interval] of the trees on the held-out half."""
    x = np.concatenate([reference, candidate])
    y = np.r_[np.zeros(len(reference)), np.ones(len(candidate))]
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[: len(y) // 2], order[len(y) // 2:]
    trees = HistGradientBoostingClassifier(max_iter=500, early_stopping=True, validation_fraction=0.1,
                                           random_state=seed).fit(x[train], y[train])
    score, truth = trees.predict_proba(x[test])[:, 1], y[test]
    rng = np.random.default_rng(seed + 1)
    boot = [roc_auc_score(truth[i], score[i]) for i in (rng.integers(0, len(test), len(test)) for _ in range(200))]
    low, high = np.quantile(boot, [0.16, 0.84])
    return f"{roc_auc_score(truth, score):.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("candidate")
    parser.add_argument("--floor", help="a second reference sample: the same test on two simulated samples")
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    pairs = {"candidate": args.candidate, **({"floor": args.floor} if args.floor else {})}
    reference = read_sample(args.reference, max_cells=args.events)
    samples = {label: read_sample(path, max_cells=args.events) for label, path in pairs.items()}
    for kind, name in (("low", "cells"), ("high", "high-level features")):
        ref, ref_types = inputs(reference, kind, args.events)
        results = {label: inputs(sample, kind, args.events) for label, sample in samples.items()}
        print(f"gradient-boosted trees on {name}: AUC ({' | '.join(pairs)})")
        for group in ("all", *sorted(set(ref_types))):
            row = []
            for x, types in results.values():
                keep_ref = ref_types == group if group != "all" else slice(None)
                keep = types == group if group != "all" else slice(None)
                row.append(auc(ref[keep_ref], x[keep]))
            print(f"    {group:6s} {' | '.join(row)}")


if __name__ == "__main__":
    main()
