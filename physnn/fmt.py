"""How numbers read on the terminal: counts with thousands separators, figures with the same significant digits.

Every layer prints through these (training progress, evaluation tables, the
command line), so a loss, an AUC and a resolution read alike everywhere. It
imports nothing of physnn: any module may use it.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def _decimals(value: float, digits: int) -> int:
    """Decimals that give ``value`` (0.0001 <= |value|) ``digits`` significant digits, more when that would round a
    magnitude just below 1 up to 1."""
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    gap = 1 - abs(value)
    if 0 < gap <= 0.5 * 10.0**-decimals:  # would print as 1
        decimals = -math.floor(round(math.log10(gap), 9))  # round: 1 - 0.99999 is 9.99...e-06 in floating point
    return decimals


def num(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, fixed point (``0.80``, ``13.4``, ``1,250``); below 1e-4 in
    powers of ten (``3.12e-05``), not a row of zeros; ``n/a`` for None, NaN and infinities.

    A magnitude just below 1 is never rounded up to 1: ``0.9996`` (an AUC) keeps the decimals that show its
    distance from 1 instead of reading ``1.000``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    if abs(value) < 1e-4:
        return f"{value:.{digits - 1}e}"
    return f"{value:,.{_decimals(value, digits)}f}"


def with_interval(value: float, low: float, high: float, digits: int = 3) -> tuple[str, str, str]:
    """A figure and the edges of its interval with the same decimals (those :func:`num` needs for the most exacting
    of the three): ``0.9996``, ``0.9992``, ``0.9999``, not ``0.9996``, ``0.999``, ``0.99991``."""
    if not all(math.isfinite(v) and abs(v) >= 1e-4 for v in (value, low, high)):
        return num(value, digits), num(low, digits), num(high, digits)
    decimals = max(_decimals(v, digits) for v in (value, low, high))
    return tuple(f"{v:,.{decimals}f}" for v in (value, low, high))  # type: ignore[return-value]


def error_decimals(error: float) -> int:
    """The decimal place the PDG rounding rule gives an uncertainty (negative: tens, hundreds): the three leading
    digits of ``error`` from 100 to 354 keep two significant digits, 355 to 949 one, and 950 to 999 round up to
    1000 with two (Review of Particle Physics, Introduction, 5.3).

    >>> error_decimals(0.05), error_decimals(0.0123), error_decimals(0.0356), error_decimals(0.097), error_decimals(96)
    (2, 3, 2, 2, -1)
    """
    exponent = math.floor(math.log10(abs(error)))
    leading = round(abs(error) / 10.0 ** (exponent - 2))  # 100 .. 1000
    if leading >= 1000:
        exponent, leading = exponent + 1, 100
    # 100-354: two digits; 355-949: one; 950-999: 1000 with two digits, the same decimal place as one digit
    return 1 - exponent if leading <= 354 else -exponent


def with_error(value: float, error: float | None) -> str:
    """``value ± error`` by the PDG rule: the error to one or two significant digits (:func:`error_decimals`), the
    value to the same decimal place; in powers of ten when both are below 1e-4. Without a finite error above
    float precision (relative to the value): the value as :func:`num` gives it, alone.

    >>> with_error(0.003, 0.05)
    '0.00 ± 0.05'
    >>> with_error(0.0031, 0.0123)
    '0.003 ± 0.012'
    >>> with_error(5.678, 0.0356), with_error(1234.5, 96), with_error(-0.001, 0.05), with_error(12.34, 0.95)
    ('5.68 ± 0.04', '1,230 ± 100', '0.00 ± 0.05', '12.3 ± 1.0')
    >>> with_error(2.5e-7, 3.1e-8), with_error(0.8, None), with_error(1.0, 1e-5), with_error(1.0, 1e-17)
    ('(2.50 ± 0.31)e-07', '0.800', '1.000000 ± 0.000010', '1.00')
    """
    if error is None or not (math.isfinite(error) and math.isfinite(value)) or error <= max(1e-12 * abs(value), 0):
        return num(value)
    biggest = max(abs(value), error)
    if biggest < 1e-4:  # in powers of ten, those of the larger of the two
        power = math.floor(math.log10(biggest))
        return f"({_fixed(value / 10.0**power, error / 10.0**power)})e{power:+03d}"
    return _fixed(value, error)


def _fixed(value: float, error: float) -> str:
    """``value ± error`` in fixed notation, both to the decimal place of the error's significant digits."""
    decimals = error_decimals(error)
    step = Decimal(1).scaleb(-decimals)  # rounded half up from the shortest repr: 0.95 is 1.0, not 0.9
    shown, err = (float(Decimal(repr(float(v))).quantize(step, rounding=ROUND_HALF_UP)) + 0.0 for v in (value, error))
    places = max(decimals, 0)  # + 0.0 above: no "-0.00"
    return f"{shown:,.{places}f} ± {err:,.{places}f}"


def percent(fraction: float) -> str:
    """A fraction as a percentage with :func:`num`'s digits: ``0.0123`` is ``1.23%``."""
    return f"{num(100 * fraction)}%"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 epoch``, ``3 epochs``, ``1,250 events``: a count (thousands separated) with its noun in agreement."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


#: Particles by PDG id: the name the command line and the simulator use (``pi+``) and the symbol for plots
#: (``π+``, with a true minus sign).
PARTICLES: dict[int, tuple[str, str]] = {
    11: ("e-", "e\N{MINUS SIGN}"), -11: ("e+", "e+"), 13: ("mu-", "μ\N{MINUS SIGN}"), -13: ("mu+", "μ+"),
    22: ("gamma", "\N{GREEK SMALL LETTER GAMMA}"), 111: ("pi0", "π0"), 211: ("pi+", "π+"),
    -211: ("pi-", "π\N{MINUS SIGN}"), 130: ("K0L", "K0L"), 310: ("K0S", "K0S"), 321: ("K+", "K+"),
    -321: ("K-", "K\N{MINUS SIGN}"), 2212: ("p", "p"), -2212: ("pbar", "p̄"), 2112: ("n", "n")}


def particle(pdgid: int, *, symbol: bool = False) -> str:
    """``e-`` (or the symbol ``e\N{MINUS SIGN}``) for PDG id 11; ``pdgid 1000`` for an id without a name."""
    names = PARTICLES.get(int(pdgid))
    return f"pdgid {int(pdgid)}" if names is None else names[symbol]


def particle_label(value: Any) -> str:
    """The symbol of a particle (:func:`particle` with ``symbol``: a true minus sign) for a PDG id given as a number
    or as text (``11``, ``"-211"``; an unnamed id as ``pdgid 1000``), any other value as text."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return str(value)
    return particle(number, symbol=True)
