"""Trace assertions for CI: rules, their parsing and their evaluation (`agtrace check`).

A rule selects spans (or, with `scope = "trace"`, traces) with the filter
language of `agtrace query` and asserts something about what it selected::

    [[rule]]
    name = "few escalations"
    where = 'decision_type = "escalate_to_human"'
    of = 'type = "decision"'
    expect = "rate < 0.10"

The assertion grammar is small and hand-parsed on top of the filter
language's lexer, so positions, strings and error carets behave exactly as
in a filter::

    assertion := measure cmp bound
    measure   := count [ "(" filter ")" ]
               | rate [ "(" filter [ "of" filter ] ")" ]
               | (p50|p90|p95|p99|avg|min|max|sum) "(" field [ "where" filter ] ")"
               | max_streak "(" field [ "where" filter ] ")"
               | critical_share [ "(" filter [ "of" filter ] ")" ]
    cmp       := == | = | != | < | <= | > | >=
    bound     := number | duration        (a duration only against a duration field)

A filter written inside the measure is and-ed with the rule's `where` (and
one after `of` with the rule's `of`), so `--expect 'count(status = error) == 0'`
and a file rule with `where = "status = error"` mean the same thing.

Definitions (the numbers a CI log shows must be checkable by hand):

* count: the selected spans; in trace scope, the traces with at least one
  selected span (no `where`: every trace).
* rate: selected / base, where the base is what `of` selects (default:
  everything) and "selected" means matching both `where` and `of`.
* p50..p99 are DuckDB's `quantile_cont` (linear interpolation between the
  closest ranks), as in `agtrace stats`; field values come from
  `agtrace.query.field_numeric_expr` (durations in ms, attributes' numbers).
  In trace scope the value is the trace's own field where there is one
  (`duration_ms`, `span_count`, `error_count`, ... read `trace.<name>`),
  else the root span's.
* max_streak: `agtrace.analysis.stats.streaks` (per agent, in time order,
  over the selected spans that carry the field); 0 when none do. Its detail
  names the agent, the repeated value and the run's first and last span.
* critical_share: the critical time of the selected spans over the total
  critical time of the base traces (every trace, or those with a span
  matching `of`), with the primary root of each trace, as `bottlenecks`
  aggregates it.
* A measure over nothing (a rate with an empty base, an aggregate with no
  values, critical_share with no traces) has no value; the rule then passes
  unless it says `if_empty = "fail"`. Float values are compared after
  rounding to 9 decimals, so float noise does not decide a verdict.

Errors are user errors with exit code 2: a rules file that is not TOML, or
whose rule is malformed, names the file and line (`rules.toml:12: rule
"no errors": expect: ...`); a bad expression in it shows the caret display.
"""

from __future__ import annotations

import difflib
import operator
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from agtrace.engine import duckdb

from agtrace.errors import AgtraceError, ExpressionError, InputError, UsageError
from agtrace.query import Filter, compile_filter, field_info, field_numeric_expr, parse_field
from agtrace.query import lexer as L

AGGREGATES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "avg": None, "min": None, "max": None, "sum": None}
FIELD_MEASURES = (*AGGREGATES, "max_streak")
FILTER_MEASURES = ("count", "rate", "critical_share")
MEASURES = (*FILTER_MEASURES, *FIELD_MEASURES)
BASE_MEASURES = ("rate", "critical_share")  # those that take `of`
TRACE_SCOPE_MEASURES = ("count", "rate", *AGGREGATES)

COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
               ">": operator.gt, ">=": operator.ge}

SCOPES = ("span", "trace")
SEVERITIES = ("error", "warn")
IF_EMPTY = ("pass", "fail")
RULE_KEYS = ("name", "expect", "where", "of", "scope", "severity", "if_empty", "description")
REQUIRED_KEYS = ("name", "expect")

PASS, FAIL, WARN = "pass", "fail", "warn"

MEASURES_HINT = ("measures: count, count(FILTER), rate(FILTER of FILTER), p50/p90/p95/p99/avg/min/max/sum(FIELD), "
                 "max_streak(FIELD), critical_share(FILTER)")
_NOT_FIELD_WORDS = {"and", "or", "not", "in", "contains", "startswith", "endswith"}
_TEXT_KINDS = ("string", "id", "enum")


# -- the assertion ---------------------------------------------------------------------


@dataclass(frozen=True)
class Assertion:
    """One parsed `expect`: `measure(field where ... of ...) op bound`.

    `where` / `of` are the filter texts written inside the measure ("" when
    none); `bound` is a number (a duration bound is already in ms).
    """

    text: str
    measure: str
    op: str
    bound: int | float
    field: str | None = None
    where: str = ""
    of: str = ""

    def compare(self, value) -> bool:
        return COMPARISONS[self.op](_rounded(value), self.bound)


