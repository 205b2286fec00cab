from __future__ import annotations

import pytest

from featurestore.definitions.expressions import MAX_DEPTH
from featurestore.definitions.expressions import MAX_NODES
from featurestore.definitions.expressions import BinaryOp
from featurestore.definitions.expressions import Call
from featurestore.definitions.expressions import Coalesce
from featurestore.definitions.expressions import Name
from featurestore.definitions.expressions import Negate
from featurestore.definitions.expressions import Number
from featurestore.definitions.expressions import Prev
from featurestore.definitions.expressions import Text
from featurestore.definitions.expressions import When
from featurestore.definitions.expressions import children
from featurestore.definitions.expressions import names
from featurestore.definitions.expressions import parse
from featurestore.definitions.expressions import prevs
from featurestore.definitions.expressions import text_names
from featurestore.errors import ConfigurationError


def test_precedence_associativity_and_unary_minus() -> None:
    assert parse("a + b * c") == BinaryOp("+", Name("a"), BinaryOp("*", Name("b"), Name("c")))
    assert parse("a - b - c") == BinaryOp("-", BinaryOp("-", Name("a"), Name("b")), Name("c"))
    assert parse("a / b / 2") == BinaryOp("/", BinaryOp("/", Name("a"), Name("b")), Number(2.0))
    assert parse("(a + b) * c") == BinaryOp("*", BinaryOp("+", Name("a"), Name("b")), Name("c"))
    assert parse("-a * -2") == BinaryOp("*", Negate(Name("a")), Negate(Number(2.0)))
    assert parse("--a") == Negate(Negate(Name("a")))
    assert parse(" close_1m/open_1m - 1 ") == BinaryOp(
        "-", BinaryOp("/", Name("close_1m"), Name("open_1m")), Number(1.0)
    )


@pytest.mark.parametrize(
    ("text", "value"), [("5", 5.0), ("0.5", 0.5), (".5", 0.5), ("1e-3", 0.001), ("2.5E2", 250.0)]
)
def test_numbers(text: str, value: float) -> None:
    assert parse(text) == Number(value)


def test_functions_and_prev() -> None:
    expr = parse("ln(price / prev(price))", allow_prev=True)
    assert expr == Call("ln", BinaryOp("/", Name("price"), Prev("price")))
    assert names(expr) == {"price"} and prevs(expr) == {Prev("price")}
    expr = parse("sqrt(abs(exp(x) - y))")
    assert names(expr) == {"x", "y"} and prevs(expr) == frozenset()
    assert names(parse("1 + 2")) == frozenset()


def test_prev_nonnull_is_a_prev_that_skips_nulls_kept_under_its_own_key() -> None:
    expr = parse("cpu - prev_nonnull(cpu) + prev(cpu)", allow_prev=True)
    assert expr == BinaryOp(
        "+",
        BinaryOp("-", Name("cpu"), Prev("cpu", skip_nulls=True)),
        Prev("cpu"),
    )
    assert names(expr) == {"cpu"}
    assert {p.key for p in prevs(expr)} == {"cpu", "prev_nonnull(cpu)"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a number, a name or '\\(', found the end at column 1"),
        ("a +", "found the end at column 4"),
        ("a b", "expected an operator, found 'b' at column 3"),
        ("(a + b", "expected '\\)', found the end"),
        ("a + )", "found '\\)' at column 5"),
        ("a % b", "unexpected '%' at column 3"),
        ("log(a)", "expected an operator, found '\\('"),
        ("ln a", "'ln' at column 1 is a function .*, not a name: call it as ln"),
        ("ln + 1", "'ln' at column 1 is a function"),
        ("prev(price)", "prev\\(\\) is allowed in source columns only"),
        ("prev_nonnull(price)", "prev_nonnull\\(\\) is allowed in source columns only"),
        ("prev_nonnull", "'prev_nonnull' at column 1 is a function"),
        ("a ** 2", "found '\\*' at column 4"),
        ("1e", "expected an operator, found 'e'"),
        ("a < b < c", "comparisons do not chain: join them with 'and', found '<' at column 7"),
        ("a == b == c", "comparisons do not chain"),
        ("name < 'cpu'", "a text is compared with == or != to a name, found \"'cpu'\""),
        ("'cpu' < name", "expected '==' or '!=' after a text, found '<'"),
        ("(a + b) == 'x'", "a text is compared with == or != to a name"),
        ("'x' == 'y'", "a text is compared with == or != to a name, found \"'y'\""),
        ("'x' == name == 'y'", "comparisons do not chain"),
        ("'x'", "expected '==' or '!=' after a text, found the end"),
        ("a + 'x'", "a text is compared with == or != to a name, found \"'x'\""),
        ("when(a, 'x')", "expected '==' or '!=' after a text, found '\\)'"),
        ("name == 'it\\'s'", "unexpected"),
        ("name == 'open", 'unexpected "\'" at column 9'),
        ("when(a)", "expected ',', found '\\)'"),
        ("when(a, b, c, d)", "expected '\\)', found ','"),
        ("coalesce(a)", "coalesce\\(\\) takes two values or more: expected ',', found '\\)'"),
        ("coalesce", "'coalesce' at column 1 is a function"),
        ("coalesce(a, 'x')", "expected '==' or '!=' after a text"),
        ("when", "'when' at column 1 is a function"),
        ("a and", "found the end"),
        ("and", "expected a number, a name or '\\(', found 'and'"),
        ("not", "found the end"),
        ("a = b", "unexpected '=' at column 3"),
    ],
)
def test_what_does_not_parse_says_where(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse(text)


def test_prev_takes_a_name_only() -> None:
    with pytest.raises(ConfigurationError, match="prev\\(\\) takes a name, found '\\('"):
        parse("prev((price))", allow_prev=True)
    with pytest.raises(ConfigurationError, match="prev\\(\\) takes a name, found 'ln'"):
        parse("prev(ln)", allow_prev=True)
    with pytest.raises(ConfigurationError, match="prev\\(\\) takes a name, found 'and'"):
        parse("prev(and)", allow_prev=True)
    with pytest.raises(ConfigurationError, match="prev\\(\\) takes a name, found '1'"):
        parse("prev(1)", allow_prev=True)
    with pytest.raises(ConfigurationError, match="expected '\\)'"):
        parse("prev(a + b)", allow_prev=True)
    with pytest.raises(ConfigurationError, match="prev_nonnull\\(\\) takes a name, found '2'"):
        parse("prev_nonnull(2)", allow_prev=True)
    with pytest.raises(ConfigurationError, match="takes a name, found 'prev'"):
        parse("prev_nonnull(prev)", allow_prev=True)


def test_a_literal_is_a_finite_number() -> None:
    with pytest.raises(ConfigurationError, match=r"expected a finite number, found '1e999'"):
        parse("n * 1e999")
    assert parse("1e308") == Number(1e308)


def test_a_name_that_is_a_function_says_so() -> None:
    with pytest.raises(ConfigurationError, match=r"'exp' at column 1 is a function .*not a name"):
        parse("exp * 2")


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1),
        "(" * 250 + "a" + ")" * 250,
        "-" * (MAX_DEPTH + 1) + "a",
        "-" * 990 + "a",
        "abs(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1),
    ],
)
def test_nesting_is_bounded(text: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"nested deeper than {MAX_DEPTH} levels"):
        parse(text)


