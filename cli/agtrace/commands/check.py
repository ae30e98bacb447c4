"""`agtrace check`: assertions over traces, as a CI gate.

Flag parsing and output only; rules, parsing and evaluation live in
`agtrace.analysis.check`, the JUnit writer in `agtrace.render.junit`. The
results are the command's data (stdout); warnings, and the GitHub Actions
annotations, go to stderr, where the Actions runner reads workflow commands
as well, so `--format json > results.json` stays clean JSON.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from agtrace.app import app
from agtrace.commands.common import DbOption, FormatOption, InputOption, err, open_for_analysis
from agtrace.errors import ExitCode, UsageError
from agtrace.render.output import OutputFormat, color_allowed, dumps, write_plain_table, write_rows

VERDICT_TEXT = {"pass": "PASS", "fail": "FAIL", "warn": "WARN"}
VERDICT_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow"}
ROW_COLUMNS = ["verdict", "name", "value", "op", "bound", "expect", "where", "of", "scope", "severity", "source", "note"]


@app.command(
    "check",
    help=(
        "Assert things about traces and fail the build when they do not hold (a CI gate).\n\n"
        "Rules come from a TOML file ([[rule]] tables with name, expect, and optional where, of, "
        "scope = \"span\"|\"trace\", severity = \"error\"|\"warn\", if_empty = \"pass\"|\"fail\", "
        "description) and/or from --expect. An assertion is MEASURE OP NUMBER with OP one of "
        "== != < <= > >=. Measures: count or count(FILTER); rate(FILTER of FILTER) (the share of the "
        "base set that matches); p50/p90/p95/p99/avg/min/max/sum(FIELD [where FILTER]); "
        "max_streak(FIELD) (the longest run of one value per agent, in time order); "
        "critical_share(FILTER) (share of the critical path spent in the matching spans). FILTER is "
        "the language of `agtrace query`.\n\n"
        "Exit status: 0 when every rule passes (warn rules may fail), 1 when a rule fails, 2 for a "
        "bad rules file or expression. --junit writes a JUnit XML report; under GitHub Actions "
        "failures are also printed as ::error annotations.\n\n"
        "A rule naming an attribute that no span in the store has (most likely a typo, such as "
        "decison_type) is reported on stderr with the rule's file:line and the closest known key, "
        "and in the JSON (unknown_fields) and JUnit output; it still passes, since an attribute can "
        "be absent from a run for good reasons. --strict makes such a rule fail.\n\n"
        "Examples:\n\n"
        # \b: click prints the examples as written, one per line, never re-wrapped
        "\b\n"
        "  agtrace check sample_traces/rules.toml -i sample_traces/\n"
        "  agtrace check --expect 'count(status = error) == 0' -i traces.jsonl\n"
        "  agtrace check --expect 'rate(decision_type = \"escalate_to_human\" of type = \"decision\") < 0.1'\n"
        "  agtrace check rules.toml --junit reports/agtrace.xml --format json"
    ),
)
def check_cmd(
    rules_file: Annotated[Optional[Path], typer.Argument(metavar="RULES", help="Rules file (TOML).", show_default=False)] = None,
    expect: Annotated[Optional[list[str]], typer.Option("--expect", "-e", metavar="ASSERTION", help="An assertion to check, such as 'count(status = error) == 0' (repeatable).", show_default=False)] = None,
    db: DbOption = None,
    inputs: InputOption = None,
    fmt: FormatOption = OutputFormat.table,
    junit: Annotated[Optional[Path], typer.Option("--junit", metavar="PATH", help="Also write the results as JUnit XML to PATH.", show_default=False)] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail a rule that names an attribute no span in the store has (by default a warning).")] = False,
) -> None:
    from agtrace.analysis.check import check, inline_rule, load_rules

    rules = load_rules(rules_file) if rules_file is not None else []
    rules += [inline_rule(text, i) for i, text in enumerate(expect or [], 1)]
    if not rules:
        raise UsageError("no rules to check", hint="give a rules file (agtrace check rules.toml) or --expect 'count(status = error) == 0'")
    store = open_for_analysis(db, inputs)
    report = check(store, rules, strict=strict)
    if report.spans == 0:
        err("warning: there are no spans to check" + (" in the input files" if inputs else " in the store"))
    for res in report.results:
        for u in res.unknown_fields:
            err(f"warning: {res.rule.source}: rule \"{res.rule.name}\": {u.text()}"
                + (" (--strict: the rule fails)" if strict and res.rule.severity != "warn" else ""))
    if junit is not None:
        from agtrace.render.junit import write_junit

        try:
            write_junit(report, junit, suite=str(rules_file) if rules_file is not None else "agtrace check")
        except OSError as exc:
            raise UsageError(f"cannot write the JUnit report {junit}: {exc.strerror or exc}") from None
    _write(report, fmt)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(report):
            err(line)
    if not report.ok:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def _write(report, fmt: OutputFormat) -> None:
    out = sys.stdout
    if fmt == OutputFormat.json:
        out.write(dumps(report.to_dict(), pretty=True) + "\n")
        return
    if fmt != OutputFormat.table:
        rows = [r.to_dict() for r in report.results]
        write_rows(rows, ROW_COLUMNS, fmt, out)
        return
    # --expect rules are named by their text: no RULE column when all rules are such.
    named = any(r.rule.file is not None for r in report.results)
    heads = ["RESULT", "RULE", "EXPECT", "MEASURED"] if named else ["RESULT", "EXPECT", "MEASURED"]
    rows = [[r.verdict] + ([r.rule.name] if named else []) + [r.rule.expect.text, r.measured]
            for r in report.results]
    if color_allowed(out):
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(show_edge=False, header_style="bold", pad_edge=False, box=None)
        for h in heads:
            table.add_column(h, overflow="fold")
        for verdict, *cells in rows:
            table.add_row(Text(VERDICT_TEXT[verdict], style=VERDICT_STYLE[verdict]), *(Text(c) for c in cells))
        console = Console(file=out)
        console.print(table)
        style = "bold red" if not report.ok else "green"
        console.print(Text(report.summary(), style=style))
        return
    write_plain_table(heads, [[VERDICT_TEXT[v], *cells] for v, *cells in rows], out)
    out.write(report.summary() + "\n")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(report) -> list[str]:
    """`::error` / `::warning` workflow commands for failed and warned rules.

    File rules carry file= and line=, so the annotation shows on the rule in
    the pull request's diff view.
    """
    lines = []
    for r in report.results:
        if r.verdict not in ("fail", "warn"):
            continue
        rule = r.rule
        props = []
        if rule.file:
            props.append(f"file={_escape_property(rule.file)}")
            if rule.line:
                props.append(f"line={rule.line}")
        props.append(f"title={_escape_property('agtrace check: ' + rule.name)}")
        kind = "error" if r.verdict == "fail" else "warning"
        lines.append(f"::{kind} {','.join(props)}::{_escape_data(r.message())}")
    return lines
