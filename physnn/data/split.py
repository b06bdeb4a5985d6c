"""Deterministic train/validation/test splits: a property of the event.

An event's split is a hash of the seed, the identity of its file (the ROOT
file's UUID, written in its header by ROOT or uproot and kept by copies and
renames, plus the tree's name) and its entry number *within that file*. So
it is the same however the files are listed, globbed, subset or chunked, in
memory, streamed or under torchrun, and across machines. Where physnn cannot
know an event's split (a file that was not among the training files), the
split is :data:`UNKNOWN` (-1).
"""

from __future__ import annotations

import hashlib

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
#: the split of an event whose file was not among the training files
UNKNOWN = -1
SPLITS = {"train": TRAIN, "val": VAL, "test": TEST}
_GOLDEN = 0x9E3779B97F4A7C15
_MASK = 2**64 - 1


def file_key(file_id: str) -> int:
    """A 64-bit integer from a file identity (``"<uuid>/<tree>"``)."""
    return int.from_bytes(hashlib.blake2b(file_id.encode(), digest_size=8).digest(), "little")


def _mix(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser (uint64 in, uint64 out)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform_hash(entries: np.ndarray, seed: int, key: int = 0) -> np.ndarray:
    """Map integers to floats in [0, 1): SplitMix64 of ``entries`` offset by a mix of ``seed`` and ``key``."""
    base = int(_mix(np.array([(key + seed * _GOLDEN) & _MASK], dtype=np.uint64))[0])
    with np.errstate(over="ignore"):
        z = _mix(entries.astype(np.uint64) + np.uint64(base))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def assign_split(entries: np.ndarray, *, val: float, test: float, seed: int, file_id: str = "") -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) of each event, from its entry number in its file and the file's id."""
    u = uniform_hash(np.asarray(entries), seed, file_key(file_id))
    out = np.full(u.shape, TRAIN, dtype=np.int8)
    out[u < val + test] = VAL
    out[u < test] = TEST
    return out


def held_out(split: np.ndarray) -> np.ndarray:
    """Events never seen in training: the test split and events of other files (:data:`UNKNOWN`)."""
    split = np.asarray(split)
    return (split == TEST) | (split == UNKNOWN)


def describe_held_out(split: np.ndarray) -> str:
    """``"test split"``, ``"files not used in training"``, or both with their counts, for the
    :func:`held_out` events of ``split``."""
    split = np.asarray(split)
    test, other = int(np.count_nonzero(split == TEST)), int(np.count_nonzero(split == UNKNOWN))
    if test and other:
        return f"test split ({test:,}) + files not used in training ({other:,})"
    return "test split" if test else "files not used in training" if other else "no held-out event"
