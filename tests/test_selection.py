"""Safe selection expressions."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from physnn.errors import ConfigError, DataError
from physnn.io.selection import Selection

ARRAYS = {
    "x": np.array([0.0, 1.0, 2.0, 3.0]),
    "y": np.array([3.0, 2.0, 1.0, 0.0]),
    "pt": ak.Array([[1.0, 5.0], [], [2.0], [7.0, 8.0, 9.0]]),
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("x > 1", [False, False, True, True]),
        ("x > 0 && y > 0", [False, True, True, False]),
        ("x > 2 || y > 2", [True, False, False, True]),
        ("!(x > 1)", [True, True, False, False]),
        ("x != 1 and not y == 0", [True, False, True, False]),
        ("0 < x <= 2", [False, True, True, False]),
        ("sqrt(x**2 + y**2) > 2.5", [True, False, False, True]),
        ("num(pt) >= 2", [True, False, False, True]),
        ("any(pt > 6)", [False, False, False, True]),
        ("max(pt) > 4", [True, False, False, True]),
        ("(x > 0) & (y > 1)", [False, True, False, False]),
    ],
)
def test_expressions(expr, expected):
    sel = Selection(expr)
    np.testing.assert_array_equal(sel.evaluate(ARRAYS), expected)


def test_branches_are_collected():
    assert Selection("abs(x) > 1 && num(pt) > 0").branches == {"x", "pt"}


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('echo hacked')",
        "x.__class__",
        "open('f')",
        "[i for i in x]",
        "lambda: 1",
        "x if y else 1",
        "'text' == x",
        "x[0] > 1",
    ],
)
def test_code_is_never_executed(expr):
    with pytest.raises(ConfigError, match="selection"):
        Selection(expr)


def test_syntax_error_is_one_line():
    with pytest.raises(ConfigError, match="not a valid expression"):
        Selection("x >")


def test_jagged_result_is_rejected():
    with pytest.raises(DataError, match="list per event"):
        Selection("pt > 3").evaluate(ARRAYS, where="f.root:t")