def parse_assertion(text: str) -> Assertion:
    """Parse an assertion such as `rate(status = error of type = "tool") < 0.05`.

    The filters inside are checked by compiling them; raises ExpressionError
    (column relative to `text`).
    """
    toks = L.tokenize(text)
    first = toks[0]
    if first.kind == L.EOF:
        raise ExpressionError("expected an assertion, such as count == 0", text, 1, hint=MEASURES_HINT)
    measure = first.keyword if first.kind == L.WORD else None
    if measure not in MEASURES:
        what = f"'{first.text}'"
        close = difflib.get_close_matches((first.keyword or first.text).lower(), MEASURES, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else MEASURES_HINT
        raise ExpressionError(f"expected a measure, found {what}", text, first.pos, hint)
    i = 1
    fld, where, of = None, "", ""
    if toks[1].kind == L.LPAREN:
        close_i = _matching_paren(text, toks, 1)
        inner = toks[2:close_i]
        end = toks[close_i].pos
        if measure in FIELD_MEASURES:
            fld, where = _field_args(text, measure, inner, end)
        else:
            where, of = _filter_args(text, measure, inner, end)
        i = close_i + 1
    elif measure in FIELD_MEASURES:
        raise ExpressionError(f"{measure} needs a field", text, toks[1].pos,
                              hint=f"e.g. {measure}(duration_ms)" if measure != "max_streak"
                              else "e.g. max_streak(decision_type)")
    op_tok = toks[i]
    if op_tok.kind == L.RPAREN:
        raise ExpressionError("unbalanced parentheses: ')' without a matching '('", text, op_tok.pos)
    if op_tok.kind != L.OP or op_tok.text in ("=~", "!~"):
        hint = "write the comparison after the measure: count(status = error) == 0"
        if op_tok.text in ("=~", "!~"):
            hint = f"the bound is a number; a regular expression belongs in the filter: count(name {op_tok.text} \"...\")"
        if op_tok.kind == L.WORD and op_tok.keyword == "where":
            hint = f"put the filter inside the parentheses: {measure}(... where FILTER)" if measure in FIELD_MEASURES \
                else f"put the filter inside the parentheses: {measure}(FILTER)"
        raise ExpressionError(f"expected a comparison (== != < <= > >=) after '{_measure_text(text, toks, i)}'",
                              text, op_tok.pos, hint)
    op = "==" if op_tok.text == "=" else op_tok.text
    btok = toks[i + 1]
    if btok.kind == L.NUMBER:
        bound = btok.value
    elif btok.kind == L.DURATION:
        if measure not in AGGREGATES or field_info(fld).kind != "duration":
            target = f"{measure}({fld})" if fld else measure
            raise ExpressionError(f"{target} is not a duration; '{btok.text}' has a unit", text, btok.pos,
                                  hint="write a plain number")
        bound = btok.value / 1e6
        if float(bound).is_integer():
            bound = int(bound)
    else:
        raise ExpressionError(f"expected a number after '{op_tok.text}'", text, btok.pos,
                              hint="the bound is a number (or a duration such as 5s for a duration field)")
    rest = toks[i + 2]
    if rest.kind != L.EOF:
        raise ExpressionError(f"expected the end of the assertion, found {rest.describe()}", text, rest.pos,
                              hint="one comparison per assertion; write several rules for several bounds")
    return Assertion(text, measure, op, bound, fld, where, of)


def _measure_text(text: str, toks, i: int) -> str:
    end = toks[i].pos - 1 if i < len(toks) else len(text)
    return text[toks[0].pos - 1:end].strip()


def _matching_paren(text: str, toks, open_i: int) -> int:
    depth = 0
    for k in range(open_i, len(toks)):
        kind = toks[k].kind
        if kind == L.LPAREN:
            depth += 1
        elif kind == L.RPAREN:
            depth -= 1
            if depth == 0:
                return k
    raise ExpressionError("unbalanced parentheses: '(' is never closed", text, toks[open_i].pos)


def _ends_value(tok) -> bool:
    """Whether `tok` can end a condition (so a following `of` separates, not names a field)."""
    if tok.kind in (L.STRING, L.NUMBER, L.DURATION, L.BARE, L.RPAREN):
        return True
    return tok.kind == L.WORD and tok.keyword not in _NOT_FIELD_WORDS and tok.keyword != "of"


def _filter_args(text: str, measure: str, inner, end: int) -> tuple[str, str]:
    """`FILTER [of FILTER]` inside count/rate/critical_share(...)."""
    depth = 0
    sep = None
    for k, tok in enumerate(inner):
        if tok.kind == L.LPAREN:
            depth += 1
        elif tok.kind == L.RPAREN:
            depth -= 1
        elif depth == 0 and tok.keyword == "of" and k > 0 and _ends_value(inner[k - 1]):
            if measure not in BASE_MEASURES:
                raise ExpressionError(f"'of' does not apply to {measure}", text, tok.pos,
                                      hint="only rate(...) and critical_share(...) take a base set")
            if sep is not None:
                raise ExpressionError("'of' is given twice", text, tok.pos)
            sep = k
    if sep is None:
        return _check_filter(text, inner[0].pos if inner else end, end), ""
    where = _check_filter(text, inner[0].pos, inner[sep].pos)
    if sep + 1 >= len(inner):
        raise ExpressionError("expected a filter after 'of'", text, end)
    return where, _check_filter(text, inner[sep + 1].pos, end)


def _field_args(text: str, measure: str, inner, end: int) -> tuple[str, str]:
    """`FIELD [where FILTER]` inside an aggregate or max_streak(...)."""
    if not inner:
        raise ExpressionError(f"expected a field name inside {measure}(...)", text, end,
                              hint="e.g. p95(duration_ms), avg(decision_confidence), max_streak(decision_type)")
    ftok = inner[0]
    if ftok.kind != L.WORD:
        raise ExpressionError(f"expected a field name inside {measure}(...), found {ftok.describe()}", text, ftok.pos)
    fld = ftok.text
    try:
        info = field_info(fld)
    except ExpressionError as exc:
        raise _shifted(exc, text, ftok.pos) from None
    if measure in AGGREGATES and info.kind in _TEXT_KINDS + ("time",):
        what = "a time" if info.kind == "time" else "text"
        raise ExpressionError(f"{measure}() needs a number, and {fld} is {what}", text, ftok.pos,
                              hint="aggregate durations, counts or numeric attributes: "
                                   "duration_ms, input_tokens, decision_confidence, ...")
    if measure == "max_streak" and info.field.scope == "intrinsic" and info.field.name == "agent":
        raise ExpressionError("max_streak counts runs per agent, so its field cannot be agent", text, ftok.pos,
                              hint="e.g. max_streak(decision_type)")
    if len(inner) == 1:
        return fld, ""
    wtok = inner[1]
    if wtok.keyword != "where":
        raise ExpressionError(f"expected 'where' or ')' after the field, found {wtok.describe()}", text, wtok.pos,
                              hint=f"{measure}(FIELD) or {measure}(FIELD where FILTER)")
    if len(inner) == 2:
        raise ExpressionError("expected a filter after 'where'", text, end)
    return fld, _check_filter(text, inner[2].pos, end)


def _check_filter(text: str, start: int, end: int) -> str:
    """The filter text between columns start (inclusive) and end (exclusive), compiled to check it."""
    sub = text[start - 1:end - 1]
    try:
        compile_filter(sub)
    except ExpressionError as exc:
        raise _shifted(exc, text, start) from None
    return sub.strip()


def _shifted(exc: ExpressionError, text: str, start: int) -> ExpressionError:
    """An error about a part of `text` starting at column `start`, placed in `text`."""
    return ExpressionError(exc.message, text, start - 1 + max(exc.column, 1), exc.hint)


def _rounded(value):
    return round(value, 9) if isinstance(value, float) else value


# -- rules ----------------------------------------------------------------------------------


@dataclass
class Rule:
    """A named assertion with its selection; `source` says where it was written."""

    name: str
    expect: Assertion
    where: str = ""
    of: str = ""
    scope: str = "span"
    severity: str = "error"
    if_empty: str = "pass"
    description: str = ""
    file: str | None = None  # the rules file, None for --expect
    line: int | None = None  # line of the rule's name (or header) in the file

    @property
    def source(self) -> str:
        if self.file is None:
            return "--expect"
        return f"{self.file}:{self.line}" if self.line else self.file

    def selection(self) -> tuple[Filter, Filter]:
        """The compiled `where` and `of` filters, the rule's and the assertion's and-ed."""
        return (_both(self.where, self.expect.where), _both(self.of, self.expect.of))


def _both(a: str, b: str) -> Filter:
    return compile_filter(a).and_(compile_filter(b))


class RuleExpressionError(ExpressionError):
    """A bad expression inside a rule: the caret display, prefixed with where the rule is."""

    def __init__(self, location: str, exc: ExpressionError):
        super().__init__(exc.message, exc.expression, exc.column, exc.hint)
        self.location = location
        self.message = f"{location}: {exc.message}"

    def render(self) -> str:
        line = self.expression.replace("\n", " ").replace("\t", " ")
        caret = " " * (max(self.column, 1) - 1) + "^"
        return f"error: {self.message} at column {self.column}\n  {line}\n  {caret}"


def inline_rule(text: str, index: int = 1) -> Rule:
    """A rule from `--expect TEXT`, named after its text."""
    try:
        a = parse_assertion(text)
    except ExpressionError as exc:
        raise RuleExpressionError(f"--expect #{index}", exc) from None
    return Rule(name=text.strip(), expect=a)


def load_rules(path: str | Path) -> list[Rule]:
    """Read and check a rules file (TOML, `[[rule]]` tables). Raises UsageError / InputError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"rules file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a rules file") from None
    except OSError as exc:
        raise InputError(f"cannot read rules file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text (byte offset {exc.start})") from None
    return parse_rules(text, str(path))


_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_END = re.compile(r"\s*\(at end of document\)$")


def parse_rules(text: str, path: str = "rules.toml") -> list[Rule]:
    """Rules from the text of a rules file; `path` is only used in messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(str(exc), text, path) from None
    lines = _Lines(text)
    rules_key = [k for k in doc if k in ("rule", "rules")]
    for key in doc:
        if key not in ("rule", "rules"):
            close = difflib.get_close_matches(key, ["rule"], n=1, cutoff=0.6)
            raise UsageError(f"{path}:{lines.top(key)}: unknown top-level key '{key}'",
                             hint="rules are [[rule]] tables" + (f" (did you mean {close[0]}?)" if close else ""))
    if len(rules_key) > 1:
        raise UsageError(f"{path}:{lines.top('rules')}: both [[rule]] and [[rules]] are given", hint="use [[rule]]")
    if not rules_key:
        raise UsageError(f"{path}: no rules", hint='add rules as [[rule]] tables with name = "..." and expect = "..."')
    raw = doc[rules_key[0]]
    if not isinstance(raw, list) or not raw or not all(isinstance(r, dict) for r in raw):
        raise UsageError(f"{path}:{lines.top(rules_key[0])}: '{rules_key[0]}' must be a list of tables",
                         hint='write each rule as a [[rule]] table with name = "..." and expect = "..."')
    sections = lines.sections(len(raw))
    rules: list[Rule] = []
    seen: dict[str, int | None] = {}
    for i, r in enumerate(raw):
        sec = sections[i] if sections else lines.near(r.get("name"))
        rule = _make_rule(r, i, sec, path)
        if rule.name in seen:
            first = seen[rule.name]
            raise UsageError(f"{path}:{rule.line or '?'}: rule \"{rule.name}\": the name is used twice"
                             + (f" (first at line {first})" if first else ""),
                             hint="rule names are test case names in CI reports; make them unique")
        seen[rule.name] = rule.line
        rules.append(rule)
    return rules


def _make_rule(r: dict, i: int, sec: dict | None, path: str) -> Rule:
    def line_of(key: str | None) -> int | None:
        if sec is None:
            return None
        if key is not None and key in sec["keys"]:
            return sec["keys"][key]
        return sec["header"]

    name = r.get("name")
    label = f'rule "{name}"' if isinstance(name, str) and name.strip() else f"rule {i + 1}"

    def fail(key: str | None, message: str, hint: str | None = None) -> UsageError:
        line = line_of(key)
        where = f"{path}:{line}" if line else path
        return UsageError(f"{where}: {label}: {message}", hint=hint)

    for key in r:
        if key not in RULE_KEYS:
            close = difflib.get_close_matches(key, RULE_KEYS, n=1, cutoff=0.6)
            raise fail(key, f"unknown key '{key}'",
                       hint=f"did you mean {close[0]}?" if close else "rule keys: " + ", ".join(RULE_KEYS))
    for key in REQUIRED_KEYS:
        if key not in r:
            raise fail(None, f"missing '{key}'",
                       hint='every rule needs name = "..." and expect = "..." (e.g. expect = "count == 0")')
    for key, value in r.items():
        if not isinstance(value, str):
            raise fail(key, f"{key} must be a string, not {_toml_type(value)}",
                       hint=f"quote it: {key} = '...'")
    if not name.strip():
        raise fail("name", "name is empty")
    for key, allowed in (("scope", SCOPES), ("severity", SEVERITIES), ("if_empty", IF_EMPTY)):
        if key in r and r[key] not in allowed:
            close = difflib.get_close_matches(r[key], allowed, n=1, cutoff=0.5)
            raise fail(key, f"{key} must be one of {', '.join(allowed)}, not \"{r[key]}\"",
                       hint=f'did you mean {key} = "{close[0]}"?' if close else None)

    def located(key: str) -> str:
        line = line_of(key)
        return f"{path}:{line}: {label}: {key}" if line else f"{path}: {label}: {key}"

    try:
        a = parse_assertion(r["expect"])
    except ExpressionError as exc:
        raise RuleExpressionError(located("expect"), exc) from None
    for key in ("where", "of"):
        try:
            compile_filter(r.get(key, ""))
        except ExpressionError as exc:
            raise RuleExpressionError(located(key), exc) from None
    scope = r.get("scope", "span")
    if r.get("of", "").strip() and a.measure not in BASE_MEASURES:
        raise fail("of", f"'of' does not apply to {a.measure}", hint="only rate and critical_share take a base set")
    if scope == "trace" and a.measure not in TRACE_SCOPE_MEASURES:
        raise fail("scope", f"{a.measure} works on spans, not in scope = \"trace\"",
                   hint="trace scope takes count, rate and p50/p90/p95/p99/avg/min/max/sum")
    return Rule(
        name=name.strip(), expect=a, where=r.get("where", "").strip(), of=r.get("of", "").strip(), scope=scope,
        severity=r.get("severity", "error"), if_empty=r.get("if_empty", "pass"),
        description=r.get("description", "").strip(), file=path, line=line_of("name"),
    )


def _toml_type(v) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "a table"}.get(
        type(v), type(v).__name__)