@pytest.mark.parametrize("terms", [MAX_NODES // 2 + 1, 510, 1000, 5000])
def test_size_is_bounded(terms: int) -> None:
    with pytest.raises(ConfigurationError, match=rf"more than {MAX_NODES} numbers, names"):
        parse(" + ".join(["price"] * terms))


def test_the_largest_expressions_hash_and_walk() -> None:
    """What parses is small enough for every recursive walk: hashing, names(), evaluation."""
    deep = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    nested = "-" * MAX_DEPTH + "a"
    long = " + ".join(["a"] * (MAX_NODES // 2 - 1) + ["prev(a)"])  # MAX_NODES - 1 nodes
    for text in (deep, nested, long):
        tree = parse(text, allow_prev=True)
        assert hash(tree) == hash(parse(text, allow_prev=True))
        assert names(tree) == {"a"}


def test_comparisons_bind_looser_than_arithmetic_and_logic_looser_still() -> None:
    assert parse("a + 1 > b * 2") == BinaryOp(
        ">", BinaryOp("+", Name("a"), Number(1.0)), BinaryOp("*", Name("b"), Number(2.0))
    )
    assert parse("a < 1 or b >= 2 and not c != 3") == BinaryOp(
        "or",
        BinaryOp("<", Name("a"), Number(1.0)),
        BinaryOp(
            "and",
            BinaryOp(">=", Name("b"), Number(2.0)),
            Call("not", BinaryOp("!=", Name("c"), Number(3.0))),
        ),
    )
    assert parse("(a or b) and c") == BinaryOp(
        "and", BinaryOp("or", Name("a"), Name("b")), Name("c")
    )
    assert parse("a <= b") == BinaryOp("<=", Name("a"), Name("b"))
    assert parse("a == -1") == BinaryOp("==", Name("a"), Negate(Number(1.0)))


def test_when_and_texts() -> None:
    expr = parse("when(name == 'cpu_load' and host != \"db-1\", value * 100)")
    assert expr == When(
        BinaryOp(
            "and",
            BinaryOp("==", Name("name"), Text("cpu_load")),
            BinaryOp("!=", Name("host"), Text("db-1")),
        ),
        BinaryOp("*", Name("value"), Number(100.0)),
    )
    assert names(expr) == {"name", "host", "value"}
    assert text_names(expr) == {"name": {"cpu_load"}, "host": {"db-1"}}
    assert parse("'cpu' == name") == BinaryOp("==", Text("cpu"), Name("name"))
    assert parse("name == ''") == BinaryOp("==", Name("name"), Text(""))
    assert text_names(parse("when(n == 'a', v) + when(n == 'b', v) + when('a' != n, 1)")) == {
        "n": {"a", "b"}
    }
    assert text_names(parse("a == b")) == {}


def test_when_otherwise_and_coalesce() -> None:
    expr = parse(
        "when(side == 'B', size, -size) + coalesce(prev_nonnull(x), x, 0)", allow_prev=True
    )
    assert expr == BinaryOp(
        "+",
        When(
            BinaryOp("==", Name("side"), Text("B")),
            Name("size"),
            Negate(Name("size")),
        ),
        Coalesce((Prev("x", skip_nulls=True), Name("x"), Number(0.0))),
    )
    assert names(expr) == {"side", "size", "x"} and text_names(expr) == {"side": {"B"}}
    assert {p.key for p in prevs(expr)} == {"prev_nonnull(x)"}
    assert children(parse("when(a, b, c)")) == (Name("a"), Name("b"), Name("c"))
    assert children(parse("when(a, b)")) == (Name("a"), Name("b"))


def test_not_nests_within_the_bound() -> None:
    with pytest.raises(ConfigurationError, match=rf"nested deeper than {MAX_DEPTH} levels"):
        parse("not " * (MAX_DEPTH + 1) + "a")
    assert parse("not " * MAX_DEPTH + "a") is not None
