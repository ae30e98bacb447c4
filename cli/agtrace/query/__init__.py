"""The agtrace filter language: text -> tree -> SQL with bound parameters.

    from agtrace.query import compile_filter, field_expr
    f = compile_filter('type = "tool" and status = error')
    con.execute(f"SELECT count(*) FROM spans s WHERE {f.sql}", f.params)
    key_sql, key_params = field_expr("decision_type")   # for --by / -c / --sort

Used by `query`, `stats --where`, `bottlenecks --where`, `traces --where` and
`check` rules, so that one expression means the same everywhere. Errors are
`agtrace.errors.ExpressionError` with the column of the first bad token.
"""

from agtrace.query.compiler import (
    FieldInfo, Filter, compile_ast, compile_filter, field_expr, field_info, field_numeric_expr,
)
from agtrace.query.fields import INTRINSICS, TRACE_FIELDS, Field, field_names
from agtrace.query.nodes import to_text
from agtrace.query.parser import parse, parse_field

__all__ = [
    "Field", "FieldInfo", "Filter", "INTRINSICS", "TRACE_FIELDS", "compile_ast", "compile_filter",
    "field_expr", "field_info", "field_names", "field_numeric_expr", "parse", "parse_field", "to_text",
]
