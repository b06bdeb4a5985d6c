"""Run an iterator one step ahead in a background thread.

Producing a chunk (simulating, generating on the model, reading and
decompressing a file) and consuming it (compressing it into a ROOT file,
training on it) both spend most of their time in code that releases the GIL
(numpy, torch, zlib/lz4/zstd), so overlapping them in two threads nearly
hides the faster of the two. The order of the items is unchanged, so seeded
results do not depend on the threading.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def prefetch(items: Iterable[T], *, depth: int = 1, name: str = "physnn-prefetch") -> Iterator[T]:
    """Yield ``items`` in order, produced by a background thread up to ``depth`` items ahead.

    Parameters
    ----------
    items
        Any iterable; it is iterated in the background thread only.
    depth
        How many finished items may wait for the consumer (memory: ``depth``
        + 1 items in flight besides the consumer's own).
    name
        The thread's name (seen in ``py-spy`` and debuggers).

    Notes
    -----
    An exception in the producer is raised in the consumer at the point of
    the item that failed. If the consumer stops early (``break``, an
    exception, ``close()``), the producer stops after its current item and
    the thread is joined before the generator returns, so nothing keeps
    running (or holding an open file) behind the caller's back.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as err:  # handed to the consumer, raised there
            put(err)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # empty the queue so that a blocked put sees the stop
            with contextlib.suppress(queue.Empty):
                q.get_nowait()
            thread.join(timeout=0.05)
