"""Expressions of computed columns and derived features, evaluated over numpy columns.

The grammar and its parser are the definitions' (:mod:`featurestore.definitions.expressions`);
this module gives the parsed tree its meaning over columns: nulls are NaN and propagate, and
``x / 0``, ``ln(x <= 0)`` and ``sqrt(x < 0)`` give null, never an infinity. ``prev(name)`` reads
the column of previous values the caller passes (the entity's previous accepted event).
Comparisons give 1.0, 0.0 or NaN; ``and``, ``or``, ``not`` and ``when`` follow the three-valued
logic the grammar describes.

A text field is a column of codes, not of texts: :func:`lower_texts` replaces each text the
expression compares a field with by its index in that field's vocabulary (the sorted texts the
source's columns compare it with), and the decoder reads the field into the same indexes (-1 for
any other text, NaN for null). So ``name == 'cpu_load'`` is a comparison of numbers here.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from featurestore.definitions import expressions as ast
from featurestore.errors import ConfigurationError

__all__ = ["Expression", "compile_expression", "lower_texts"]

F64 = npt.NDArray[np.float64]
Columns = Mapping[str, F64]


def _divide(a: F64, b: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F64 = np.where(b != 0, a / np.where(b != 0, b, 1.0), np.nan)
    return out


def _not(x: F64) -> F64:
    out: F64 = np.where(np.isnan(x), np.nan, x == 0)
    return out


_FUNCTIONS: dict[str, Callable[[F64], F64]] = {
    "ln": lambda x: np.log(np.where(x > 0, x, np.nan)),
    "exp": np.exp,
    "sqrt": lambda x: np.sqrt(np.where(x >= 0, x, np.nan)),
    "abs": np.abs,
    "not": _not,
}


_COMPARISONS: dict[str, Callable[[F64, F64], npt.NDArray[np.bool_]]] = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


def _compare(op: str, a: F64, b: F64) -> F64:
    out: F64 = np.where(np.isnan(a) | np.isnan(b), np.nan, _COMPARISONS[op](a, b))
    return out


def _and(a: F64, b: F64) -> F64:
    """SQL's ``and`` of truth values (non-zero true, NaN unknown)."""
    decided = (a == 0) | (b == 0)  # NaN == 0 is False: an unknown side decides nothing
    out: F64 = np.where(decided, 0.0, np.where(np.isnan(a) | np.isnan(b), np.nan, 1.0))
    return out


def _or(a: F64, b: F64) -> F64:
    """SQL's ``or`` of truth values (non-zero true, NaN unknown)."""
    decided = (~np.isnan(a) & (a != 0)) | (~np.isnan(b) & (b != 0))
    out: F64 = np.where(decided, 1.0, np.where(np.isnan(a) | np.isnan(b), np.nan, 0.0))
    return out


def _comparison(op: str) -> Callable[[F64, F64], F64]:
    return lambda a, b: _compare(op, a, b)


_OPERATORS: dict[str, Callable[[F64, F64], F64]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": _divide,
    **{op: _comparison(op) for op in ast.COMPARISONS},
    "and": _and,
    "or": _or,
}


def _when(condition: F64, value: F64, otherwise: F64 | float) -> F64:
    holds = ~np.isnan(condition) & (condition != 0)
    out: F64 = np.where(holds, value, otherwise)
    return out


def _coalesce(values: Sequence[F64]) -> F64:
    out = values[0]
    for later in values[1:]:
        out = np.where(np.isnan(out), later, out)
    return out


@dataclass(frozen=True)
class Expression:
    """A parsed expression: the names it reads, and how to evaluate it."""

    text: str
    names: frozenset[str]
    """Names read directly."""
    prevs: frozenset[ast.Prev]
    """What it reads through ``prev()`` and ``prev_nonnull()``."""
    tree: ast.Expr

    def evaluate(self, columns: Columns, prev: Columns | None = None, size: int = 0) -> F64:
        """The expression over equal-length columns (``prev``: the previous values, by key)."""
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
        return prev[node.key]
    if isinstance(node, ast.Negate):
        return -np.asarray(_eval(node.operand, columns, prev))
    if isinstance(node, ast.BinaryOp):
        left = np.asarray(_eval(node.left, columns, prev), dtype=np.float64)
        right = np.asarray(_eval(node.right, columns, prev), dtype=np.float64)
        return _OPERATORS[node.op](left, right)
    if isinstance(node, ast.Call):
        argument = np.asarray(_eval(node.argument, columns, prev), np.float64)
        return _FUNCTIONS[node.function](argument)
    if isinstance(node, ast.When):
        condition = np.asarray(_eval(node.condition, columns, prev), dtype=np.float64)
        value = np.asarray(_eval(node.value, columns, prev), dtype=np.float64)
        if node.otherwise is None:
            return _when(condition, value, np.nan)
        otherwise = np.asarray(_eval(node.otherwise, columns, prev), dtype=np.float64)
        return _when(condition, value, otherwise)
    if isinstance(node, ast.Coalesce):
        return _coalesce(
            [np.asarray(_eval(a, columns, prev), dtype=np.float64) for a in node.arguments]
        )
    raise ConfigurationError(f"the text {node.value!r} was not lowered to its code")


def compile_expression(text: str, *, where: str, allow_prev: bool = False) -> Expression:
    """Parse ``text``; ConfigurationError naming ``where`` when it is not valid."""
    try:
        tree = ast.parse(text, allow_prev=allow_prev)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc
    return Expression(text, _direct_names(tree), ast.prevs(tree), tree)


def _direct_names(node: ast.Expr) -> frozenset[str]:
    if isinstance(node, ast.Name):
        return frozenset((node.name,))
    if isinstance(node, ast.Prev):
        return frozenset()
    return frozenset().union(*(_direct_names(child) for child in ast.children(node)))


def lower_texts(expression: Expression, vocabulary: Mapping[str, Sequence[str]]) -> Expression:
    """``expression`` with each text it compares a field with replaced by the text's code.

    ``vocabulary`` gives each text field's texts in code order (see the module doc).
    """

    def lower(node: ast.Expr) -> ast.Expr:
        if isinstance(node, ast.BinaryOp):
            left, right = node.left, node.right
            if isinstance(left, ast.Text) and isinstance(right, ast.Name):
                return ast.BinaryOp(node.op, _code(right.name, left.value), right)
            if isinstance(right, ast.Text) and isinstance(left, ast.Name):
                return ast.BinaryOp(node.op, left, _code(left.name, right.value))
            return ast.BinaryOp(node.op, lower(left), lower(right))
        if isinstance(node, ast.Negate):
            return ast.Negate(lower(node.operand))
        if isinstance(node, ast.Call):
            return ast.Call(node.function, lower(node.argument))
        if isinstance(node, ast.When):
            otherwise = None if node.otherwise is None else lower(node.otherwise)
            return ast.When(lower(node.condition), lower(node.value), otherwise)
        if isinstance(node, ast.Coalesce):
            return ast.Coalesce(tuple(lower(a) for a in node.arguments))
        return node

    def _code(name: str, text: str) -> ast.Number:
        return ast.Number(float(list(vocabulary[name]).index(text)))

    if not ast.text_names(expression.tree):
        return expression
    return replace(expression, tree=lower(expression.tree))
