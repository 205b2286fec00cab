"""The expressions of computed source columns and derived features, parsed into a small AST.

Grammar (whitespace between tokens is ignored)::

    expr    := either
    either  := both ("or" both)*
    both    := negated ("and" negated)*
    negated := "not" negated | compare
    compare := sum (CMP sum)?               CMP := "==" | "!=" | "<" | "<=" | ">" | ">="
    sum     := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | NAME | FUNC "(" expr ")" | "when" "(" expr "," expr ("," expr)? ")"
             | "coalesce" "(" expr ("," expr)+ ")" | PREV "(" NAME ")" | "(" expr ")"
             | NAME CMP TEXT | TEXT CMP NAME
    PREV    := "prev" | "prev_nonnull"
    FUNC    := "ln" | "exp" | "sqrt" | "abs"
    NAME    := [A-Za-z_][A-Za-z0-9_]*  (not a function or a keyword)
    NUMBER  := digits with an optional fraction and exponent: 5, 0.5, .5, 1e-3
    TEXT    := 'cpu_load' or "cpu_load" (no quote of its own kind and no backslash inside)

``+ - * /`` are left-associative, ``*`` and ``/`` bind tighter than ``+`` and ``-``, unary minus
tighter than both; a comparison binds looser than arithmetic and does not chain (``a < b < c``
is refused); ``not`` binds tighter than ``and``, ``and`` tighter than ``or``. ``prev(name)`` is
``name`` in the same entity's previous event (log order); ``prev_nonnull(name)`` is ``name`` in
the entity's latest earlier event where it was not null (SQL's ``LAG(name) IGNORE NULLS``): where
metrics interleave, ``prev_nonnull(cpu_load)`` is the previous CPU reading, whatever came between.
Both are allowed only where the caller says so (:func:`parse` with ``allow_prev=True``: computed
columns of a source), never in derived features. A text literal stands only as one side of
``==`` or ``!=`` whose other side is a name (a text field of the event: ``name == 'cpu_load'``).

What the AST means (the processors evaluate it; this module only parses): values are floats,
null propagates, and ``x / 0``, ``ln`` of a non-positive value and ``sqrt`` of a negative value
are null, never an infinity or an error; so a literal must be a finite number (``1e999`` is
refused). A comparison is 1 when it holds, 0 when not, null when a side is null. ``and``, ``or``
and ``not`` take a non-zero value as true and follow SQL's three-valued logic (``0 and null``
is 0, ``1 or null`` is 1, any other null gives null). ``when(condition, value)`` is ``value``
where the condition is true and null elsewhere (Spark's ``when`` without ``otherwise``):
aggregations skip nulls, so a column ``when(name == 'cpu_load', value)`` lets a view aggregate
one metric of a stream that carries several. ``when(condition, value, otherwise)`` is
``otherwise`` where the condition is false or null (Spark's ``when(...).otherwise(...)``, SQL's
``CASE WHEN ... ELSE``), and ``coalesce(a, b, ...)`` the first of its values that is not null
(SQL's ``COALESCE``).

An expression is bounded so that every stage that walks its tree recursively (the parser,
hashing the compiled plans, evaluation) stays far from Python's recursion limit: at most
:data:`MAX_NODES` nodes (numbers, texts, names, operators and calls), nested at most
:data:`MAX_DEPTH` levels (parentheses, calls, unary minus and ``not``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal
from typing import TypeAlias

from featurestore.errors import ConfigurationError

__all__ = [
    "COMPARISONS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_NODES",
    "BinaryOp",
    "Call",
    "Coalesce",
    "Expr",
    "Name",
    "Negate",
    "Number",
    "Prev",
    "Text",
    "When",
    "children",
    "names",
    "parse",
    "prevs",
    "text_names",
]

Function = Literal["ln", "exp", "sqrt", "abs", "not"]
"""The functions of one argument; ``not x`` is written without parentheses."""
Comparison = Literal["==", "!=", "<", "<=", ">", ">="]
Operator = Literal["+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "and", "or"]

FUNCTIONS: tuple[Function, ...] = ("ln", "exp", "sqrt", "abs")
"""The functions of one argument an expression may call (besides ``prev``)."""

MAX_NODES = 200
"""The most nodes an expression may have: its tree is at most this deep (a long sum is a chain
of its operators), which hashing and evaluating it recurse through."""

MAX_DEPTH = 40
"""The most levels of parentheses, calls, unary minus and ``not`` an expression may nest."""

COMPARISONS: tuple[Comparison, ...] = ("==", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Number:
    """A numeric literal."""

    value: float


@dataclass(frozen=True)
class Text:
    """A text literal; it stands only as one side of ``==`` or ``!=`` with a name."""

    value: str


@dataclass(frozen=True)
class Name:
    """A field, a computed column or an aggregate, by name."""

    name: str


@dataclass(frozen=True)
class Prev:
    """``prev(name)``: ``name`` in the entity's previous event.

    With ``skip_nulls`` (``prev_nonnull(name)``): ``name`` in the entity's latest earlier event
    where it was not null.
    """

    name: str
    skip_nulls: bool = False

    @property
    def key(self) -> str:
        """What the entity's kept value is filed under: the name for ``prev()``, as always."""
        return f"prev_nonnull({self.name})" if self.skip_nulls else self.name


