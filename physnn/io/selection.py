"""Safe expressions on awkward arrays: event selections ("cuts") and derived columns.

A selection is a short expression such as ``"energy > 10 && num(part_pt) >= 2"``;
a derived column (``define:`` in a data config, like RDataFrame's ``Define``)
is one such as ``"sqrt(2*Muon_pt[0]*Muon_pt[1]*(cosh(Muon_eta[0]-Muon_eta[1])
- cos(Muon_phi[0]-Muon_phi[1])))"``. Expressions are parsed with :mod:`ast` and
only a whitelist of nodes is evaluated: names of branches, numbers,
arithmetic, comparisons, boolean logic, a few numpy functions and ``x[i]``,
the i-th element of a jagged branch in each event (NaN in events that have
fewer elements: a comparison with NaN is false, so a selection drops them). A dotted name is one
branch: a member (``pos.x``, ``jets.fP.fX``) or a friend tree's branch (``w.weight``). Nothing is passed to
:func:`eval`, so an expression from a config file cannot execute code. ROOT's
``&&``, ``||`` and ``!`` are accepted as well as Python's ``and``, ``or`` and
``not``.

The functions: ``abs``, ``sqrt``, ``log``, ``log10``, ``exp``, the trigonometric and hyperbolic ones,
``atan2``/``arctan2``, ``hypot``; per event over a jagged branch's last axis ``num``, ``sum``, ``max``,
``min``, ``any``, ``all``; ``concat(a, b)`` joins jagged branches per event; ``total(x)`` sums every
value of an event over all its axes, e.g. the cell sum of a calorimeter image ``total(image)`` (the
classic energy estimate, usable as a target's ``baseline``) or of one layer, ``total(image[0])``.
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


def _total(x: Any) -> Any:
    """The sum over every cell of a regular image (or any nested list) per event: ``total(image)`` is an
    event's cell sum, ``total(image[0])`` the sum of its first layer."""
    import awkward as ak

    if isinstance(x, np.ndarray):
        return x.reshape(len(x), -1).sum(axis=1) if x.ndim > 1 else x
    if not isinstance(x, ak.Array):
        return x
    while x.ndim > 1:
        x = ak.sum(x, axis=-1)
    return ak.to_numpy(x)


def _concat(*arrays: Any) -> Any:
    """Join jagged branches per event (e.g. muons then electrons into one lepton list)."""
    import awkward as ak

    return ak.concatenate(arrays, axis=1)


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
    "concat": _concat,
    "total": _total,
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


def is_list(value: Any) -> bool:
    """True for an awkward array with a list per event."""
    import awkward as ak

    return isinstance(value, ak.Array) and value.ndim > 1


def dotted_name(node: ast.AST) -> str | None:
    """``pos.x`` or ``jets.fP.fX`` as one name (a member or a friend's branch); None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _root_to_python(expr: str) -> str:
    expr = expr.replace("&&", " and ").replace("||", " or ")
    return re.sub(r"!(?!=)", " not ", expr)


class Expression:
    """A parsed, safe expression of branches (see the module docs).

    Parameters
    ----------
    expression
        The expression, e.g. ``"sqrt(px**2 + py**2)"`` or ``"Muon_pt[0]"``.
    label
        How messages name it, e.g. ``"define 'mass'"``.

    Examples
    --------
    >>> sorted(Expression("hypot(px, py) / E").branches)
    ['E', 'px', 'py']
    """

    kind = "expression"

    def __init__(self, expression: str, label: str | None = None) -> None:
        self.expression = expression
        self.label = label or f"{self.kind} {expression!r}"
        try:
            tree = ast.parse(_root_to_python(expression).strip(), mode="eval")
        except SyntaxError as err:
            msg = f"{self.label}: not a valid expression ({err.msg})"
            raise ConfigError(msg) from None
        self._tree = tree.body
        self._where = ""
        self.branches: set[str] = set()
        self._check(self._tree)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            if node.id not in FUNCTIONS:
                self.branches.add(node.id)
            return
        if isinstance(node, ast.Attribute):
            name = dotted_name(node)
            if name is None or "__" in name:
                msg = f"{self.label}: only a branch name may have a dotted member, as in pos.x"
                raise ConfigError(msg)
            self.branches.add(name)
            return
        if isinstance(node, ast.Subscript):
            index = node.slice
            if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub):
                index = index.operand
            if not (isinstance(index, ast.Constant) and type(index.value) is int):
                msg = f"{self.label}: only a whole-number index is allowed, as in Muon_pt[0]"
                raise ConfigError(msg)
            self._check(node.value)
            return
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
                allowed = ", ".join(sorted(FUNCTIONS))
                msg = f"{self.label}: only these functions are allowed: {allowed}"
                raise ConfigError(msg)
            for arg in node.args:
                self._check(arg)
            return
        allowed_nodes = (ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Constant,
                         ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Invert)
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool)):
            msg = f"{self.label}: only numbers may appear as constants"
            raise ConfigError(msg)
        if isinstance(node, ast.BinOp) and type(node.op) not in _BINOPS:
            msg = f"{self.label}: operator {type(node.op).__name__} is not allowed"
            raise ConfigError(msg)
        if isinstance(node, ast.Compare) and any(type(op) not in _CMPOPS for op in node.ops):
            msg = f"{self.label}: only <, <=, >, >=, ==, != comparisons are allowed"
            raise ConfigError(msg)
        if not isinstance(node, allowed_nodes) and not isinstance(node, ast.cmpop | ast.operator):
            msg = f"{self.label}: {type(node).__name__} is not allowed in an expression"
            raise ConfigError(msg)
        for child in ast.iter_child_nodes(node):
            self._check(child)

    def values(self, arrays: Mapping[str, Any], *, where: str = "") -> Any:
        """Evaluate on a mapping of branch arrays (all of one length).

        Returns a numpy array (one value per event), an awkward array (a list
        per event) or a plain number.
        """
        self._where = where
        return self._eval(self._tree, arrays)

    def _eval(self, node: ast.AST, arrays: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name | ast.Attribute):
            name = dotted_name(node)
            if name in arrays:
                return arrays[name]
            msg = f"{self.label}: unknown branch {name!r}"
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
        if isinstance(node, ast.Subscript):
            return self._element(node, arrays)
        raise AssertionError(type(node))  # _check makes this unreachable

    def _element(self, node: ast.Subscript, arrays: Mapping[str, Any]) -> Any:
        import awkward as ak

        value = self._eval(node.value, arrays)
        index = ast.literal_eval(node.slice)
        if isinstance(value, np.ndarray) and value.ndim > 1:
            return value[:, index]
        if isinstance(value, np.ndarray) or not is_list(value):
            msg = f"{self.label}: {ast.unparse(node.value)}[{index}] indexes a branch with one value per event"
            raise ConfigError(msg)
        counts = ak.to_numpy(ak.num(value, axis=1))
        present = counts > (index if index >= 0 else -index - 1)
        if present.all():
            return value[:, index]
        picked = value[present][:, index]
        if is_list(picked):
            msg = f"{self.label}: {ast.unparse(node)} is a list per event, so events without it cannot be NaN"
            raise DataError(msg)
        out = np.full(len(counts), np.nan)
        out[present] = ak.to_numpy(picked)
        return out  # NaN where the element does not exist

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expression!r})"


class Selection(Expression):
    """A parsed, safe event selection: an expression with one boolean per event.

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

    kind = "selection"

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

        value = self.values(arrays, where=where)
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