def _toml_error(message: str, text: str, path: str) -> UsageError:
    m = _TOML_POS.search(message)
    lines = text.splitlines()
    if m:
        line, col = int(m.group(1)), int(m.group(2))
        what = message[:m.start()]
    else:
        line, col = max(len(lines), 1), None
        what = _TOML_END.sub("", message)
    shown = lines[line - 1] if 0 < line <= len(lines) else ""
    detail = f"{path}:{line}: not valid TOML: {what[:1].lower()}{what[1:]}"
    if col is not None:
        detail += f" at column {col}"
        shown = shown.replace("\t", " ")
        detail += f"\n  {shown}\n  {' ' * (col - 1)}^"
    hint = None
    if "Invalid value" in what:
        hint = "strings need quotes: expect = \"count == 0\"; use 'single quotes' around text with \"double quotes\""
    return UsageError(detail, hint=hint)


class _Lines:
    """Where keys and [[rule]] tables are in the file text, for messages.

    tomllib gives values without positions, so this scans the lines: table
    headers start sections and `key =` lines are noted per section. Text
    inside multi-line strings could fool it; a message would then only point
    at a nearby line.
    """

    _HEADER = re.compile(r"""^\s*\[\[\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_.-]+))\s*\]\]""")
    _TABLE = re.compile(r"""^\s*\[\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_.-]+))\s*\]""")
    _KEY = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(?:\.|=)""")

    def __init__(self, text: str):
        self.top_keys: dict[str, int] = {}
        self.text_lines = text.splitlines()
        self.rule_sections: list[dict] = []
        current: dict | None = None
        for n, line in enumerate(text.splitlines(), 1):
            m = self._HEADER.match(line) or self._TABLE.match(line)
            if m:
                name = next(g for g in m.groups() if g is not None)
                self.top_keys.setdefault(name.split(".")[0], n)
                current = {"header": n, "keys": {}}
                if m.re is self._HEADER and name in ("rule", "rules"):
                    self.rule_sections.append(current)
                continue
            m = self._KEY.match(line)
            if m:
                key = next(g for g in m.groups() if g is not None)
                target = self.top_keys if current is None else current["keys"]
                target.setdefault(key, n)

    def top(self, key: str) -> int | str:
        return self.top_keys.get(key, "?")

    def sections(self, n: int) -> list[dict] | None:
        return self.rule_sections if len(self.rule_sections) == n else None

    def near(self, name) -> dict | None:
        """For rules not written as [[rule]] tables: the first line quoting the rule's name."""
        if not isinstance(name, str) or not name:
            return None
        for quoted in (f'"{name}"', f"'{name}'"):
            for n, line in enumerate(self.text_lines, 1):
                if quoted in line:
                    return {"header": n, "keys": {}}
        return None


