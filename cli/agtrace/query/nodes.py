"""The syntax tree of a filter expression, and its canonical text.

Nodes are frozen dataclasses; positions (1-based columns, for error carets)
and the text as written do not take part in equality, so two spellings of the
same filter (`AND` / `&&`, `==` / `=`, extra parentheses) give equal trees.
`to_text` writes a tree back as an expression that parses to an equal tree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from agtrace.query.fields import Field

# Literal kinds
STRING = "string"
NUMBER = "number"
DURATION = "duration"  # value: nanoseconds (int)
BOOL = "bool"
NIL = "nil"
WORD = "word"  # an unquoted word in value position (`kind = server`, a bare hex id)

NEGATED_OPS = {"!=": "=", "!~": "=~", "not contains": "contains",
               "not startswith": "startswith", "not endswith": "endswith"}
COMPARE_OPS = ("=", "!=", ">", ">=", "<", "<=", "=~", "!~", "contains", "startswith", "endswith",
               "not contains", "not startswith", "not endswith")
FUNCTIONS = ("exists", "has_parent", "has_child", "has_ancestor", "has_descendant")
STRUCTURAL = FUNCTIONS[1:]


@dataclass(frozen=True)
class Literal:
    kind: str
    value: object
    text: str = field(default="", compare=False)
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # one of COMPARE_OPS (`==` is stored as `=`)
    value: Literal
    pos: int = field(default=0, compare=False)
    op_text: str = field(default="", compare=False)  # as written, for messages
    op_pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class InList:
    field: Field
    values: tuple[Literal, ...]
    negated: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Exists:
    field: Field
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Structural:
    func: str  # has_parent | has_child | has_ancestor | has_descendant
    expr: "Node"
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Not:
    expr: "Node"
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    items: tuple["Node", ...]


Node = Compare | InList | Exists | Structural | Not | And | Or


def to_text(node: Node | None) -> str:
    """The canonical text of a tree (empty for the match-everything filter)."""
    if node is None:
        return ""
    return _text(node, 0)


def _text(node: Node, outer: int) -> str:
    # precedence: 1 = or, 2 = and, 3 = not / primary
    if isinstance(node, Or):
        s = " or ".join(_text(x, 1) for x in node.items)
        return f"({s})" if outer > 1 else s
    if isinstance(node, And):
        s = " and ".join(_text(x, 2) for x in node.items)
        return f"({s})" if outer > 2 else s
    if isinstance(node, Not):
        return "not " + _text(node.expr, 3)
    if isinstance(node, Compare):
        return f"{node.field.label()} {node.op} {literal_text(node.value)}"
    if isinstance(node, InList):
        vals = ", ".join(literal_text(v) for v in node.values)
        return f"{node.field.label()} {'not in' if node.negated else 'in'} ({vals})"
    if isinstance(node, Exists):
        return f"exists({node.field.label()})"
    if isinstance(node, Structural):
        return f"{node.func}({_text(node.expr, 0)})"
    raise TypeError(f"not a filter node: {node!r}")


def literal_text(lit: Literal) -> str:
    if lit.kind == STRING:
        return quote_string(str(lit.value))
    if lit.kind == NUMBER:
        v = lit.value
        if isinstance(v, float):
            if math.isinf(v):
                return "1e999" if v > 0 else "-1e999"
            return repr(v)
        return str(v)
    if lit.kind == DURATION:
        return duration_text(int(lit.value))
    if lit.kind == BOOL:
        return "true" if lit.value else "false"
    if lit.kind == NIL:
        return "nil"
    return str(lit.value)


def duration_text(ns: int) -> str:
    """The shortest exact spelling of a duration: 2500000000 -> "2500ms"."""
    for unit, size in (("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000),
                       ("ms", 1_000_000), ("us", 1_000)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def quote_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\0":
            out.append("\\0")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