@dataclass(frozen=True)
class Negate:
    """Unary minus."""

    operand: Expr


@dataclass(frozen=True)
class BinaryOp:
    """``left op right``: arithmetic, a comparison (1, 0 or null) or ``and``/``or``."""

    op: Operator
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    """``function(argument)`` for one of :data:`FUNCTIONS`, or ``not argument``."""

    function: Function
    argument: Expr


@dataclass(frozen=True)
class When:
    """``when(condition, value[, otherwise])``: ``value`` where ``condition`` is true.

    Elsewhere (false or null) ``otherwise``, or null when there is none.
    """

    condition: Expr
    value: Expr
    otherwise: Expr | None = None


@dataclass(frozen=True)
class Coalesce:
    """``coalesce(a, b, ...)``: the first of ``arguments`` that is not null (two or more)."""

    arguments: tuple[Expr, ...]


Expr: TypeAlias = Number | Text | Name | Prev | Negate | BinaryOp | Call | When | Coalesce
"""An expression node."""

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<text>'[^'\\]*'|\"[^\"\\]*\")"
    r"|(?P<op>==|!=|<=|>=|[-+*/(),<>]))"
)
_KEYWORDS = frozenset(("and", "or", "not"))
_PREVIOUS = frozenset(("prev", "prev_nonnull"))
_RESERVED = frozenset((*FUNCTIONS, *_PREVIOUS, "when", "coalesce"))


