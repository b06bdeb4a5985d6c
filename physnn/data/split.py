"""Deterministic train/validation/test splits from entry numbers.

An event's split is a function of its global entry number and the seed only
(a SplitMix64 hash mapped to [0, 1)), so it is the same whether the data are
read at once or streamed in chunks of any size, and across machines.
"""

from __future__ import annotations

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
SPLITS = {"train": TRAIN, "val": VAL, "test": TEST}


def uniform_hash(entries: np.ndarray, seed: int) -> np.ndarray:
    """Map integers to floats in [0, 1) with the SplitMix64 mixer."""
    with np.errstate(over="ignore"):
        z = entries.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def assign_split(entries: np.ndarray, *, val: float, test: float, seed: int) -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) of each global entry number."""
    u = uniform_hash(np.asarray(entries), seed)
    out = np.full(u.shape, TRAIN, dtype=np.int8)
    out[u < val + test] = VAL
    out[u < test] = TEST
    return out
