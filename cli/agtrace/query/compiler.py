"""Syntax tree -> a boolean SQL expression over `spans s`, with bound parameters.

No text the user typed is ever pasted into SQL: every literal and every
attribute key travels as a `?` parameter; the SQL text is assembled only from
fixed fragments, column names from the field table and generated aliases.

Semantics (docs: query-language.md):

* a comparison with a missing field is false, and every fragment is TRUE or
  FALSE, never NULL, so `not` is plain negation (`not x = 1` keeps spans
  without `x`);
* the negative operators (`!=`, `!~`, `not in`, `not contains`, ...) mean
  "the field exists and the positive operator does not match": on arrays,
  `tags != "a"` keeps spans whose tags do not include "a";
* a number literal compares with `attrs.num_val`, which holds ints, doubles
  and numeric strings alike; a string literal compares with `str_val`;
* an unscoped attribute is the span's, or failing that the resource's.

Plan shapes were chosen by measurement on a 1,000,000-span store
(benchmarks/bench_filter_sql.py): a correlated EXISTS over `attrs` is
decorrelated by DuckDB into a hash semi-join and is as fast as `IN`, while
being NULL-free by construction; unscoped attributes use one `IN (... UNION
ALL ...)` so that a key present on every span does not cost an anti-join over
the whole table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from agtrace.errors import ExpressionError
from agtrace.query import nodes as N
from agtrace.query import regex
from agtrace.query.fields import (
    ANY_ATTR, BOOL, DURATION, ENUM, ID, INT, INTRINSIC, LIST, RESOURCE_ATTR, SPAN_ATTR, STRING,
    TIME, TRACE, Column, Field,
)
from agtrace.query.parser import parse, parse_field
from agtrace.store import SPAN_COLUMNS
from agtrace.timeutil import epoch_number_to_ns, parse_duration_ns, parse_iso_ns

# Join parents through the integer surrogate key when the schema has it.
HAS_PARENT_SID = "parent_sid" in SPAN_COLUMNS

_ORDER_OPS = {"=": "=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
_TEXT_OPS = ("=~", "contains", "startswith", "endswith")
_TEXT_FUNCS = {"contains": "contains", "startswith": "starts_with", "endswith": "ends_with"}
_HEX_RE = re.compile(r"^(0x)?[0-9a-fA-F]+$")

Sql = tuple[str, list]


@dataclass(frozen=True)
class Filter:
    """A compiled filter: `sql` is a boolean expression over `spans` aliased `s`.

    `sql` uses only `?` placeholders, in the order of `params`, and is never
    NULL (safe under NOT, in FILTER clauses and CASE). `ast` is None for the
    empty filter, whose sql is `TRUE`.
    """

    text: str
    sql: str
    params: list = field(default_factory=list)
    ast: N.Node | None = None

    @property
    def is_trivial(self) -> bool:
        return self.ast is None

    def and_(self, other: "Filter") -> "Filter":
        """Both filters (for commands that add their own conditions)."""
        if self.is_trivial:
            return other
        if other.is_trivial:
            return self
        text = f"({self.text}) and ({other.text})"
        return Filter(text, f"({self.sql}) AND ({other.sql})", list(self.params) + list(other.params),
                      N.And((self.ast, other.ast)))


def compile_filter(text: str | None) -> Filter:
    """Parse and compile a filter expression. Raises ExpressionError."""
    text = text or ""
    ast = parse(text)
    if ast is None:
        return Filter(text, "TRUE", [], None)
    sql, params = _Compiler(text).node(ast, "s")
    return Filter(text, sql, params, ast)


def compile_ast(ast: N.Node | None, text: str = "") -> Filter:
    """Compile an already parsed (or programmatically built) tree."""
    if ast is None:
        return Filter(text, "TRUE", [], None)
    sql, params = _Compiler(text or N.to_text(ast)).node(ast, "s")
    return Filter(text or N.to_text(ast), sql, params, ast)


@dataclass(frozen=True)
class FieldInfo:
    """What a field name means, for commands that show, group or sort by it.

    `kind` is the field table's kind for intrinsics and trace fields
    (string, id, enum, int, duration, time, bool, list) or "attribute";
    `unit` is "ns" for the raw nanosecond values of `field_expr` on
    duration and time fields, "ms" for duration_ms, else None.
    """

    field: Field
    label: str
    kind: str
    unit: str | None


def field_info(name: str) -> FieldInfo:
    f = parse_field(name)
    col = f.column
    if col is None:
        return FieldInfo(f, f.label(), "attribute", None)
    unit = "ms" if col.name == "duration_ms" else "ns" if col.kind in (DURATION, TIME) else None
    return FieldInfo(f, f.label(), col.kind, unit)


def field_expr(name: str) -> Sql:
    """A scalar SQL expression (over `spans s`) for a field, for --by, -c and --sort.

    Intrinsics are their columns (duration and times in nanoseconds,
    duration_ms in milliseconds); an attribute is its first value as text
    (the scalar, or element 0 of an array), the span's else the resource's;
    NULL when absent. Raises ExpressionError for a bad name.
    """
    return _Compiler(name).value(parse_field(name), "s", numeric=False)


def field_numeric_expr(name: str) -> Sql:
    """Like field_expr, but a number for numeric aggregates.

    Attributes give their num_val (ints, doubles and numeric strings);
    durations are in milliseconds (as bare numbers are in filters); times in
    epoch nanoseconds; text intrinsics are cast when they hold a number.
    """
    return _Compiler(name).value(parse_field(name), "s", numeric=True)


# -- literals ------------------------------------------------------------------


def _num(v):
    """A Python number as a parameter DuckDB can bind (huge ints become floats)."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int) and not -(2 ** 63) <= v < 2 ** 63:
        return float(v)
    return v