@dataclass(frozen=True)
class _Token:
    kind: str
    """``number``, ``name``, ``text``, ``op`` or ``end``."""
    text: str
    at: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    at = 0
    while at < len(text):
        if text[at:].isspace():
            break
        match = _TOKEN.match(text, at)
        if match is None or match.lastgroup is None:
            column = at + len(text[at:]) - len(text[at:].lstrip())
            raise ConfigurationError(
                f"cannot parse {text!r}: unexpected {text[column]!r} at column {column + 1}"
            )
        kind = match.lastgroup
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        at = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, allow_prev: bool) -> None:
        self.text = text
        self.shown = text if len(text) <= 80 else f"{text[:60]}...{text[-10:]}"
        """The text as the messages quote it (a long one shortened)."""
        self.allow_prev = allow_prev
        self.tokens = _tokenize(text)
        self.pos = 0
        self.nodes = 0
        self.depth = 0

    def fail(self, message: str, token: _Token | None = None) -> ConfigurationError:
        where = token or self.tokens[self.pos]
        found = "the end" if where.kind == "end" else repr(where.text)
        return ConfigurationError(
            f"cannot parse {self.shown!r}: {message}, found {found} at column {where.at + 1}"
        )

    def node(self, node: Expr) -> Expr:
        """Count ``node`` against :data:`MAX_NODES`."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConfigurationError(
                f"cannot parse {self.shown!r}: more than {MAX_NODES} numbers, names, operators"
                " and calls (the limit of an expression)"
            )
        return node

    def nest(self) -> None:
        """Enter one level of parentheses, a call or a unary minus (at most :data:`MAX_DEPTH`)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConfigurationError(
                f"cannot parse {self.shown!r}: nested deeper than {MAX_DEPTH} levels of"
                " parentheses, calls and unary minus (the limit of an expression)"
            )

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, op: str) -> None:
        if self.peek().text != op or self.peek().kind != "op":
            raise self.fail(f"expected {op!r}")
        self.pos += 1

    def comma(self) -> bool:
        """Take a ``,`` if one comes next."""
        if self.peek().text == "," and self.peek().kind == "op":
            self.pos += 1
            return True
        return False

    def parse(self) -> Expr:
        expr = self.expr()
        if self.peek().kind != "end":
            raise self.fail("expected an operator")
        return expr

    def keyword(self, word: str) -> bool:
        """Take the keyword ``word`` if it comes next."""
        if self.peek().kind == "name" and self.peek().text == word:
            self.pos += 1
            return True
        return False

    def expr(self) -> Expr:
        left = self.both()
        while self.keyword("or"):
            left = self.node(BinaryOp("or", left, self.both()))
        return left

    def both(self) -> Expr:
        left = self.negated()
        while self.keyword("and"):
            left = self.node(BinaryOp("and", left, self.negated()))
        return left

    def negated(self) -> Expr:
        if self.keyword("not"):
            self.nest()
            operand = self.negated()
            self.depth -= 1
            return self.node(Call("not", operand))
        return self.compare()

    def comparison(self) -> Comparison | None:
        token = self.peek()
        if token.kind != "op":
            return None
        return next((c for c in COMPARISONS if c == token.text), None)

    def compare(self) -> Expr:
        if self.peek().kind == "text":
            return self.text_comparison()
        left = self.sum()
        op = self.comparison()
        if op is None:
            return left
        at = self.take()
        if self.peek().kind == "text":
            text = self.take()
            if op not in ("==", "!=") or not isinstance(left, Name):
                raise self.fail("a text is compared with == or != to a name", text)
            right: Expr = self.node(Text(text.text[1:-1]))
        else:
            right = self.sum()
        if self.comparison() is not None:
            raise self.fail("comparisons do not chain: join them with 'and'")
        del at
        return self.node(BinaryOp(op, left, right))

    def text_comparison(self) -> Expr:
        """``'text' == name`` or ``'text' != name``."""
        text = self.take()
        op = self.comparison()
        if op not in ("==", "!="):
            raise self.fail("expected '==' or '!=' after a text")
        self.take()
        name = self.take()
        if name.kind != "name" or name.text in _RESERVED | _KEYWORDS:
            raise self.fail("a text is compared with == or != to a name", name)
        if self.comparison() is not None:
            raise self.fail("comparisons do not chain: join them with 'and'")
        left = self.node(Text(text.text[1:-1]))
        return self.node(BinaryOp(op, left, self.node(Name(name.text))))

    def sum(self) -> Expr:
        left = self.term()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op: Operator = "+" if self.take().text == "+" else "-"
            left = self.node(BinaryOp(op, left, self.term()))
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.peek().kind == "op" and self.peek().text in ("*", "/"):
            op: Operator = "*" if self.take().text == "*" else "/"
            left = self.node(BinaryOp(op, left, self.unary()))
        return left

    def unary(self) -> Expr:
        if self.peek().kind == "op" and self.peek().text == "-":
            self.take()
            self.nest()
            operand = self.unary()
            self.depth -= 1
            return self.node(Negate(operand))
        return self.atom()

    def atom(self) -> Expr:
        token = self.take()
        if token.kind == "number":
            value = float(token.text)
            if not math.isfinite(value):
                raise self.fail("expected a finite number", token)
            return self.node(Number(value))
        if token.kind == "op" and token.text == "(":
            self.nest()
            inner = self.expr()
            self.expect(")")
            self.depth -= 1
            return inner
        if token.kind == "text":
            raise self.fail("a text is compared with == or != to a name", token)
        if token.kind != "name":
            raise self.fail("expected a number, a name or '('", token)
        if token.text in _KEYWORDS:
            raise self.fail("expected a number, a name or '('", token)
        if token.text not in _RESERVED:
            return self.node(Name(token.text))
        if self.peek().text != "(" or self.peek().kind != "op":
            raise ConfigurationError(
                f"cannot parse {self.shown!r}: {token.text!r} at column {token.at + 1} is a"
                f" function ({', '.join(sorted(_RESERVED))}), not a name: call it as"
                f" {token.text}(...), or rename what is called {token.text!r}"
            )
        self.expect("(")
        if token.text in _PREVIOUS:
            if not self.allow_prev:
                raise ConfigurationError(
                    f"cannot parse {self.shown!r}: {token.text}() is allowed in source columns only"
                )
            arg = self.take()
            if arg.kind != "name" or arg.text in _RESERVED | _KEYWORDS:
                raise self.fail(f"{token.text}() takes a name", arg)
            self.expect(")")
            return self.node(Prev(arg.text, skip_nulls=token.text == "prev_nonnull"))
        self.nest()
        argument = self.expr()
        if token.text == "when":
            self.expect(",")
            then = self.expr()
            otherwise = self.expr() if self.comma() else None
            self.expect(")")
            self.depth -= 1
            return self.node(When(argument, then, otherwise))
        if token.text == "coalesce":
            arguments = [argument]
            while self.comma():
                arguments.append(self.expr())
            if len(arguments) < 2:
                raise self.fail("coalesce() takes two values or more: expected ','")
            self.expect(")")
            self.depth -= 1
            return self.node(Coalesce(tuple(arguments)))
        self.expect(")")
        self.depth -= 1
        function: Function = next(f for f in FUNCTIONS if f == token.text)
        return self.node(Call(function, argument))