# -- evaluation -----------------------------------------------------------------------------


@dataclass
class RuleResult:
    """The outcome of one rule: the measured value, the verdict and what it rests on.

    `detail` holds the figures behind the value (rate: matched and base
    counts; aggregates: how many values; max_streak: the agent and the
    run's first and last span; critical_share: the critical times).
    """

    rule: Rule
    value: int | float | None
    verdict: str
    detail: dict = field(default_factory=dict)
    note: str | None = None
    seconds: float = 0.0
    unknown_fields: list["UnknownField"] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    @property
    def measured(self) -> str:
        """The value with its context, as one line of text (tables, JUnit, annotations)."""
        if self.value is None:
            return f"no value ({self.note})" if self.note else "no value"
        text = format_value(self.value)
        d = self.detail
        m = self.rule.expect.measure
        unit = "traces" if self.rule.scope == "trace" else "spans"
        if m == "count":
            text += f" {unit if self.value != 1 else unit[:-1]}"
        elif m == "rate":
            text += f" ({d['matched']} of {d['base']} {unit})"
        elif m in AGGREGATES:
            if field_info(self.rule.expect.field).kind == "duration":
                text += " ms"
            text += f" ({d['values']} value{'s' if d['values'] != 1 else ''})"
        elif m == "max_streak" and d.get("agent") is not None:
            text += f" ({d['agent']}: {d['streak_value']!s})"
        elif m == "critical_share":
            text += f" ({format_value(d['critical_ms'])} of {format_value(d['total_critical_ms'])} ms)"
        return text

    def message(self) -> str:
        """`rule: expect -- measured X`, for failure reports."""
        text = f"{self.rule.expect.text}: measured {self.measured}"
        for u in self.unknown_fields:
            text += f"; {u.text()}"
        return text

    def to_dict(self) -> dict:
        r = self.rule
        a = r.expect
        return {
            "name": r.name, "verdict": self.verdict, "value": _json_number(self.value), "op": a.op,
            "bound": a.bound, "expect": a.text, "measure": a.measure, "field": a.field,
            "where": _join_text(r.where, a.where), "of": _join_text(r.of, a.of), "scope": r.scope,
            "severity": r.severity, "if_empty": r.if_empty, "description": r.description or None,
            "source": r.source, "file": r.file, "line": r.line,
            "detail": {k: _json_number(v) for k, v in self.detail.items()}, "note": self.note,
            "unknown_fields": [u.to_dict() for u in self.unknown_fields],
        }


