"""Expressions of computed columns and derived features, evaluated over numpy columns.

Grammar (a subset of Python's expression syntax, parsed with :mod:`ast` and checked node by
node, never ``eval``-ed)::

    expr := number | name | expr (+ | - | * | /) expr | -expr | ( expr )
          | ln(expr) | exp(expr) | sqrt(expr) | abs(expr) | prev(name)

Nulls are NaN and propagate; ``x / 0``, ``ln(x <= 0)`` and ``sqrt(x < 0)`` give null, never an
infinity. ``prev(name)`` is ``name`` in the same entity's previous accepted event (log order);
it is allowed only where the caller says so (computed columns of a source).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from featurestore.errors import ConfigurationError

__all__ = ["Expression", "compile_expression"]

F64 = npt.NDArray[np.float64]

_FUNCTIONS: dict[str, Callable[[F64], F64]] = {
    "ln": lambda x: np.log(np.where(x > 0, x, np.nan)),
    "exp": np.exp,
    "sqrt": lambda x: np.sqrt(np.where(x >= 0, x, np.nan)),
    "abs": np.abs,
}


def _divide(a: F64, b: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F64 = np.where(b != 0, a / np.where(b != 0, b, 1.0), np.nan)
    return out


_OPERATORS: dict[type[ast.operator], Callable[[F64, F64], F64]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: _divide,
}

Columns = Mapping[str, F64]


@dataclass(frozen=True)
class Expression:
    """A checked expression: the names it reads, and how to evaluate it."""

    text: str
    names: frozenset[str]
    """Names read directly."""
    prev_names: frozenset[str]
    """Names read through ``prev()``."""
    _tree: ast.expr

    def evaluate(self, columns: Columns, prev: Columns | None = None, size: int = 0) -> F64:
        """The expression over equal-length columns (``prev``: the previous values)."""
        with np.errstate(over="ignore", invalid="ignore"):
            value = _eval(self._tree, columns, prev or {})
        if np.ndim(value) == 0:
            n = size or (len(next(iter(columns.values()))) if columns else 1)
            return np.full(n, float(value))
        return np.asarray(value, dtype=np.float64)


def _eval(node: ast.expr, columns: Columns, prev: Columns) -> F64 | float:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)
        return float(node.value)
    if isinstance(node, ast.Name):
        return columns[node.id]
    if isinstance(node, ast.UnaryOp):
        return -np.asarray(_eval(node.operand, columns, prev))  # only USub passes the check
    if isinstance(node, ast.BinOp):
        left = np.asarray(_eval(node.left, columns, prev), dtype=np.float64)
        right = np.asarray(_eval(node.right, columns, prev), dtype=np.float64)
        return _OPERATORS[type(node.op)](left, right)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    if node.func.id == "prev":
        arg = node.args[0]
        assert isinstance(arg, ast.Name)
        return prev[arg.id]
    return _FUNCTIONS[node.func.id](np.asarray(_eval(node.args[0], columns, prev), np.float64))


def compile_expression(text: str, *, where: str, allow_prev: bool = False) -> Expression:
    """Parse and check ``text``; ConfigurationError naming ``where`` when it is not valid."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ConfigurationError(f"{where}: cannot parse {text!r}: {exc.msg}") from exc
    names: set[str] = set()
    prev_names: set[str] = set()

    def check(node: ast.expr) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            if isinstance(node.value, bool):
                raise ConfigurationError(f"{where}: {text!r} uses a boolean")
            return
        if isinstance(node, ast.Name):
            names.add(node.id)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            check(node.operand)
            return
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            check(node.left)
            check(node.right)
            return
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and len(node.args) == 1
            and not node.keywords
        ):
            name = node.func.id
            if name == "prev":
                arg = node.args[0]
                if not allow_prev:
                    raise ConfigurationError(f"{where}: prev() is allowed in source columns only")
                if not isinstance(arg, ast.Name):
                    raise ConfigurationError(f"{where}: prev() takes a field name in {text!r}")
                prev_names.add(arg.id)
                return
            if name in _FUNCTIONS:
                check(node.args[0])
                return
            known = ", ".join([*_FUNCTIONS, "prev"])
            raise ConfigurationError(f"{where}: unknown function {name!r} (known: {known})")
        raise ConfigurationError(
            f"{where}: {ast.unparse(node)!r} is not allowed in {text!r} "
            "(numbers, names, + - * /, ln exp sqrt abs prev)"
        )

    check(tree)
    return Expression(text, frozenset(names), frozenset(prev_names), tree)
