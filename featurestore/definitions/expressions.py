"""The expressions of computed source columns and derived features, parsed into a small AST.

Grammar (whitespace between tokens is ignored)::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | NAME | FUNC "(" expr ")" | "prev" "(" NAME ")" | "(" expr ")"
    FUNC    := "ln" | "exp" | "sqrt" | "abs"
    NAME    := [A-Za-z_][A-Za-z0-9_]*  (not a function name)
    NUMBER  := digits with an optional fraction and exponent: 5, 0.5, .5, 1e-3

``+ - * /`` are left-associative, ``*`` and ``/`` bind tighter than ``+`` and ``-``, unary minus
tighter than both. ``prev(name)`` is ``name`` in the same entity's previous event (log order);
it is allowed only where the caller says so (:func:`parse` with ``allow_prev=True``: computed
columns of a source), never in derived features.

What the AST means (the processors evaluate it; this module only parses): values are floats,
null propagates, and ``x / 0``, ``ln`` of a non-positive value and ``sqrt`` of a negative value
are null, never an infinity or an error; so a literal must be a finite number (``1e999`` is
refused).

An expression is bounded so that every stage that walks its tree recursively (the parser,
hashing the compiled plans, evaluation) stays far from Python's recursion limit: at most
:data:`MAX_NODES` nodes (numbers, names, operators and calls), nested at most
:data:`MAX_DEPTH` levels (parentheses, calls and unary minus).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal
from typing import TypeAlias

from featurestore.errors import ConfigurationError

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_NODES",
    "BinaryOp",
    "Call",
    "Expr",
    "Name",
    "Negate",
    "Number",
    "Prev",
    "names",
    "parse",
    "prev_names",
]

Function = Literal["ln", "exp", "sqrt", "abs"]
Operator = Literal["+", "-", "*", "/"]

FUNCTIONS: tuple[Function, ...] = ("ln", "exp", "sqrt", "abs")
"""The functions of one argument an expression may call (besides ``prev``)."""

MAX_NODES = 200
"""The most nodes an expression may have: its tree is at most this deep (a long sum is a chain
of its operators), which hashing and evaluating it recurse through."""

MAX_DEPTH = 40
"""The most levels of parentheses, calls and unary minus an expression may nest."""


@dataclass(frozen=True)
class Number:
    """A numeric literal."""

    value: float


@dataclass(frozen=True)
class Name:
    """A field, a computed column or an aggregate, by name."""

    name: str


@dataclass(frozen=True)
class Prev:
    """``prev(name)``: the value of ``name`` in the entity's previous event."""

    name: str


@dataclass(frozen=True)
class Negate:
    """Unary minus."""

    operand: Expr


@dataclass(frozen=True)
class BinaryOp:
    """``left op right``."""

    op: Operator
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    """``function(argument)`` for one of :data:`FUNCTIONS`."""

    function: Function
    argument: Expr


Expr: TypeAlias = Number | Name | Prev | Negate | BinaryOp | Call
"""An expression node."""

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*/()]))"
)
_RESERVED = frozenset((*FUNCTIONS, "prev"))


@dataclass(frozen=True)
class _Token:
    kind: str
    """``number``, ``name``, ``op`` or ``end``."""
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

    def parse(self) -> Expr:
        expr = self.expr()
        if self.peek().kind != "end":
            raise self.fail("expected an operator")
        return expr

    def expr(self) -> Expr:
        left = self.term()
        while self.peek().kind == "op" and self.peek().text in "+-":
            op: Operator = "+" if self.take().text == "+" else "-"
            left = self.node(BinaryOp(op, left, self.term()))
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.peek().kind == "op" and self.peek().text in "*/":
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
        if token.kind != "name":
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
        if token.text == "prev":
            if not self.allow_prev:
                raise ConfigurationError(
                    f"cannot parse {self.shown!r}: prev() is allowed in source columns only"
                )
            arg = self.take()
            if arg.kind != "name" or arg.text in _RESERVED:
                raise self.fail("prev() takes a name", arg)
            self.expect(")")
            return self.node(Prev(arg.text))
        self.nest()
        argument = self.expr()
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


def names(expr: Expr) -> frozenset[str]:
    """Every name ``expr`` reads, directly or through ``prev()``."""
    if isinstance(expr, Name | Prev):
        return frozenset((expr.name,))
    if isinstance(expr, Negate):
        return names(expr.operand)
    if isinstance(expr, BinaryOp):
        return names(expr.left) | names(expr.right)
    if isinstance(expr, Call):
        return names(expr.argument)
    return frozenset()


def prev_names(expr: Expr) -> frozenset[str]:
    """The names ``expr`` reads through ``prev()`` (whose previous value must be kept)."""
    if isinstance(expr, Prev):
        return frozenset((expr.name,))
    if isinstance(expr, Negate):
        return prev_names(expr.operand)
    if isinstance(expr, BinaryOp):
        return prev_names(expr.left) | prev_names(expr.right)
    if isinstance(expr, Call):
        return prev_names(expr.argument)
    return frozenset()