@dataclass
class CheckReport:
    results: list[RuleResult]
    spans: int = 0
    traces: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if r.verdict == FAIL]

    @property
    def warnings(self) -> list[RuleResult]:
        return [r for r in self.results if r.verdict == WARN]

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict:
        return {"rules": len(self.results), "passed": sum(r.verdict == PASS for r in self.results),
                "failed": len(self.failed), "warnings": len(self.warnings)}

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c['failed']} failed", f"{c['warnings']} warning{'s' if c['warnings'] != 1 else ''}",
                 f"{c['passed']} passed"]
        return (f"{'FAILED' if c['failed'] else 'OK'}: " + ", ".join(parts)
                + f" ({c['rules']} rule{'s' if c['rules'] != 1 else ''}, {self.spans} spans in {self.traces} traces)")

    def to_dict(self) -> dict:
        return {"ok": self.ok, "summary": self.counts(), "spans": self.spans, "traces": self.traces,
                "rules": [r.to_dict() for r in self.results]}


def check(store, rules: list[Rule], strict: bool = False) -> CheckReport:
    """Evaluate every rule against the store; the order of `rules` is kept.

    Each result lists the attribute fields its rule names that no span (or
    resource) in the store has (`unknown_fields`): most likely a typo, which
    would otherwise pass silently (`count(decison_type = "x") == 0`). They are
    reported, not failed, by default: an attribute can be legitimately absent
    from a run (`count(exists(error.type)) == 0` on a run without errors).
    With `strict`, a rule naming an unknown field fails (warns, for a
    severity "warn" rule) whatever its measured value.
    """
    t0 = time.perf_counter()
    con = store.con
    spans, traces = con.execute("SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM traces)").fetchone()
    results = [evaluate(store, r) for r in rules]
    if spans:
        known = _KnownKeys(con)
        for res in results:
            res.unknown_fields = unknown_fields(res.rule, known)
            if strict and res.unknown_fields and res.verdict == PASS:
                res.verdict = WARN if res.rule.severity == "warn" else FAIL
    return CheckReport(results, spans, traces, time.perf_counter() - t0)


