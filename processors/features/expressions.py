"""Expressions of computed columns and derived features, evaluated over numpy columns.

The grammar and its parser are the definitions' (:mod:`featurestore.definitions.expressions`);
this module gives the parsed tree its meaning over columns: nulls are NaN and propagate, and
``x / 0``, ``ln(x <= 0)`` and ``sqrt(x < 0)`` give null, never an infinity. ``prev(name)`` reads
the column of previous values the caller passes (the entity's previous accepted event).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from featurestore.definitions import expressions as ast
from featurestore.errors import ConfigurationError

__all__ = ["Expression", "compile_expression"]

F64 = npt.NDArray[np.float64]
Columns = Mapping[str, F64]


def _divide(a: F64, b: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F64 = np.where(b != 0, a / np.where(b != 0, b, 1.0), np.nan)
    return out


_FUNCTIONS: dict[str, Callable[[F64], F64]] = {
    "ln": lambda x: np.log(np.where(x > 0, x, np.nan)),
    "exp": np.exp,
    "sqrt": lambda x: np.sqrt(np.where(x >= 0, x, np.nan)),
    "abs": np.abs,
}
_OPERATORS: dict[str, Callable[[F64, F64], F64]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": _divide,
}


@dataclass(frozen=True)
class Expression:
    """A parsed expression: the names it reads, and how to evaluate it."""

    text: str
    names: frozenset[str]
    """Names read directly."""
    prev_names: frozenset[str]
    """Names read through ``prev()``."""
    tree: ast.Expr

    def evaluate(self, columns: Columns, prev: Columns | None = None, size: int = 0) -> F64:
        """The expression over equal-length columns (``prev``: the previous values)."""
        with np.errstate(over="ignore", invalid="ignore"):
            value = _eval(self.tree, columns, prev or {})
        if np.ndim(value) == 0:
            n = size or (len(next(iter(columns.values()))) if columns else 1)
            return np.full(n, float(value))
        return np.asarray(value, dtype=np.float64)


def _eval(node: ast.Expr, columns: Columns, prev: Columns) -> F64 | float:
    if isinstance(node, ast.Number):
        return float(node.value)
    if isinstance(node, ast.Name):
        return columns[node.name]
    if isinstance(node, ast.Prev):
        return prev[node.name]
    if isinstance(node, ast.Negate):
        return -np.asarray(_eval(node.operand, columns, prev))
    if isinstance(node, ast.BinaryOp):
        left = np.asarray(_eval(node.left, columns, prev), dtype=np.float64)
        right = np.asarray(_eval(node.right, columns, prev), dtype=np.float64)
        return _OPERATORS[node.op](left, right)
    return _FUNCTIONS[node.function](np.asarray(_eval(node.argument, columns, prev), np.float64))


def compile_expression(text: str, *, where: str, allow_prev: bool = False) -> Expression:
    """Parse ``text``; ConfigurationError naming ``where`` when it is not valid."""
    try:
        tree = ast.parse(text, allow_prev=allow_prev)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc
    prev = ast.prev_names(tree)
    direct = _direct_names(tree)
    return Expression(text, direct, prev, tree)


def _direct_names(node: ast.Expr) -> frozenset[str]:
    if isinstance(node, ast.Name):
        return frozenset((node.name,))
    if isinstance(node, ast.Negate):
        return _direct_names(node.operand)
    if isinstance(node, ast.BinaryOp):
        return _direct_names(node.left) | _direct_names(node.right)
    if isinstance(node, ast.Call):
        return _direct_names(node.argument)
    return frozenset()