def parse(text: str, *, allow_prev: bool = False) -> Expr:
    """Parse ``text`` by the grammar of this module.

    Args:
        text: The expression.
        allow_prev: Whether ``prev(name)`` may appear (computed columns of a source only).

    Raises:
        ConfigurationError: the text does not parse, has a literal that is not finite, or
            passes :data:`MAX_NODES` or :data:`MAX_DEPTH`; the message quotes it.
    """
    return _Parser(text, allow_prev).parse()


def children(expr: Expr) -> tuple[Expr, ...]:
    """The nodes right under ``expr``."""
    if isinstance(expr, Negate):
        return (expr.operand,)
    if isinstance(expr, BinaryOp):
        return (expr.left, expr.right)
    if isinstance(expr, Call):
        return (expr.argument,)
    if isinstance(expr, When):
        if expr.otherwise is None:
            return (expr.condition, expr.value)
        return (expr.condition, expr.value, expr.otherwise)
    if isinstance(expr, Coalesce):
        return expr.arguments
    return ()


def names(expr: Expr) -> frozenset[str]:
    """Every name ``expr`` reads, directly or through ``prev()``."""
    if isinstance(expr, Name | Prev):
        return frozenset((expr.name,))
    return frozenset().union(*(names(child) for child in children(expr)))


def prevs(expr: Expr) -> frozenset[Prev]:
    """The ``prev()`` and ``prev_nonnull()`` reads of ``expr`` (each entity's value is kept)."""
    if isinstance(expr, Prev):
        return frozenset((expr,))
    return frozenset().union(*(prevs(child) for child in children(expr)))


def text_names(expr: Expr) -> dict[str, frozenset[str]]:
    """The names ``expr`` compares with texts, and the texts each is compared with."""
    found: dict[str, set[str]] = {}
    if isinstance(expr, BinaryOp) and expr.op in ("==", "!="):
        pair = (expr.left, expr.right)
        text = next((x.value for x in pair if isinstance(x, Text)), None)
        name = next((x.name for x in pair if isinstance(x, Name)), None)
        if text is not None and name is not None:
            found.setdefault(name, set()).add(text)
    for child in children(expr):
        for name, texts in text_names(child).items():
            found.setdefault(name, set()).update(texts)
    return {name: frozenset(texts) for name, texts in found.items()}