# -- fields no span has --------------------------------------------------------------------


@dataclass(frozen=True)
class UnknownField:
    """An attribute field a rule names that no span in the store has, and the nearest known key."""

    field: str  # as the rule writes it (its canonical label)
    suggestion: str | None = None

    def text(self) -> str:
        return f"no span has the field {self.field!r}" + (
            f" (did you mean {self.suggestion}?)" if self.suggestion else "")

    def to_dict(self) -> dict:
        return {"field": self.field, "did_you_mean": self.suggestion}


class _KnownKeys:
    """Attribute keys present in the store, looked up once per key."""

    def __init__(self, con):
        self.con = con
        self._has: dict[tuple[str, str], bool] = {}
        self._all: list[str] | None = None

    def has(self, scope: str, key: str) -> bool:
        k = (scope, key)
        if k not in self._has:
            span_sql = "EXISTS (SELECT 1 FROM attrs WHERE key = ?)"
            res_sql = "EXISTS (SELECT 1 FROM resource_attrs WHERE key = ?)"
            if scope == "span":
                sql, params = span_sql, [key]
            elif scope == "resource":
                sql, params = res_sql, [key]
            else:
                sql, params = f"{span_sql} OR {res_sql}", [key, key]
            self._has[k] = bool(self.con.execute(f"SELECT {sql}", params).fetchone()[0])
        return self._has[k]

    def closest(self, key: str) -> str | None:
        if self._all is None:
            from agtrace.query import field_names

            rows = self.con.execute("SELECT DISTINCT key FROM attrs UNION SELECT DISTINCT key FROM resource_attrs").fetchall()
            self._all = sorted({r[0] for r in rows if r[0] is not None} | set(field_names()))
        hits = difflib.get_close_matches(key, self._all, n=1, cutoff=0.75)
        return hits[0] if hits else None


