"""The background-thread prefetch behind simulate, generate and streaming training."""

from __future__ import annotations

import threading
import time

import pytest

from physnn.prefetch import prefetch


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_items_in_order_and_produced_ahead():
    produced: list[int] = []

    def items():
        for i in range(20):
            produced.append(i)
            yield i

    it = prefetch(items(), depth=2, name="t-order")
    assert next(it) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 4 and time.monotonic() < deadline:  # 1 taken, 2 waiting, 1 blocked in put
        time.sleep(0.01)
    assert len(produced) == 4
    assert [0, *it] == list(range(20))
    assert "t-order" not in _threads()


def test_producer_error_is_raised_in_the_consumer_after_the_good_items():
    def items():
        yield 1
        yield 2
        raise ValueError("chunk 3 is broken")

    it = prefetch(items(), name="t-error")
    assert [next(it), next(it)] == [1, 2]
    with pytest.raises(ValueError, match="chunk 3 is broken"):
        next(it)
    assert "t-error" not in _threads()


def test_early_stop_stops_and_joins_the_producer():
    produced: list[int] = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    it = prefetch(endless(), depth=1, name="t-stop")
    assert next(it) == 0
    it.close()  # what a break or an exception in the consumer does
    assert "t-stop" not in _threads()
    n = len(produced)
    time.sleep(0.2)
    assert len(produced) == n <= 3
