"""User text never becomes SQL text.

Every literal and attribute key is a bound parameter; the SQL of a compiled
filter contains no quote character at all, only words from a fixed
vocabulary. Attempts at injection are plain string literals (matching
nothing) or parse errors, and the store is intact afterwards.
"""

from __future__ import annotations

import re

import pytest

from agtrace.errors import ExpressionError
from agtrace.query import compile_filter, field_expr, field_numeric_expr
from agtrace.store import Store

# Every word the compiler may write into SQL; anything else would be user text.
SQL_VOCABULARY = {
    # keywords
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "TRUE", "FALSE", "NULL", "EXISTS", "JOIN", "ON",
    "UNION", "ALL", "WITH", "RECURSIVE", "AS", "LIMIT", "CAST", "TRY_CAST", "DOUBLE", "INTEGER", "COALESCE",
    # tables and columns
    "spans", "attrs", "resource_attrs", "traces", "sid", "key", "idx", "str_val", "num_val", "resource_id",
    "trace_id", "span_id", "parent_span_id", "parent_sid", "name", "kind", "status", "status_message",
    "start_ns", "end_ns", "duration_ns", "service", "depth", "is_root", "agent", "type", "model",
    "input_tokens", "output_tokens", "session", "root_name", "root_span_id", "span_count", "error_count",
    "root_count", "agents", "v", "s",
    # functions
    "regexp_matches", "contains", "starts_with", "ends_with", "lower", "len", "list_has_any", "unnest",
    "any_value", "coalesce",
}
_ALIAS = re.compile(r"^[a-z]\d+$")
_SQL_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d+)?(?:e\d+)?|\?|<>|<=|>=|[=<>(),.*\[\]/]|\s+")


def assert_safe_sql(sql: str) -> None:
    """Only vocabulary words, generated aliases, numbers the compiler wrote, placeholders."""
    assert "'" not in sql and '"' not in sql and ";" not in sql and "--" not in sql
    pos = 0
    while pos < len(sql):
        m = _SQL_TOKEN.match(sql, pos)
        assert m, f"unexpected SQL text at {pos}: {sql[pos:pos + 30]!r}"
        tok = m.group(0)
        if tok[0].isalpha() or tok[0] == "_":
            assert tok in SQL_VOCABULARY or _ALIAS.match(tok), f"word {tok!r} in SQL"
        elif tok[0].isdigit():
            assert tok in ("0", "1", "1e6"), f"number {tok!r} in SQL"
        pos = m.end()


@pytest.fixture()
def store():
    s = Store.memory()
    s.con.execute("INSERT INTO spans (sid, trace_id, span_id, name, status) VALUES "
                  "(1, 'aaaa', '0001', 'x''; drop table spans; --', 'ok'), (2, 'aaaa', '0002', 'plain', 'ok')")
    s.con.execute("INSERT INTO attrs VALUES (1, 'k''; drop table attrs; --', NULL, 'string', 'v', NULL)")
    yield s
    s.close()


def run(store: Store, text: str) -> set[int]:
    f = compile_filter(text)
    assert_safe_sql(f.sql)
    return {r[0] for r in store.con.execute(f"SELECT s.sid FROM spans s WHERE {f.sql}", f.params).fetchall()}


INJECTIONS = [
    ('name = "x\'; drop table spans; --"', {1}),  # a plain string literal (span 1 has that name)
    ("name = 'x\\'; drop table spans; --'", {1}),
    ('name = "plain\' OR \'1\'=\'1"', set()),
    ('name = "plain\\" OR 1=1 --"', set()),
    ('span."k\'; drop table attrs; --" = "v"', {1}),
    ('."k\'; drop table attrs; --" exists', None),
    ('span."x) OR 1=1 --" = 1', set()),
    ('name =~ "\') OR TRUE --"', None),  # a regex with an unbalanced ')'
    ('name =~ "\\) OR TRUE --"', set()),
    ('name in ("a\') OR (\'1", "plain")', {2}),
    ("name contains \"%' OR '%\"", set()),
    ('status = "error\' OR \'x\'=\'x"', None),
    ('trace.root_name = "\'; SELECT 1; --"', set()),
    ('parent.name = "x\\"); DROP TABLE spans; --"', set()),
    ('has_child(span."a\\"b" = "\\\\\'")', set()),
]


@pytest.mark.parametrize("text,expected", INJECTIONS)
def test_injection_strings_are_literals(store, text, expected):
    if expected is None:
        with pytest.raises(ExpressionError):
            run(store, text)
    else:
        assert run(store, text) == expected
    assert store.con.execute("SELECT count(*) FROM spans").fetchone()[0] == 2
    assert store.con.execute("SELECT count(*) FROM attrs").fetchone()[0] == 1


PARSE_ERRORS = [
    ("read_csv('/etc/passwd')", "unknown function 'read_csv'", 1),
    ("name = read_csv('/etc/passwd')", "expected a value after '='", 8),
    ("x = 1; DROP TABLE spans", "unexpected character ';'", 6),
    ('name = "x" -- comment', "unexpected character '-'", 12),
    ("name = 1 /* c */", "unexpected character '/'", 10),
    ("name = 1 union select 1", "expected 'and', 'or' or the end of the expression, found 'union'", 10),
    ("exists(name) or 1=1", "expected a condition after 'or'", 17),
    ("(select 1) = 1", "expected an operator after 'select'", 9),
    ("name = \"x\" or sid = (select 1)", "expected a value after '='", 21),
    ("pragma_table_info('spans')", "unknown function 'pragma_table_info'", 1),
    ("name = $1", "unexpected character '$'", 8),
    ("name = ?", "unexpected character '?'", 8),
]


@pytest.mark.parametrize("text,message,column", PARSE_ERRORS)
def test_sql_shaped_input_is_a_parse_error(text, message, column):
    with pytest.raises(ExpressionError) as info:
        compile_filter(text)
    assert (info.value.message, info.value.column) == (message, column)


@pytest.mark.parametrize("name", ['span."a\'b"', "resource.\"x'); drop table spans; --\"", "weird.key-1", "parent.span.\"q\""])
def test_field_expressions_bind_keys(name):
    for sql, params in (field_expr(name), field_numeric_expr(name)):
        assert_safe_sql(sql)
        assert params and all(isinstance(p, str) for p in params)


def test_every_sql_of_the_language_tests_is_safe():
    from test_query_language import MATCHES, SPEC_EXAMPLES

    for text, _ in SPEC_EXAMPLES + MATCHES:
        assert_safe_sql(compile_filter(text).sql)