def rule_fields(rule: Rule) -> list:
    """Every field a rule names: in its where/of filters and the assertion's FIELD, in order."""
    from agtrace.query import nodes as N

    out = []
    stack = [f.ast for f in rule.selection() if f.ast is not None][::-1]
    while stack:
        n = stack.pop()
        if isinstance(n, (N.Compare, N.InList, N.Exists)):
            out.append(n.field)
        elif isinstance(n, (N.Structural, N.Not)):
            stack.append(n.expr)
        elif isinstance(n, (N.And, N.Or)):
            stack.extend(reversed(n.items))
    if rule.expect.field:
        out.append(parse_field(rule.expect.field))
    return out


def unknown_fields(rule: Rule, known: _KnownKeys) -> list[UnknownField]:
    """The rule's attribute fields that no span or resource in the store has."""
    out: list[UnknownField] = []
    seen = set()
    for f in rule_fields(rule):
        if not f.is_attribute:
            continue
        scope = {"span": "span", "resource": "resource"}.get(f.scope, "any")
        if (scope, f.name) in seen or known.has(scope, f.name):
            continue
        seen.add((scope, f.name))
        out.append(UnknownField(f.label(), known.closest(f.name)))
    return out


def evaluate(store, rule: Rule) -> RuleResult:
    """Measure one rule and judge it."""
    t0 = time.perf_counter()
    where, of = rule.selection()
    a = rule.expect
    try:
        if a.measure == "count":
            value, detail, note = _count(store.con, rule.scope, where), {}, None
        elif a.measure == "rate":
            value, detail, note = _rate(store.con, rule.scope, where, of)
        elif a.measure in AGGREGATES:
            value, detail, note = _aggregate(store.con, rule.scope, a.measure, a.field, where)
        elif a.measure == "max_streak":
            value, detail, note = _max_streak(store.con, a.field, where)
        else:
            value, detail, note = _critical_share(store, where, of)
    except AgtraceError as exc:
        raise UsageError(f"{rule.source}: rule \"{rule.name}\": {exc.message}", hint=exc.hint) from None
    except duckdb.Error as exc:  # a bug, but CI must not read it as "the check failed" (exit 1)
        raise AgtraceError(f"{rule.source}: rule \"{rule.name}\" could not be evaluated: {exc}") from None
    if value is None:
        ok = rule.if_empty == "pass"
    else:
        ok = a.compare(value)
    verdict = PASS if ok else (WARN if rule.severity == "warn" else FAIL)
    return RuleResult(rule, value, verdict, detail, note, time.perf_counter() - t0)


def _trace_match(flt: Filter) -> tuple[str, list]:
    if flt.is_trivial:
        return "TRUE", []
    return f"t.trace_id IN (SELECT s.trace_id FROM spans s WHERE {flt.sql})", list(flt.params)


def _count(con, scope: str, where: Filter) -> int:
    if scope == "trace":
        cond, params = _trace_match(where)
        return con.execute(f"SELECT count(*) FROM traces t WHERE {cond}", params).fetchone()[0]
    return con.execute(f"SELECT count(*) FROM spans s WHERE {where.sql}", list(where.params)).fetchone()[0]


def _rate(con, scope: str, where: Filter, of: Filter):
    if scope == "trace":
        hit, hp = _trace_match(where)
        base, bp = _trace_match(of)
        sql = f"SELECT count(*) FILTER (WHERE {hit}), count(*) FROM traces t WHERE {base}"
    else:
        hit, hp, base, bp = where.sql, list(where.params), of.sql, list(of.params)
        sql = f"SELECT count(*) FILTER (WHERE {hit}), count(*) FROM spans s WHERE {base}"
    matched, total = con.execute(sql, hp + bp).fetchone()
    detail = {"matched": matched, "base": total}
    if total == 0:
        unit = "traces" if scope == "trace" else "spans"
        return None, detail, f"no {unit} in the base set" + ("" if of.is_trivial else f" ({of.text})")
    return matched / total, detail, None


