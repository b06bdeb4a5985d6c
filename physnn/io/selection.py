"""Event selections ("cuts") evaluated safely on awkward arrays.

A selection is a short expression such as ``"energy > 10 && num(part_pt) >= 2"``.
It is parsed with :mod:`ast` and only a whitelist of nodes is evaluated: names
of branches, numbers, arithmetic, comparisons, boolean logic and a few numpy
functions. Nothing is passed to :func:`eval`, so a selection from a config file
cannot execute code. ROOT's ``&&``, ``||`` and ``!`` are accepted as well as
Python's ``and``, ``or`` and ``not``.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from physnn.errors import ConfigError, DataError


def _reduce(name: str) -> Callable[[Any], Any]:
    def fn(x: Any) -> Any:
        import awkward as ak

        return getattr(ak, name)(x, axis=-1)

    return fn


def _num(x: Any) -> Any:
    import awkward as ak

    return ak.num(x, axis=-1)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": np.abs,
    "sqrt": np.sqrt,
    "log": np.log,
    "log10": np.log10,
    "exp": np.exp,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "atan2": np.arctan2,
    "arctan2": np.arctan2,
    "hypot": np.hypot,
    "num": _num,
    "sum": _reduce("sum"),
    "max": _reduce("max"),
    "min": _reduce("min"),
    "any": _reduce("any"),
    "all": _reduce("all"),
}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _root_to_python(expr: str) -> str:
    expr = expr.replace("&&", " and ").replace("||", " or ")
    return re.sub(r"!(?!=)", " not ", expr)


class Selection:
    """A parsed, safe event selection.

    Parameters
    ----------
    expression
        The cut, e.g. ``"energy > 10 and pdgid != 22"``.

    Examples
    --------
    >>> sel = Selection("x > 1 && y < 2")
    >>> sorted(sel.branches)
    ['x', 'y']
    """

    def __init__(self, expression: str) -> None:
        self.expression = expression
        try:
            tree = ast.parse(_root_to_python(expression).strip(), mode="eval")
        except SyntaxError as err:
            msg = f"selection {expression!r}: not a valid expression ({err.msg})"
            raise ConfigError(msg) from None
        self._tree = tree.body
        self.branches: set[str] = set()
        self._check(self._tree)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            if node.id not in FUNCTIONS:
                self.branches.add(node.id)
            return
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
                allowed = ", ".join(sorted(FUNCTIONS))
                msg = f"selection {self.expression!r}: only these functions are allowed: {allowed}"
                raise ConfigError(msg)
            for arg in node.args:
                self._check(arg)
            return
        allowed_nodes = (ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Constant,
                         ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Invert)
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool)):
            msg = f"selection {self.expression!r}: only numbers may appear as constants"
            raise ConfigError(msg)
        if isinstance(node, ast.BinOp) and type(node.op) not in _BINOPS:
            msg = f"selection {self.expression!r}: operator {type(node.op).__name__} is not allowed"
            raise ConfigError(msg)
        if isinstance(node, ast.Compare) and any(type(op) not in _CMPOPS for op in node.ops):
            msg = f"selection {self.expression!r}: only <, <=, >, >=, ==, != comparisons are allowed"
            raise ConfigError(msg)
        if not isinstance(node, allowed_nodes) and not isinstance(node, ast.cmpop | ast.operator):
            msg = f"selection {self.expression!r}: {type(node).__name__} is not allowed in a selection"
            raise ConfigError(msg)
        for child in ast.iter_child_nodes(node):
            self._check(child)

    def evaluate(self, arrays: Mapping[str, Any], *, where: str = "") -> np.ndarray:
        """Evaluate the selection on a mapping of branch arrays.

        Parameters
        ----------
        arrays
            Branch name to (awkward or numpy) array, all of one length.
        where
            Text such as ``"data.root:events"`` to put in error messages.

        Returns
        -------
        numpy.ndarray
            A boolean mask with one entry per event.
        """
        import awkward as ak

        value = self._eval(self._tree, arrays)
        n = len(next(iter(arrays.values()))) if arrays else None
        if np.isscalar(value) or (isinstance(value, np.ndarray) and value.ndim == 0):
            return np.full(n or 0, bool(value))
        layout = ak.to_layout(value) if not isinstance(value, np.ndarray) else None
        if layout is not None and layout.purelist_depth > 1:
            prefix = f"{where}: " if where else ""
            msg = (f"{prefix}selection {self.expression!r} gives a list per event; "
                   "reduce jagged branches with any(), all(), num(), sum(), max() or min()")
            raise DataError(msg)
        return np.asarray(ak.to_numpy(value) if layout is not None else value, dtype=bool)

    def _eval(self, node: ast.AST, arrays: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in arrays:
                return arrays[node.id]
            msg = f"selection {self.expression!r}: unknown branch {node.id!r}"
            raise ConfigError(msg)
        if isinstance(node, ast.BoolOp):
            fn = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            values = [self._eval(v, arrays) for v in node.values]
            out = values[0]
            for v in values[1:]:
                out = fn(out, v)
            return out
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, arrays)
            if isinstance(node.op, (ast.Not, ast.Invert)):
                return np.logical_not(v)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, arrays), self._eval(node.right, arrays))
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, arrays)
            result = None
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comp, arrays)
                part = _CMPOPS[type(op)](left, right)
                result = part if result is None else np.logical_and(result, part)
                left = right
            return result
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return FUNCTIONS[node.func.id](*(self._eval(a, arrays) for a in node.args))
        raise AssertionError(type(node))  # _check makes this unreachable

    def __repr__(self) -> str:
        return f"Selection({self.expression!r})"
