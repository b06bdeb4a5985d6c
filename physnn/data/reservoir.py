"""A seeded uniform sample from a stream of blocks (rows of an array, events of a chunk).

Priority sampling: every item gets a random key and the ``capacity`` items
with the smallest keys are kept. Every item of the stream has the same
chance to be in the sample, whatever the order of the files (a signal file
first, then a background file), and the same seed gives the same sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class Reservoir(Generic[T]):
    """At most ``capacity`` items of the blocks given to :meth:`add`, uniformly at random.

    Parameters
    ----------
    capacity
        The sample's size.
    rng
        The seeded generator of the keys.
    take
        ``take(block, indices)``: the items of a block at the given indices, in order.
    join
        ``join([block, block])``: two blocks as one.
    """

    def __init__(self, capacity: int, rng: np.random.Generator, take: Callable[[T, np.ndarray], T],
                 join: Callable[[list[T]], T]) -> None:
        self.capacity = capacity
        self.rng = rng
        self.take = take
        self.join = join
        self.keys: np.ndarray = np.zeros(0)
        self.sample: T | None = None

    def add(self, block: T, n: int) -> None:
        """Offer the ``n`` items of ``block``."""
        if self.capacity <= 0 or n == 0:
            return
        keys = self.rng.random(n)
        if len(self.keys) >= self.capacity:  # only items that beat the largest kept key can enter
            better = np.flatnonzero(keys < self.keys.max())
            if better.size == 0:
                return
            keys, block = keys[better], self.take(block, better)
        keys = np.concatenate([self.keys, keys])
        sample = block if self.sample is None else self.join([self.sample, block])
        if len(keys) > self.capacity:  # in stream order, so the sample keeps the files' order
            keep = np.sort(np.argpartition(keys, self.capacity - 1)[:self.capacity])
            keys, sample = keys[keep], self.take(sample, keep)
        self.keys, self.sample = keys, sample