def _ms_to_ns(ms: float | int):
    ns = ms * 1_000_000
    if isinstance(ns, float) and ns.is_integer() and abs(ns) < 2 ** 63:
        return int(ns)
    return _num(ns)


def _parse_number(s: str):
    s = s.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        v = float(s)
    except ValueError:
        return None
    return None if math.isnan(v) else v


@dataclass
class _Pred:
    """A predicate over one value expression.

    `strict`: the predicate is NULL only when the value itself is NULL (a
    missing field), so both `(P) IS TRUE` and `(NOT P) IS TRUE` are right;
    a TRY_CAST can also give NULL for a present value, and is not strict.
    """

    sql: str
    params: list
    strict: bool = True


class _Compiler:
    def __init__(self, text: str, parent_sid: bool | None = None):
        self.text = text
        self.n = 0
        self.parent_sid = HAS_PARENT_SID if parent_sid is None else parent_sid

    def alias(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def error(self, message: str, pos: int, hint: str | None = None) -> ExpressionError:
        return ExpressionError(message, self.text, pos or 1, hint)

    # -- boolean structure ---------------------------------------------------
    def node(self, node: N.Node, a: str) -> Sql:
        if isinstance(node, N.And):
            return self.join(node.items, " AND ", a)
        if isinstance(node, N.Or):
            return self.join(node.items, " OR ", a)
        if isinstance(node, N.Not):
            sql, params = self.node(node.expr, a)
            return f"NOT ({sql})", params
        if isinstance(node, N.Compare) and node.value.kind == N.NIL:
            return self.nil(node, a)
        if isinstance(node, (N.Compare, N.InList, N.Exists)) and node.field.up > 0:
            inner = replace(node, field=replace(node.field, up=node.field.up - 1))
            return self.structural("has_parent", inner, a)
        if isinstance(node, N.Compare):
            return self.compare(node, a)
        if isinstance(node, N.InList):
            return self.in_list(node, a)
        if isinstance(node, N.Exists):
            return self.exists(node.field, a)
        if isinstance(node, N.Structural):
            return self.structural(node.func, node.expr, a)
        raise TypeError(f"not a filter node: {node!r}")

    def join(self, items, sep: str, a: str) -> Sql:
        parts, params = [], []
        for item in items:
            sql, p = self.node(item, a)
            parts.append(sql)
            params += p
        return "(" + sep.join(parts) + ")", params

    # -- structure of the trace ----------------------------------------------
    def parent_cond(self, child: str, parent: str) -> str:
        if self.parent_sid:
            return f"{parent}.sid = {child}.parent_sid"
        return f"{parent}.trace_id = {child}.trace_id AND {parent}.span_id = {child}.parent_span_id"

    def structural(self, func: str, expr: N.Node, a: str) -> Sql:
        if func == "has_parent":
            p = self.alias("p")
            cond, params = self.node(expr, p)
            return f"EXISTS (SELECT 1 FROM spans {p} WHERE {self.parent_cond(a, p)} AND {cond})", params
        if func == "has_child":
            c = self.alias("c")
            cond, params = self.node(expr, c)
            return f"EXISTS (SELECT 1 FROM spans {c} WHERE {self.parent_cond(c, a)} AND {cond})", params
        # Ancestors / descendants: a recursive walk from the matching spans.
        # UNION (not UNION ALL) discards rows already found, so the walk ends
        # even when bad data has a parent cycle; it takes as many steps as the
        # longest chain, however deep the tree.
        m = self.alias("m")
        cond, params = self.node(expr, m)
        w, x, y = self.alias("w"), self.alias("x"), self.alias("y")
        down = func == "has_ancestor"  # walk down from the children of matches, else up from the parents
        if self.parent_sid:
            cols = ("sid",) if down else ("sid", "parent_sid")
        else:
            cols = ("sid", "trace_id", "span_id") if down else ("sid", "trace_id", "parent_span_id")

        def sel(t: str) -> str:
            return ", ".join(f"{t}.{c}" for c in cols)

        if down:
            first = f"SELECT {sel(x)} FROM spans {m} JOIN spans {x} ON {self.parent_cond(x, m)} WHERE {cond}"
            step = f"SELECT {sel(y)} FROM {w} JOIN spans {y} ON {self.parent_cond(y, w)}"
        else:
            first = f"SELECT {sel(x)} FROM spans {m} JOIN spans {x} ON {self.parent_cond(m, x)} WHERE {cond}"
            step = f"SELECT {sel(y)} FROM {w} JOIN spans {y} ON {self.parent_cond(w, y)}"
        cols = ", ".join(cols)
        sql = f"{a}.sid IN (WITH RECURSIVE {w}({cols}) AS ({first} UNION {step}) SELECT {w}.sid FROM {w})"
        return sql, params

    # -- leaves ----------------------------------------------------------------
    def exists(self, f: Field, a: str) -> Sql:
        if f.scope == INTRINSIC:
            return f"{a}.{f.column.column} IS NOT NULL", []
        if f.scope == TRACE:
            col = f.column
            t = self.alias("t")
            cond = f"len({t}.{col.column}) > 0" if col.kind == LIST else f"{t}.{col.column} IS NOT NULL"
            return f"{a}.trace_id IN (SELECT {t}.trace_id FROM traces {t} WHERE {cond})", []
        return self.attr_match(f, a, None)

    def attr_match(self, f: Field, a: str, pred) -> Sql:
        """Whether any value of attribute `f` satisfies `pred(alias) -> _Pred` (None: exists)."""

        def cond(x: str) -> tuple[str, list]:
            if pred is None:
                return "", []
            p = pred(x)
            return f" AND {p.sql}", p.params

        key = f.name
        if f.scope == SPAN_ATTR:
            x = self.alias("a")
            c, p = cond(x)
            return (f"EXISTS (SELECT 1 FROM attrs {x} WHERE {x}.sid = {a}.sid AND {x}.key = ?{c})", [key] + p)
        if f.scope == RESOURCE_ATTR:
            x = self.alias("r")
            c, p = cond(x)
            return (f"EXISTS (SELECT 1 FROM resource_attrs {x} WHERE {x}.resource_id = {a}.resource_id"
                    f" AND {x}.key = ?{c})", [key] + p)
        # unscoped: the span's attribute, or failing that the resource's
        x, r, y, z = self.alias("a"), self.alias("r"), self.alias("s"), self.alias("a")
        c1, p1 = cond(x)
        c2, p2 = cond(r)
        if pred is None:
            sql = (f"(EXISTS (SELECT 1 FROM attrs {x} WHERE {x}.sid = {a}.sid AND {x}.key = ?)"
                   f" OR EXISTS (SELECT 1 FROM resource_attrs {r} WHERE {r}.resource_id = {a}.resource_id"
                   f" AND {r}.key = ?))")
            return sql, [key, key]
        sql = (f"{a}.sid IN (SELECT {x}.sid FROM attrs {x} WHERE {x}.key = ?{c1}"
               f" UNION ALL SELECT {y}.sid FROM resource_attrs {r} JOIN spans {y} ON {y}.resource_id = {r}.resource_id"
               f" WHERE {r}.key = ?{c2}"
               f" AND NOT EXISTS (SELECT 1 FROM attrs {z} WHERE {z}.sid = {y}.sid AND {z}.key = ?))")
        return sql, [key] + p1 + [key] + p2 + [key]

    def scalar_match(self, f: Field, a: str, pred, negate: bool) -> Sql:
        """`pred(expr) -> _Pred` over an intrinsic / trace column; never NULL."""
        col = f.column
        if f.scope == INTRINSIC:
            return self._wrap(pred(f"{a}.{col.column}"), f"{a}.{col.column}", negate)
        t = self.alias("t")
        if col.kind == LIST:
            u = self.alias("u")
            p = pred(f"{u}.v")
            m = re.fullmatch(rf"{u}\.v (?:= \?|IN \(\?(?:, \?)*\))", p.sql)
            if m:  # equality: a list function, much cheaper than unnesting every trace
                marks = ", ".join("?" * len(p.params))
                cond = f"list_has_any({t}.{col.column}, [{marks}])"
                return f"{a}.trace_id IN (SELECT {t}.trace_id FROM traces {t} WHERE {cond})", p.params
            inner = f"SELECT {t}.trace_id FROM traces {t}, unnest({t}.{col.column}) AS {u}(v) WHERE {p.sql}"
            return f"{a}.trace_id IN ({inner})", p.params
        p = self._wrap(pred(f"{t}.{col.column}"), f"{t}.{col.column}", negate)
        return f"{a}.trace_id IN (SELECT {t}.trace_id FROM traces {t} WHERE {p[0]})", p[1]

    @staticmethod
    def _wrap(p: _Pred, expr: str, negate: bool) -> Sql:
        if not negate:
            return f"({p.sql}) IS TRUE", p.params
        if p.strict:
            sql = p.sql
            m = re.fullmatch(r"(.*) = \?", sql)
            if m and "?" not in m.group(1):
                return f"({m.group(1)} <> ?) IS TRUE", p.params
            return f"(NOT {sql}) IS TRUE", p.params
        return f"({expr} IS NOT NULL AND NOT COALESCE({p.sql}, FALSE))", p.params

    def compare(self, node: N.Compare, a: str) -> Sql:
        f, lit = node.field, node.value
        op = N.NEGATED_OPS.get(node.op, node.op)
        negate = node.op in N.NEGATED_OPS
        if op == "=~":
            self.check_regex(lit, node)
        if f.is_attribute:
            pred = self.attr_pred(f, op, lit, node)
            return self.multi(f, a, pred, negate)
        pred = self.column_pred(f, op, lit, node)
        return self.single(f, a, pred, negate)

    def nil(self, node: N.Compare, a: str) -> Sql:
        """`field = nil`: the field is missing (also when there is no parent); `!= nil`: present."""
        if node.op not in ("=", "!="):
            raise self.error("nil can only be compared with = or !=", node.value.pos,
                             hint="`field = nil` is true when the field is missing")
        sql, params = self.node(N.Exists(node.field, pos=node.pos), a)
        return (f"NOT ({sql})", params) if node.op == "=" else (sql, params)

    def in_list(self, node: N.InList, a: str) -> Sql:
        f = node.field
        for lit in node.values:
            if lit.kind == N.NIL:
                raise self.error("nil cannot be in a list", lit.pos, hint="use `field = nil` or not exists(field)")
        if f.is_attribute:
            preds = [self.attr_pred(f, "=", lit, node) for lit in node.values]
        else:
            preds = [self.column_pred(f, "=", lit, node) for lit in node.values]

        def combined(x: str) -> _Pred:
            return _merge_equalities([p(x) for p in preds])

        if f.is_attribute:
            return self.multi(f, a, combined, node.negated)
        return self.single(f, a, combined, node.negated)

    def multi(self, f: Field, a: str, pred, negate: bool) -> Sql:
        match = self.attr_match(f, a, pred)
        if not negate:
            return match
        ex = self.attr_match(f, a, None)
        return f"({ex[0]} AND NOT ({match[0]}))", ex[1] + match[1]

    def single(self, f: Field, a: str, pred, negate: bool) -> Sql:
        col = f.column
        if col.kind == LIST and negate:
            ex = self.exists(f, a)
            match = self.scalar_match(f, a, pred, False)
            return f"({ex[0]} AND NOT ({match[0]}))", ex[1] + match[1]
        return self.scalar_match(f, a, pred, negate)

    def check_regex(self, lit: N.Literal, node: N.Compare) -> None:
        if lit.kind not in (N.STRING, N.NUMBER, N.WORD):
            raise self.error(f"expected a regular expression (a string) after '{node.op_text}'", lit.pos,
                             hint=f'quote it: "{lit.text}"')
        pattern = str(lit.value) if lit.kind == N.STRING else lit.text
        try:
            regex.check_regex(pattern)
        except regex.RegexProblem as exc:
            pos = lit.pos
            if exc.offset is not None and lit.text[1:-1] == pattern and lit.text[:1] in "\"'`":
                pos = lit.pos + 1 + exc.offset
            raise self.error(exc.message, pos, hint="regular expressions use RE2 syntax") from None

    # -- predicates over attribute rows ----------------------------------------
    def attr_pred(self, f: Field, op: str, lit: N.Literal, node):
        label = f.text or f.label()
        if lit.kind == N.DURATION:
            raise self.error(f"{label} is not a duration; '{lit.text}' has a unit", lit.pos,
                             hint="attribute values carry no unit: compare with a plain number in the attribute's own unit")
        if lit.kind == N.WORD:
            raise self._bare_word(node, lit)
        if op in _TEXT_OPS:
            text = _literal_as_text(lit)
            if op == "=~":
                return lambda x: _Pred(f"regexp_matches({x}.str_val, ?)", [text])
            func = _TEXT_FUNCS[op]
            return lambda x: _Pred(f"{func}({x}.str_val, ?)", [text])
        sop = _ORDER_OPS[op]
        if lit.kind == N.NUMBER:
            v = _num(lit.value)
            return lambda x: _Pred(f"{x}.num_val {sop} ?", [v])
        if lit.kind == N.BOOL:
            if op != "=":
                raise self.error(f"'{op}' does not apply to true/false", lit.pos)
            v = "true" if lit.value else "false"
            return lambda x: _Pred(f"lower({x}.str_val) = ?", [v])
        v = str(lit.value)
        return lambda x: _Pred(f"{x}.str_val {sop} ?", [v])

    # -- predicates over columns -------------------------------------------------
    def column_pred(self, f: Field, op: str, lit: N.Literal, node):
        col: Column = f.column
        label = f.text or f.label()
        kind = col.kind
        if kind in (STRING, ENUM, ID, LIST):
            return self._text_column_pred(f, col, op, lit, node)
        what = {INT: "a number", DURATION: "a duration", TIME: "a time", BOOL: "true or false"}[kind]
        if op in _TEXT_OPS:
            raise self.error(f"'{node.op_text}' applies to text, and {label} is {what}",
                             getattr(node, "op_pos", 0) or lit.pos)
        if lit.kind == N.WORD:
            raise self._bare_word(node, lit)
        sop = _ORDER_OPS[op]
        if kind == BOOL:
            if op != "=":
                raise self.error(f"'{op}' does not apply to {label}, which is true or false", lit.pos,
                                 hint=f"write {label} = true or {label} = false")
            if lit.kind == N.BOOL:
                v = bool(lit.value)
            elif lit.kind == N.STRING and str(lit.value).lower() in ("true", "false"):
                v = str(lit.value).lower() == "true"
            else:
                raise self.error(f"{label} is true or false; {lit.text} is not", lit.pos)
            return lambda e: _Pred(f"{e} = ?", [v])
        if lit.kind == N.BOOL:
            raise self.error(f"{label} is {what}; {lit.text} is not", lit.pos)
        if kind == INT:
            if lit.kind == N.DURATION:
                raise self.error(f"{label} is not a duration; '{lit.text}' has a unit", lit.pos,
                                 hint="remove the unit")
            v = lit.value if lit.kind == N.NUMBER else _parse_number(str(lit.value))
            if v is None:
                raise self.error(f"{label} is a number; {lit.text} is not", lit.pos)
            v = _num(v)
        elif kind == DURATION:
            if lit.kind == N.DURATION:
                v = _num(lit.value)
            elif lit.kind == N.NUMBER:
                v = _ms_to_ns(lit.value)
            else:
                s = str(lit.value)
                ns = parse_duration_ns(s)
                num = _parse_number(s)
                if ns is not None:
                    v = _num(ns)
                elif num is not None:
                    v = _ms_to_ns(num)
                else:
                    raise self.error(f"{label} is a duration; {lit.text} is not", lit.pos,
                                     hint="write a duration such as 2.5s or 250ms, or a number of milliseconds")
        else:  # TIME
            if lit.kind == N.DURATION:
                raise self.error(f"{label} is a time, not a duration; '{lit.text}' has a unit", lit.pos,
                                 hint=f'compare {label} with an ISO-8601 time such as "2024-01-15T10:00:00Z"')
            if lit.kind == N.NUMBER:
                v = _num(epoch_number_to_ns(lit.value)) if math.isfinite(lit.value) else _num(lit.value)
            else:
                ns = parse_iso_ns(str(lit.value))
                if ns is None:
                    raise self.error(f"{label} is a time; {lit.text} is not an ISO-8601 time", lit.pos,
                                     hint='write it like "2024-01-15T10:00:00Z"')
                v = ns
        return lambda e: _Pred(f"{e} {sop} ?", [v])

    def _text_column_pred(self, f: Field, col: Column, op: str, lit: N.Literal, node):
        label = f.text or f.label()
        if lit.kind == N.DURATION:
            raise self.error(f"{label} is not a duration; '{lit.text}' has a unit", lit.pos,
                             hint=f'to compare text, quote it: "{lit.text}"')
        numeric = False
        if lit.kind == N.WORD:
            text = self._word_value(f, col, lit, node)
        elif lit.kind == N.NUMBER and op not in _TEXT_OPS and col.kind not in (ID, ENUM):
            numeric = True
            text = None
        else:
            text = _literal_as_text(lit)
            if op != "=~":
                text = _normalise(col, text)
        if col.validate and op == "=" and text not in col.values:
            raise self.error(f"unknown {col.name} {lit.text}", lit.pos,
                             hint=f"{col.name} is one of: " + ", ".join(col.values))
        if op == "=~":
            return lambda e: _Pred(f"regexp_matches({e}, ?)", [text])
        if op in _TEXT_FUNCS:
            func = _TEXT_FUNCS[op]
            return lambda e: _Pred(f"{func}({e}, ?)", [text])
        sop = _ORDER_OPS[op]
        if numeric:
            v = _num(lit.value)
            return lambda e: _Pred(f"TRY_CAST({e} AS DOUBLE) {sop} ?", [v], strict=False)
        return lambda e: _Pred(f"{e} {sop} ?", [text])

    def _word_value(self, f: Field, col: Column, lit: N.Literal, node) -> str:
        word = str(lit.value)
        if col.kind == ID and _HEX_RE.match(word):
            return _normalise(col, word)
        if col.kind == ENUM and _normalise(col, word) in col.values:
            return _normalise(col, word)
        raise self._bare_word(node, lit, col)

    def _bare_word(self, node, lit: N.Literal, col: Column | None = None) -> ExpressionError:
        after = getattr(node, "op_text", "") or ("in" if isinstance(node, N.InList) else "=")
        if isinstance(node, N.InList):
            after = "("
            for prev, cur in zip(node.values, node.values[1:]):
                if cur is lit:
                    after = ","
        hint = f'to compare with the text, quote it: "{lit.text}"'
        if col is not None and col.kind == ENUM:
            hint = f"{col.name} is one of: " + ", ".join(col.values)
        return self.error(f"expected a value after '{after}'", lit.pos, hint)

    # -- values, for field_expr ----------------------------------------------------
    def value(self, f: Field, a: str, numeric: bool) -> Sql:
        if f.up > 0:
            p = self.alias("p")
            inner, params = self.value(replace(f, up=f.up - 1), p, numeric)
            return f"(SELECT {inner} FROM spans {p} WHERE {self.parent_cond(a, p)} LIMIT 1)", params
        col = f.column
        if f.scope == INTRINSIC:
            return (col.numeric_sql(a) if numeric else col.display_sql(a)), []
        if f.scope == TRACE:
            t = self.alias("t")
            inner = col.numeric_sql(t) if numeric else col.display_sql(t)
            return f"(SELECT {inner} FROM traces {t} WHERE {t}.trace_id = {a}.trace_id LIMIT 1)", []
        v = "num_val" if numeric else "str_val"
        x = self.alias("a")
        span = (f"(SELECT any_value({x}.{v}) FROM attrs {x} WHERE {x}.sid = {a}.sid AND {x}.key = ?"
                f" AND coalesce({x}.idx, 0) = 0)")
        r = self.alias("r")
        res = (f"(SELECT any_value({r}.{v}) FROM resource_attrs {r} WHERE {r}.resource_id = {a}.resource_id"
               f" AND {r}.key = ? AND coalesce({r}.idx, 0) = 0)")
        if f.scope == SPAN_ATTR:
            return span, [f.name]
        if f.scope == RESOURCE_ATTR:
            return res, [f.name]
        return f"COALESCE({span}, {res})", [f.name, f.name]


def _literal_as_text(lit: N.Literal) -> str:
    if lit.kind == N.STRING:
        return str(lit.value)
    if lit.kind == N.BOOL:
        return "true" if lit.value else "false"
    return lit.text  # numbers as written


def _normalise(col: Column, text: str) -> str:
    if col.kind == ID:
        t = text.strip().lower()
        return t[2:] if t.startswith("0x") else t
    if col.kind == ENUM:
        t = text.strip().lower()
        for prefix in ("span_kind_", "status_code_"):
            if t.startswith(prefix):
                t = t[len(prefix):]
        return t
    return text


def _merge_equalities(preds: list[_Pred]) -> _Pred:
    """OR of `expr = ?` predicates, with equal expressions folded into IN (...)."""
    groups: dict[str, list] = {}
    other: list[_Pred] = []
    strict = True
    for p in preds:
        strict = strict and p.strict
        m = re.fullmatch(r"(.*) = \?", p.sql)
        if m and "?" not in m.group(1) and len(p.params) == 1:
            groups.setdefault(m.group(1), []).append(p.params[0])
        else:
            other.append(p)
    parts: list[str] = []
    params: list = []
    for expr, values in groups.items():
        if len(values) == 1:
            parts.append(f"{expr} = ?")
        else:
            parts.append(f"{expr} IN ({', '.join('?' * len(values))})")
        params += values
    for p in other:
        parts.append(p.sql)
        params += p.params
    sql = parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
    return _Pred(sql, params, strict)
