"""Comparisons, ``and``/``or``/``not``, ``when`` and ``coalesce`` over numpy columns, against the
oracle.

Every combination of a few values (null among them) goes through the engine's vectorised
evaluation and the oracle's scalar one; the truth table of SQL's three-valued logic is pinned
too, so that both cannot share a misreading. Texts are lowered to the codes the decoder gives.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from featurestore.definitions.expressions import parse
from processors.features.expressions import compile_expression
from processors.features.expressions import lower_texts
from tests.unit.processors.oracle import evaluate

VALUES = (0.0, 1.0, 2.5, -1.0, math.nan)
EXPRESSIONS = (
    "a == b",
    "a != b",
    "a < b",
    "a <= b",
    "a > b",
    "a >= b",
    "a and b",
    "a or b",
    "not a",
    "not (a and b) or a",
    "when(a, b)",
    "when(a > 0 and b != 1, a * b)",
    "when(not a, b) + 1",
    "(a < b) * 10 + (a == b)",
    "when(a, b, -1)",
    "when(a > b, a, b)",
    "when(a < 0, b, a * 2) + 1",
    "coalesce(a, b)",
    "coalesce(a, b, 7)",
    "when(coalesce(a, 0) > 0, b, coalesce(b, a))",
)


def _same(got: float, want: float | None) -> bool:
    return math.isnan(got) if want is None else got == want


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_the_engine_evaluates_as_the_oracle(text: str) -> None:
    pairs = list(itertools.product(VALUES, repeat=2))
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    got = compile_expression(text, where="test").evaluate({"a": a, "b": b})
    tree = parse(text)
    for i, (x, y) in enumerate(pairs):
        fields = {"a": None if math.isnan(x) else x, "b": None if math.isnan(y) else y}
        want = evaluate(tree, fields)
        assert _same(float(got[i]), want), f"{text} at a={x}, b={y}: {got[i]} != {want}"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("0 and a", 0.0),
        ("a and 0", 0.0),
        ("1 and a", None),
        ("1 or a", 1.0),
        ("a or 2", 1.0),
        ("0 or a", None),
        ("not a", None),
        ("a == a", None),
        ("when(a, 1)", None),
        ("when(0, 1)", None),
        ("when(-2, 7)", 7.0),
        ("when(a, 1, 2)", 2.0),
        ("when(0, 1, a)", None),
        ("when(a == a, 1, 2)", 2.0),
        ("coalesce(a, 3)", 3.0),
        ("coalesce(a, a)", None),
        ("coalesce(4, a)", 4.0),
        ("not 0", 1.0),
        ("not 3", 0.0),
        ("3 > 2", 1.0),
    ],
)
def test_null_follows_three_valued_logic(text: str, want: float | None) -> None:
    """``a`` is null throughout."""
    got = compile_expression(text, where="test").evaluate({"a": np.array([np.nan])}, size=1)
    assert _same(float(got[0]), want)
    assert evaluate(parse(text), {"a": None}) == want


def test_texts_compare_as_codes_of_the_field_s_vocabulary() -> None:
    vocabulary = {"name": ("cpu", "mem")}  # codes 0 and 1; another text -1; null NaN
    name = np.array([0.0, 1.0, -1.0, np.nan])
    texts = ["cpu", "mem", "disk", None]
    value = np.array([10.0, 20.0, 30.0, 40.0])
    for text in (
        "when(name == 'cpu', value)",
        "when('mem' != name, value)",
        "name == 'mem'",
        "when(name == 'cpu', value, name == 'mem')",
        "coalesce(when(name == 'cpu', value), when(name == 'mem', -value))",
    ):
        lowered = lower_texts(compile_expression(text, where="test"), vocabulary)
        got = lowered.evaluate({"name": name, "value": value})
        for i in range(4):
            want = evaluate(parse(text), {"name": texts[i], "value": float(value[i])})
            assert _same(float(got[i]), want), f"{text} at {texts[i]!r}"
