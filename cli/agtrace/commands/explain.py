"""`agtrace explain`: why an agent decided what it did, and what followed."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from agtrace.app import app
from agtrace.commands.common import DbOption, FormatOption, InputOption, err, open_for_analysis
from agtrace.errors import UsageError
from agtrace.render.output import OutputFormat, dumps, write_rows

# --format csv/tsv: one row per decision, its own fields (the nested sections
# - steps, chain, consequences - are json's).
CSV_COLUMNS = ["trace_id", "span_id", "name", "agent", "decision_type", "confidence", "reason_code", "reasoning",
               "start", "offset_ms", "duration_ms", "status", "error"]


@app.command(
    "explain",
    help=(
        "Explain decisions: what was decided, on what evidence, against which alternatives, "
        "because of what came before and with what consequences.\n\n"
        "With only a TRACE id (or unique prefix): every decision of the trace in time order "
        "(type, agent, confidence, reasoning) and the trace's outcome (final status, "
        "business_outcome, escalation_required, resolution_time_minutes).\n\n"
        "With a SPAN id (or --decision TYPE for the decisions of one type): the decision, its "
        "reasoning steps and alternatives (JSON-string, array, kvlist or event encodings), the "
        "reasoning iterations before it, the causal chain from the root (what each agent was "
        "handed and what it decided on the way), the tools the deciding agent called before "
        "deciding (for an agent span: the tools that agent called itself in that invocation, "
        "never its caller's), and what it caused: spans below it, spans whose triggered_by names it, the "
        "agent it delegated to, and spans of any loaded trace linking to it, each with its status.\n\n"
        "--format json prints an object with decision, reasoning_steps, alternatives, chain, "
        "tools_before, consequences and trace_outcome (a list of them with --decision; "
        "{decisions, trace_outcome} without a span). --format csv or tsv prints one row per "
        "decision (the trace's decisions, or the explained ones): trace_id, span_id, name, agent, "
        "decision_type, confidence, reason_code, reasoning, start, offset_ms, duration_ms, status, error.\n\n"
        "Examples:\n\n"
        # \b: click prints the examples as written, one per line, never re-wrapped
        "\b\n"
        "  agtrace explain 3c418e43\n"
        "  agtrace explain 3c418e43 acddea61\n"
        "  agtrace explain 684de17c --decision escalate --format json"
    ),
)
def explain_cmd(
    trace: Annotated[str, typer.Argument(metavar="TRACE", help="Trace id or unique prefix.", show_default=False)],
    span: Annotated[Optional[str], typer.Argument(metavar="SPAN", help="Decision span id or unique prefix; omit to list the trace's decisions.", show_default=False)] = None,
    decision: Annotated[Optional[str], typer.Option("--decision", help="Explain the trace's decisions of this decision_type.", show_default=False)] = None,
    db: DbOption = None,
    inputs: InputOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    from agtrace.analysis.explain import Explainer
    from agtrace.lookup import resolve_span_id, resolve_trace_id
    from agtrace.render import explain_view

    if span and decision:
        raise UsageError("give a span id or --decision, not both")
    store = open_for_analysis(db, inputs)
    trace_id = resolve_trace_id(store.con, trace)
    ex = Explainer(store.con)

    if span is None and decision is None:
        result = ex.summary(trace_id)
        if fmt == OutputFormat.table:
            explain_view.summary(result).write(sys.stdout)
        elif fmt in (OutputFormat.csv, OutputFormat.tsv):
            write_rows(result["decisions"], CSV_COLUMNS, fmt)
        else:
            sys.stdout.write(dumps(result, pretty=fmt == OutputFormat.json) + "\n")
        return

    span_ids = ex.of_type(trace_id, decision) if decision else [resolve_span_id(store.con, trace_id, span)]
    results = []
    for sid in span_ids:
        r = ex.explain(trace_id, sid)
        if not r["decision"]["is_decision"]:
            err(f"note: span {sid} ({r['decision']['name']}) is not a decision span (type {r['decision']['type']}); explaining it anyway")
        results.append(r)
    if fmt == OutputFormat.table:
        for i, r in enumerate(results):
            if i:
                sys.stdout.write("\n" + "=" * 72 + "\n\n")
            explain_view.explanation(r).write(sys.stdout)
    elif fmt in (OutputFormat.csv, OutputFormat.tsv):
        write_rows([r["decision"] for r in results], CSV_COLUMNS, fmt)
    elif fmt == OutputFormat.jsonl:
        for r in results:
            sys.stdout.write(dumps(r) + "\n")
    else:
        sys.stdout.write(dumps(results if decision else results[0], pretty=True) + "\n")
