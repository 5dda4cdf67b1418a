"""OData `$filter` expressions: a small recursive-descent parser and type check (no SQL here).

The grammar is the part of OData 4 that ODK Central answers for submissions:

    expr       := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | comparison
    comparison := operand [("eq" | "ne" | "gt" | "ge" | "lt" | "le") operand]
    operand    := "(" expr ")" | literal | call | field
    call       := ("year" | "month" | "day" | "hour" | "minute" | "second") "(" operand ")"
                | "now" "(" ")"
    literal    := 'text' (with '' for a quote) | number | null | true | false
                | 2024-01-31 | 2024-01-31T10:00:00Z (seconds, fraction and offset optional)

`not a eq b` means `not (a eq b)`, as in Central. Fields are the submission's own columns
(`FIELDS`); on a repeat table only their `$root/Submissions/...` spelling is allowed. The
result is a tree of small frozen nodes whose literals already have the type of what they are
compared with (a date literal next to `__system/submissionDate` is a UTC datetime), so turning
it into SQL cannot fail on a type. Every problem raises `FilterInvalid` with the position.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from .errors import FilterInvalid

# OData name -> the kind of value the column holds.
FIELDS = {
    "__id": "string",
    "__system/submissionDate": "datetime",
    "__system/updatedAt": "datetime",
    "__system/deletedAt": "datetime",
    "__system/submitterId": "int",
    "__system/reviewState": "string",
}
ROOT_PREFIX = "$root/Submissions/"
COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
PARTS = ("year", "month", "day", "hour", "minute", "second")
FUNCTIONS = (*PARTS, "now")
_UNSUPPORTED_OPERATORS = ("add", "sub", "mul", "div", "divby", "mod", "has", "in")
MAX_FILTER_CHARS = 4000
MAX_DEPTH = 50


# ---- the tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str  # canonical, without $root/Submissions/
    kind: str  # datetime | string | int


@dataclass(frozen=True)
class Literal:
    value: None | bool | int | float | str | datetime
    kind: str  # null | bool | number | string | date | datetime


@dataclass(frozen=True)
class Call:
    name: str  # year ... second, now
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    operand: Expr


Expr = Field | Literal | Call | Compare | And | Or | Not


def parse_filter(text: str, *, subtable: bool = False, fields: Mapping[str, str] = FIELDS) -> Expr:
    """Parse and type-check a `$filter`. `subtable`: the filter is on a repeat table, where
    only `$root/Submissions/...` fields (the parent submission's) may be named. `fields`: the
    names that may be filtered on and their kinds (an entity list's are not a form's)."""
    if len(text) > MAX_FILTER_CHARS:
        raise FilterInvalid(f"the expression is longer than {MAX_FILTER_CHARS} characters")
    parser = _Parser(_tokens(text), subtable, fields)
    expr = parser.expr(0)
    token = parser.peek()
    if token.kind != "end":
        raise FilterInvalid(f"unexpected {token.text!r} at {token.at}")
    return _condition(expr)


def names_in(expr: Expr) -> set[str]:
    """Every field an expression refers to."""
    if isinstance(expr, Field):
        return {expr.name}
    if isinstance(expr, Call):
        return set().union(*(names_in(a) for a in expr.args)) if expr.args else set()
    if isinstance(expr, (Compare, And, Or)):
        return names_in(expr.left) | names_in(expr.right)
    if isinstance(expr, Not):
        return names_in(expr.operand)
    return set()


# ---- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # ( ) , string number date datetime word end
    text: str
    at: int


_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\w:])")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])")
_WORD = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*(?:/\$?[A-Za-z_][A-Za-z0-9_]*)*")


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch in "(),":
            tokens.append(_Token(ch, ch, i))
            i += 1
        elif ch == "'":
            j, value = i + 1, []
            while True:
                if j >= len(text):
                    raise FilterInvalid(f"the text starting at {i} has no closing quote")
                if text[j] == "\x00":  # no database column holds one (PostgreSQL refuses it)
                    raise FilterInvalid(f"the text starting at {i} has a NUL character")
                if text[j] == "'":
                    if text[j + 1 : j + 2] == "'":
                        value.append("'")
                        j += 2
                        continue
                    break
                value.append(text[j])
                j += 1
            tokens.append(_Token("string", "".join(value), i))
            i = j + 1
        elif ch.isdigit() or (ch == "-" and text[i + 1 : i + 2].isdigit()):
            for kind, pattern in (("datetime", _DATETIME), ("date", _DATE), ("number", _NUMBER)):
                match = pattern.match(text, i)
                if match:
                    tokens.append(_Token(kind, match.group(), i))
                    i = match.end()
                    break
            else:
                raise FilterInvalid(f"unexpected character {ch!r} at {i}")
        else:
            match = _WORD.match(text, i)
            if not match:
                raise FilterInvalid(f"unexpected character {ch!r} at {i}")
            tokens.append(_Token("word", match.group(), i))
            i = match.end()
    tokens.append(_Token("end", "end of the expression", len(text)))
    return tokens


# ---- parser --------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Token], subtable: bool, fields: Mapping[str, str]) -> None:
        self.tokens, self.i, self.subtable, self.fields = tokens, 0, subtable, fields

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _word(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text in words

    def expr(self, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise FilterInvalid("the expression is nested too deeply")
        left = self.conjunction(depth)
        while self._word("or"):
            self.take()
            left = Or(left, self.conjunction(depth))
        return left

    def conjunction(self, depth: int) -> Expr:
        left = self.unary(depth)
        while self._word("and"):
            self.take()
            left = And(left, self.unary(depth))
        return left

    def unary(self, depth: int) -> Expr:
        if self._word("not"):
            if depth >= MAX_DEPTH:  # `not not …` nests too: counted as parentheses are
                raise FilterInvalid("the expression is nested too deeply")
            self.take()
            return Not(self.unary(depth + 1))
        return self.comparison(depth)

    def comparison(self, depth: int) -> Expr:
        left = self.operand(depth)
        token = self.peek()
        if token.kind == "word" and token.text in COMPARISONS:
            self.take()
            return Compare(token.text, left, self.operand(depth))
        if token.kind == "word" and token.text.lower() in (*COMPARISONS, *_UNSUPPORTED_OPERATORS):
            raise FilterInvalid(
                f"the operator {token.text!r} at {token.at} is not supported "
                f"(comparisons: {', '.join(COMPARISONS)}; and, or, not)"
            )
        return left

    def operand(self, depth: int) -> Expr:
        token = self.take()
        if token.kind == "(":
            inner = self.expr(depth + 1)
            closing = self.take()
            if closing.kind != ")":
                raise FilterInvalid(f"expected ')' at {closing.at}")
            return inner
        if token.kind == "string":
            return Literal(token.text, "string")
        if token.kind == "number":
            number = float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
            return Literal(number, "number")
        if token.kind == "date":
            return Literal(_date_value(token.text, token.at), "date")
        if token.kind == "datetime":
            return Literal(_datetime_value(token.text, token.at), "datetime")
        if token.kind != "word":
            raise FilterInvalid(f"unexpected {token.text!r} at {token.at}")
        if token.text in ("null", "true", "false"):
            return Literal(
                None if token.text == "null" else token.text == "true",
                "null" if token.text == "null" else "bool",
            )
        if self.peek().kind == "(":
            return self.call(token, depth)
        return self.field(token)

    def call(self, name: _Token, depth: int) -> Expr:
        if name.text not in FUNCTIONS:
            raise FilterInvalid(
                f"the function {name.text!r} at {name.at} is not supported "
                f"(functions: {', '.join(FUNCTIONS)})"
            )
        self.take()  # (
        args: list[Expr] = []
        if self.peek().kind != ")":
            args.append(self.expr(depth + 1))
            while self.peek().kind == ",":
                self.take()
                args.append(self.expr(depth + 1))
        closing = self.take()
        if closing.kind != ")":
            raise FilterInvalid(f"expected ')' at {closing.at}")
        expected = 0 if name.text == "now" else 1
        if len(args) != expected:
            raise FilterInvalid(
                f"{name.text}() at {name.at} takes {expected} argument"
                f"{'' if expected == 1 else 's'}"
            )
        if args and _value_kind(args[0]) != "datetime":
            raise FilterInvalid(
                f"{name.text}() at {name.at} needs a date or time: a "
                "__system date field, a date literal or now()"
            )
        return Call(name.text, tuple(_as_datetime(a) for a in args))

    def field(self, token: _Token) -> Field:
        name = token.text
        if name.startswith(ROOT_PREFIX):
            name = name[len(ROOT_PREFIX) :]
        elif self.subtable and name in self.fields:
            raise FilterInvalid(
                f"on a repeat table, name the submission's field as "
                f"'{ROOT_PREFIX}{name}' (at {token.at})"
            )
        if name not in self.fields:
            raise FilterInvalid(
                f"the field {token.text!r} at {token.at} cannot be filtered on; "
                f"fields: {', '.join(self.fields)}"
            )
        return Field(name, self.fields[name])


def _date_value(text: str, at: int | None = None) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        where = f" at {at}" if at is not None else ""
        raise FilterInvalid(f"{text!r}{where} is not a valid date") from None
    return datetime.combine(day, time.min, tzinfo=UTC)


def _datetime_value(text: str, at: int | None = None) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        where = f" at {at}" if at is not None else ""
        raise FilterInvalid(f"{text!r}{where} is not a valid date and time") from None
    if not value.tzinfo:
        return value.replace(tzinfo=UTC)
    try:  # in UTC now: the database compares in UTC, and 9999-12-31T23:59-01:00 is past 9999
        return value.astimezone(UTC)
    except OverflowError:
        where = f" at {at}" if at is not None else ""
        raise FilterInvalid(f"{text!r}{where} is out of range once in UTC") from None


# ---- types ---------------------------------------------------------------------------------

_WORDS = {
    "datetime": "a date and time",
    "int": "a whole number",
    "string": "text",
    "number": "a number",
    "bool": "true or false",
    "null": "null",
    "condition": "a condition",
}


def _value_kind(expr: Expr) -> str:
    """datetime | string | int | null | bool | number | condition."""
    if isinstance(expr, Field):
        return expr.kind
    if isinstance(expr, Literal):
        return "datetime" if expr.kind == "date" else expr.kind
    if isinstance(expr, Call):
        return "datetime" if expr.name == "now" else "int"
    return "condition"


def _as_datetime(expr: Expr) -> Expr:
    if isinstance(expr, Literal) and expr.kind == "date":
        return Literal(expr.value, "datetime")
    return expr


def _condition(expr: Expr) -> Expr:
    """Check that `expr` is a true/false condition, typing the literals of its comparisons."""
    if isinstance(expr, (And, Or)):
        return type(expr)(_condition(expr.left), _condition(expr.right))
    if isinstance(expr, Not):
        return Not(_condition(expr.operand))
    if isinstance(expr, Compare):
        return _comparison(expr)
    if isinstance(expr, Literal) and expr.kind == "bool":
        return expr
    raise FilterInvalid(
        "the expression is not a condition: compare a field with eq, ne, gt, ge, lt or le"
    )


def _comparison(expr: Compare) -> Compare:
    left, right = _value_kind(expr.left), _value_kind(expr.right)
    if "condition" in (left, right):
        raise FilterInvalid(f"'{expr.op}' compares values, not conditions")
    if "null" in (left, right):
        if expr.op not in ("eq", "ne"):
            raise FilterInvalid(f"null can only be compared with eq or ne, not {expr.op}")
        return expr
    target = _target_kind(left, right)
    return Compare(expr.op, _coerce(expr.left, target), _coerce(expr.right, target))


def _target_kind(left: str, right: str) -> str:
    """The kind both sides are compared as; literals give way to fields and functions."""
    for kind in (left, right):
        if kind in ("datetime", "int", "string"):
            return kind
    if left == right:
        return left
    raise FilterInvalid(f"cannot compare {_WORDS[left]} with {_WORDS[right]}")


def _coerce(expr: Expr, kind: str) -> Expr:
    if not isinstance(expr, Literal):
        if _value_kind(expr) != kind:
            raise FilterInvalid(f"cannot compare {_WORDS[_value_kind(expr)]} with {_WORDS[kind]}")
        return _as_datetime(expr)
    value = expr.value
    if kind == "datetime":
        if expr.kind in ("date", "datetime"):
            return Literal(value, "datetime")
        if expr.kind == "string":
            text = str(value).strip()
            if _DATE.fullmatch(text):
                return Literal(_date_value(text), "datetime")
            return Literal(_datetime_value(text), "datetime")
    elif kind == "int":
        if expr.kind == "number" and float(value).is_integer():  # type: ignore[arg-type]
            return Literal(int(value), "int")  # type: ignore[arg-type]
        if expr.kind == "string" and re.fullmatch(r"\s*-?\d+\s*", str(value)):
            return Literal(int(str(value)), "int")
    elif kind == "string":
        if expr.kind in ("string", "number"):
            return Literal(str(value), "string")
    elif kind == expr.kind:
        return expr
    raise FilterInvalid(f"cannot compare {_WORDS[kind]} with {value!r}")
