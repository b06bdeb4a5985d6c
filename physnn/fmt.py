"""How numbers read on the terminal: counts with thousands separators, figures with the same significant digits.

Every layer prints through these (training progress, evaluation tables, the
command line), so a loss, an AUC and a resolution read alike everywhere. It
imports nothing of physnn: any module may use it.
"""

from __future__ import annotations

import math


def num(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, fixed point (``0.80``, ``13.4``, ``1,250``); below 1e-4 in
    powers of ten (``3.12e-05``), not a row of zeros; ``n/a`` for None, NaN and infinities."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    if abs(value) < 1e-4:
        return f"{value:.{digits - 1}e}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:,.{decimals}f}"


def percent(fraction: float) -> str:
    """A fraction as a percentage with :func:`num`'s digits: ``0.0123`` is ``1.23%``."""
    return f"{num(100 * fraction)}%"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 epoch``, ``3 epochs``, ``1,250 events``: a count (thousands separated) with its noun in agreement."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"
