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
        "x[0:2] > 1",
        "x['a'] > 1",
        "x[0].__class__",
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


def test_element_index_gives_nan_where_missing():
    from physnn.io.selection import Expression

    first = Expression("pt[0]").values(ARRAYS)
    np.testing.assert_array_equal(first, [1.0, np.nan, 2.0, 7.0])
    np.testing.assert_array_equal(Expression("pt[-1] - pt[0]").values(ARRAYS), [4.0, np.nan, 0.0, 2.0])
    assert Selection("pt[1] > 4").evaluate(ARRAYS).tolist() == [True, False, False, True]  # NaN compares False


@pytest.mark.parametrize(("expr", "needle"), [("pt[x]", "whole-number index"), ("pt[0.5]", "whole-number index"),
                                              ("x[0]", "one value per event")])
def test_bad_element_index(expr, needle):
    from physnn.io.selection import Expression

    with pytest.raises(ConfigError, match=needle):
        Expression(expr, "define 'z'").values(ARRAYS)


def test_define_derived_columns_as_targets_and_in_the_selection(write_root):
    import physnn

    pt = ak.Array([[40.0, 30.0], [20.0], [50.0, 45.0, 3.0], [10.0, 9.0]])
    eta = ak.Array([[0.1, -0.4], [1.0], [0.0, 1.2, 2.0], [2.0, -2.0]])
    phi = ak.Array([[0.0, 3.0], [1.0], [1.0, -2.0, 0.5], [0.3, 2.9]])
    path = write_root({"mu_pt": pt, "mu_eta": eta, "mu_phi": phi, "met": np.arange(4.0)})
    cfg = {"files": str(path), "split": {"val": 0, "test": 0},
           "define": {"mass": "sqrt(2*mu_pt[0]*mu_pt[1]*(cosh(mu_eta[0]-mu_eta[1]) - cos(mu_phi[0]-mu_phi[1])))",
                      "log_mass": "log(mass)"},
           "sequence": {"features": ["mu_pt", "mu_eta", "mu_phi"], "max_length": 3}, "targets": ["log_mass"]}
    data = physnn.load({**cfg, "selection": "num(mu_pt) >= 2"})
    p, e, f = (np.array([[40.0, 30.0], [50.0, 45.0], [10.0, 9.0]]), np.array([[0.1, -0.4], [0.0, 1.2], [2.0, -2.0]]),
               np.array([[0.0, 3.0], [1.0, -2.0], [0.3, 2.9]]))
    mass = np.sqrt(2 * p[:, 0] * p[:, 1] * (np.cosh(e[:, 0] - e[:, 1]) - np.cos(f[:, 0] - f[:, 1])))
    np.testing.assert_allclose(data.train.target[:, 0].numpy(), np.log(mass), rtol=1e-5)
    assert data.train.entry.tolist() == [0, 2, 3]
    high = physnn.load({**cfg, "selection": "mass > 60"})  # the selection uses a defined column
    assert high.train.entry.tolist() == [i for i, m in zip([0, 2, 3], mass, strict=True) if m > 60]
    with pytest.raises(DataError, match=r"defined column 'log_mass' has 1 NaN.*cut on num"):
        physnn.load(cfg)  # event 1 has one muon: mass is NaN


def test_define_config_errors():
    from physnn.config import DataConfig

    base = {"files": "x.root", "scalars": ["a"]}
    with pytest.raises(ValueError, match="not a valid column name"):
        DataConfig.model_validate({**base, "define": {"2x": "a * 2"}})
    with pytest.raises(ValueError, match="define 'y': only these functions"):
        DataConfig.model_validate({**base, "define": {"y": "open(a)"}})