def _trace_field(name: str) -> str:
    """In trace scope, a bare name of a trace field (duration_ms, span_count, ...) means the trace's."""
    f = parse_field(name)
    from agtrace.query import TRACE_FIELDS

    if f.up == 0 and f.scope in ("intrinsic", "attr") and f.name in TRACE_FIELDS and not name.startswith("."):
        return "trace." + f.name
    return name


def _aggregate(con, scope: str, measure: str, name: str, where: Filter):
    q = AGGREGATES[measure]
    fname = _trace_field(name) if scope == "trace" else name
    expr, ep = field_numeric_expr(fname)
    agg = f"quantile_cont(v, {q!r})" if q is not None else f"{measure}(v)"
    if scope == "trace":
        cond, wp = _trace_match(where)
        inner = (f"SELECT CAST({expr} AS DOUBLE) AS v, t.trace_id AS tid, NULL AS sid_ FROM traces t "
                 f"JOIN spans s ON s.trace_id = t.trace_id AND s.span_id = t.root_span_id WHERE {cond} "
                 f"QUALIFY row_number() OVER (PARTITION BY t.trace_id ORDER BY s.sid) = 1")
    else:
        cond, wp = where.sql, list(where.params)
        inner = f"SELECT CAST({expr} AS DOUBLE) AS v, s.trace_id AS tid, s.span_id AS sid_ FROM spans s WHERE {cond}"
    extra = ""
    if measure in ("min", "max"):
        fn = "arg_max" if measure == "max" else "arg_min"
        extra = f", {fn}(tid, v), {fn}(sid_, v)"
    row = con.execute(f"SELECT {agg}, count(v){extra} FROM ({inner}) x", ep + wp).fetchone()
    value, n = row[0], row[1]
    detail: dict = {"values": n}
    if measure in ("min", "max") and n:
        detail["trace_id"] = row[2]
        if scope != "trace":
            detail["span_id"] = row[3]
    if n == 0 or value is None:
        unit = "traces" if scope == "trace" else "spans"
        return None, detail, f"no {name} values in the selected {unit}"
    return _clean_number(value), detail, None


def _max_streak(con, name: str, where: Filter):
    from agtrace.analysis.stats import streaks

    res = streaks(con, [name], where=where)
    best = None
    for row in res.rows:  # first of the longest, in the order streaks gives
        if best is None or row["streak"] > best["streak"]:
            best = row
    if best is None:
        return 0, {"agent": None}, None
    label = res.columns[1]
    detail = {"agent": best["agent"], "streak_value": best.get(label), "total": best["total"],
              "start_trace_id": best["start_trace_id"], "start_span_id": best["start_span_id"],
              "end_trace_id": best["end_trace_id"], "end_span_id": best["end_span_id"]}
    return best["streak"], detail, None


def _critical_share(store, where: Filter, of: Filter):
    """Critical time of the spans matching `where` / total critical time of the base traces."""
    from agtrace.analysis.bottlenecks import WAIT_SQL, BottleneckAccumulator, iter_traces
    from agtrace.analysis.critical_path import TraceColumns, gc_paused

    acc = BottleneckAccumulator("selected")
    select = (f"s.span_id, s.parent_span_id, s.kind, s.start_ns, s.end_ns, "
              f"coalesce(({where.sql}), false) AS grp, {WAIT_SQL} AS is_wait")
    base_sql = None if of.is_trivial else of.sql
    params = list(where.params) + list(of.params)
    with gc_paused():
        for trace_id, (ids, parents, kinds, starts, ends, grp, waits) in iter_traces(
                store, select, base_sql, params):
            cols = TraceColumns(ids, parents, starts, ends, kinds, waits=waits)
            cols.normalise()
            acc.add(trace_id, cols, grp)
    crit = acc.critical.get(True, 0)
    total = acc.total
    detail = {"critical_ms": round(crit / 1e6, 3), "total_critical_ms": round(total / 1e6, 3),
              "traces": acc.traces, "failed_traces": len(acc.failures)}
    if total <= 0:
        return None, detail, "no trace with a critical path to measure"
    return crit / total, detail, None


# -- values ---------------------------------------------------------------------------------


def _clean_number(v):
    if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 53:
        return int(v)
    return v


def _json_number(v):
    if isinstance(v, float):
        return round(v, 9)
    return v


def format_value(v) -> str:
    """A measured value for people: ints as they are, small floats to 4 decimals."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != 0 and abs(v) < 0.001:
            return f"{v:.3g}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def _join_text(a: str, b: str) -> str | None:
    parts = [p for p in (a, b) if p]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return f"({parts[0]}) and ({parts[1]})"
