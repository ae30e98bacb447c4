"""Property tests: any text either compiles or raises ExpressionError, and what
compiles runs on DuckDB, is never NULL, and survives a round trip through
`to_text`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agtrace.errors import ExpressionError
from agtrace.query import compile_filter, field_expr, field_numeric_expr, parse, to_text
from agtrace.query import nodes as N
from agtrace.query.fields import (
    ANY_ATTR, INTRINSIC, INTRINSICS, RESOURCE_ATTR, SPAN_ATTR, TRACE, TRACE_FIELDS, Field,
)
from test_query_injection import assert_safe_sql
from test_query_language import ALL, build_store

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def store():
    s = build_store()
    yield s
    s.close()


def check_runs(store, text: str) -> None:
    """Compile `text`; if it compiles, the SQL is safe, runs, and splits the spans in two."""
    try:
        f = compile_filter(text)
    except ExpressionError as exc:
        assert exc.message
        assert 1 <= exc.column <= len(text) + 1, (text, exc.column)
        assert exc.expression == text
        exc.render()
        return
    assert_safe_sql(f.sql)
    yes, no, null = store.con.execute(
        f"SELECT count(*) FILTER (WHERE {f.sql}), count(*) FILTER (WHERE NOT ({f.sql})), "
        f"count(*) FILTER (WHERE ({f.sql}) IS NULL) FROM spans s", f.params * 3).fetchone()
    assert (yes + no, null) == (len(ALL), 0), text


# -- random text -----------------------------------------------------------------

VOCAB = [
    "name", "duration", "duration_ms", "start", "timestamp", "status", "kind", "type", "depth", "is_root", "agent",
    "trace_id", "trace.duration_ms", "trace.agents", "trace.span_count", "parent.name", "parent.parent.depth",
    "span.tags", "resource.env", "env", ".name", 'span."my key"', "decision_confidence", "gen_ai.usage.input_tokens",
    "and", "or", "not", "AND", "Or", "&&", "||", "!", "(", ")", ",", "in", "not in", "contains", "startswith",
    "endswith", "exists(", "has_parent(", "has_child(", "has_ancestor(", "has_descendant(", "=", "==", "!=",
    ">", ">=", "<", "<=", "=~", "!~", '"x"', "'y'", '"^tr"', '"(a"', '"2024-01-15T10:00:00Z"', "2024-01-15",
    "5", "-1.5", "0.8", "1e3", "2.5s", "250ms", "1h30m", "5x", "true", "false", "nil", "error", "ok", "unset",
    "server", "abc123", "4bf92f35", '"', "'", "`", "\\", "$", ";", ".", "..", "span.", "read_csv(",
]

token_soup = st.lists(st.sampled_from(VOCAB), max_size=12).map(" ".join)
raw_text = st.text(alphabet=st.sampled_from(list(' abnmeistuxyz_.0123456789=!~<>()"\'`,&|-\\:+sµ')), max_size=40)


@SETTINGS
@given(st.one_of(token_soup, raw_text, st.text(max_size=30)))
def test_random_text_compiles_or_raises_expression_error(store, text):
    check_runs(store, text)


# -- random trees --------------------------------------------------------------------

KEYS = ["decision_type", "tags", "env", "scores", "my key", "a.b", "x'y", 'q"z', "name", "status", "Name",
        "ünï", "a.0", "not", "true", "trace", "parent.x", "-a", "back\\slash", "new\nline", "gen_ai.usage.input_tokens"]

fields = st.one_of(
    st.sampled_from([Field(INTRINSIC, n) for n in INTRINSICS]),
    st.sampled_from([Field(TRACE, n) for n in TRACE_FIELDS]),
    st.builds(Field, st.sampled_from([SPAN_ATTR, RESOURCE_ATTR, ANY_ATTR]), st.sampled_from(KEYS)),
).flatmap(lambda f: st.sampled_from([0, 0, 0, 1, 2]).map(lambda up: replace(f, up=up)))

values = st.one_of(
    st.builds(N.Literal, st.just(N.STRING), st.one_of(
        st.text(max_size=8), st.sampled_from(["error", "ok", "x", "2024-01-15T10:00:00Z", "2.5s", "42", "true"]))),
    st.builds(N.Literal, st.just(N.NUMBER), st.one_of(
        st.integers(), st.floats(allow_nan=False, allow_infinity=False))),
    st.builds(N.Literal, st.just(N.DURATION), st.integers(-10 ** 15, 10 ** 15)),
    st.builds(N.Literal, st.just(N.BOOL), st.booleans()),
    st.builds(N.Literal, st.just(N.WORD), st.sampled_from(["server", "client", "tool", "abc123", "dead", "4bf9x"])),
)
nil = st.just(N.Literal(N.NIL, None))

leaves = st.one_of(
    st.builds(N.Compare, fields, st.sampled_from(N.COMPARE_OPS), st.one_of(values, nil)),
    st.builds(N.InList, fields, st.lists(values, min_size=1, max_size=3).map(tuple), st.booleans()),
    st.builds(N.Exists, fields),
)


def _extend(children):
    return st.one_of(
        st.builds(N.Not, children),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: N.And(tuple(xs))),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: N.Or(tuple(xs))),
        st.builds(N.Structural, st.sampled_from(N.STRUCTURAL), children),
    )


trees = st.recursive(leaves, _extend, max_leaves=6)


def flatten(node):
    """The tree the parser builds for to_text(node): nested and/or lists are flat."""
    if isinstance(node, (N.And, N.Or)):
        items = []
        for item in node.items:
            item = flatten(item)
            items.extend(item.items if type(item) is type(node) else [item])
        return type(node)(tuple(items))
    if isinstance(node, N.Not):
        return N.Not(flatten(node.expr))
    if isinstance(node, N.Structural):
        return N.Structural(node.func, flatten(node.expr))
    return node


@SETTINGS
@given(trees)
def test_random_trees_round_trip_and_run(store, tree):
    text = to_text(tree)
    assert parse(text) == flatten(tree), text
    check_runs(store, text)


@SETTINGS
@given(fields, st.booleans())
def test_random_fields_give_runnable_expressions(store, f, numeric):
    name = f.label()
    sql, params = field_numeric_expr(name) if numeric else field_expr(name)
    assert_safe_sql(sql)
    store.con.execute(f"SELECT {sql} FROM spans s", params).fetchall()
