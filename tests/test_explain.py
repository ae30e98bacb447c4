"""`agtrace explain`: decisions, their reasoning in every encoding, chain and consequences.

Own fixtures first (flat JSONL written to tmp_path and loaded with `agtrace load`):
trace a1.. is a triage -> billing delegation with tools, reasoning iterations,
a JSON-string/kvlist-array decision and an events-encoded one, a failing tool
downstream, and a span in trace b2.. linking to the decision; trace c3.. is a
decision with nothing recorded around it. Then the bundled samples.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest

from agtrace.analysis.explain import Span, alternatives, reasoning_steps
from agtrace.render.explain_view import Doc, explanation
from conftest import ROOT, SAMPLES, invoke

TA, TB, TC = "a1" * 16, "b2" * 16, "c3" * 16
D0, D1, D2 = "0000000000000007", "0000000000000008", "000000000000000c"


def _t(sec: float) -> str:
    return f"2024-03-01T09:00:{sec:06.3f}Z"


def _span(trace, sid, name, start, end, parent=None, attrs=None, status=None, **kw):
    d = {"trace_id": trace, "span_id": sid, "parent_span_id": parent, "name": name, "start": _t(start),
         "end": _t(end), "service": "support", "attributes": attrs or {}}
    if status:
        d["status"] = status
    d.update(kw)
    return d


STEPS_JSON = json.dumps([{"step": 1, "description": "Read the message", "result": "refund request", "evidence": "input"},
                         {"step": 2, "description": "Check the policy", "result": "billing owns refunds"}])

SPANS = [
    _span(TA, "0000000000000001", "support_workflow", 0, 10, status="ok",
          attrs={"workflow.name": "support", "business_outcome": "refunded", "escalation_required": False,
                 "resolution_time_minutes": 12}),
    _span(TA, "0000000000000002", "triage_agent.invoke", 0.1, 4, "0000000000000001",
          {"agent_name": "triage_agent", "input": "Customer wants a refund"}),
    _span(TA, "0000000000000003", "tool.lookup_customer", 0.2, 0.5, "0000000000000002",
          {"tool.name": "lookup_customer", "result_count": 3}),
    _span(TA, "0000000000000004", "tool.kb_search", 0.5, 0.9, "0000000000000002", {"tool.name": "kb_search"},
          status={"code": "error", "message": "kb unavailable"}),
    _span(TA, "0000000000000005", "reasoning_iteration_1", 1.0, 1.5, "0000000000000002",
          {"agent_name": "triage_agent", "iteration": 1, "reasoning": "Need the order history."}),
    _span(TA, "0000000000000006", "reasoning_iteration_2", 1.5, 2.0, "0000000000000002",
          {"agent_name": "triage_agent", "iteration": 2, "reasoning": "The order is refundable."}),
    _span(TA, D0, "agent.decision_point", 2.0, 2.1, "0000000000000002",
          {"agent_name": "triage_agent", "decision_type": "classify", "decision_confidence": 0.95,
           "reasoning": "It is a billing question."}),
    _span(TA, D1, "agent.decision_point", 2.2, 2.3, "0000000000000002",
          {"agent_name": "triage_agent", "decision_type": "delegate", "decision_confidence": "0.8",
           "reason_code": "billing_route", "reasoning": "Refunds are handled by billing.",
           "delegated_to": "billing_agent", "reasoning_steps": STEPS_JSON,
           "alternatives_considered": [{"decision": "answer_directly", "confidence": 0.15, "reason": "Triage cannot refund."}]}),
    # starts after the decision started: not a tool call "before deciding"
    _span(TA, "0000000000000009", "tool.late_lookup", 2.25, 2.6, "0000000000000002", {"tool.name": "late_lookup"}),
    # no triggered_by: reached through the decision's delegated_to
    _span(TA, "000000000000000a", "billing_agent.invoke", 4.1, 9.0, "0000000000000001",
          {"agent_name": "billing_agent", "context_from_parent": json.dumps({"customer": "C-1", "reason": "double charge"})}),
    _span(TA, "000000000000000b", "tool.issue_refund", 4.2, 4.7, "000000000000000a", {"tool.name": "issue_refund"},
          status={"code": "error", "message": "payment API 500"}),
    _span(TA, D2, "refund_decision", 5.0, 5.5, "000000000000000a",
          {"agent_name": "billing_agent", "decision_type": "refund", "decision_confidence": 0.66,
           "reasoning": "Retry the refund by hand."},
          events=[{"name": "reasoning_step", "time": _t(5.1),
                   "attributes": {"step": 1, "description": "Read the refund error", "result": "HTTP 500", "evidence": "issue_refund"}},
                  {"name": "reasoning_step", "time": _t(5.2),
                   "attributes": {"step": 2, "description": "Check the amount", "result": "under the manual limit"}},
                  {"name": "alternative_considered", "time": _t(5.3),
                   "attributes": {"decision": "escalate", "confidence": 0.3, "reason": "Amount is small."}}]),
    _span(TA, "000000000000000d", "tool.notify_customer", 9.1, 9.5, "0000000000000001",
          {"tool.name": "notify_customer", "triggered_by": D1}),
    _span(TB, "00000000000000b1", "audit.record", 11, 12, status="ok",
          links=[{"trace_id": TA, "span_id": D1, "attributes": {"link.kind": "caused_by"}}]),
    _span(TB, "00000000000000b2", "audit.write", 11.1, 11.9, "00000000000000b1",
          status={"code": "error", "message": "disk full"}),
    _span(TC, "00000000000000c1", "bare_workflow", 20, 21),
    _span(TC, "00000000000000c2", "decide", 20.1, 20.2, "00000000000000c1", {"decision_type": "noop"}),
    _span(TC, "00000000000000c3", "helper", 20.3, 20.4, "00000000000000c1"),
]


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """The fixture file, loaded once into a store of its own (passed with --db)."""
    d = tmp_path_factory.mktemp("explain")
    path, db = d / "fx.jsonl", d / "fx.duckdb"
    path.write_text("".join(json.dumps(s) + "\n" for s in SPANS))
    r = invoke(["load", "--db", db, path])
    assert r.exit_code == 0, r.stderr
    return path, db


def explain(fx, *args):
    return invoke(["explain", "--db", fx[1], *args])


def _json(fx, *args):
    r = explain(fx, *args, "--format", "json")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


# -- exact renders --------------------------------------------------------------------

D1_TEXT = '''\
Decision delegate  confidence 0.8
  span         agent.decision_point 0000000000000008 in trace a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1
  agent        triage_agent
  reason code  billing_route
  reasoning    Refunds are handled by billing.
  when         2024-03-01T09:00:02.200Z (+2.200s into the trace), took 100.0 ms
  status       unset
  also         delegated_to=billing_agent

Reasoning steps  (json_string)
  1. Read the message
     result: refund request
     evidence: input
  2. Check the policy
     result: billing owns refunds

Alternatives considered  (kvlist_array)
  answer_directly  0.15  Triage cannot refund.

Reasoning iterations before the decision: 2
  #1  reasoning_iteration_1  500.0 ms  Need the order history.
  #2  reasoning_iteration_2  500.0 ms  The order is refundable.

How it got here  (root first)
  support_workflow  [workflow]  0000000000000001  ok
    triage_agent.invoke  [agent triage_agent]  0000000000000002  unset
      input: Customer wants a refund
      triage_agent decided classify (0.95)  0000000000000007: It is a billing question.
      > this decision: delegate (0.8)

Tools triage_agent called before deciding  (2)
  tool.lookup_customer  300.0 ms  3 results  +0.200s
  tool.kb_search        400.0 ms             ERROR: kb unavailable

What it caused  (6 spans, 2 failed)
  billing_agent.invoke  [agent billing_agent]  000000000000000a  unset  <- delegated_to
    tool.issue_refund  [tool]  000000000000000b  ERROR: payment API 500
    refund_decision  [decision]  000000000000000c  unset
  tool.notify_customer  [tool]  000000000000000d  unset  <- triggered_by
  audit.record  [other]  00000000000000b1  ok  <- link  in trace b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2
    audit.write  [other]  00000000000000b2  ERROR: disk full  in trace b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2

Trace outcome
  support_workflow  a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1  status ok, 13 spans, 2 errors, 10.00 s
  business_outcome: refunded
  escalation_required: false
  resolution_time_minutes: 12
  failed: tool.kb_search 0000000000000004: kb unavailable
  failed: tool.issue_refund 000000000000000b: payment API 500
'''

C2_TEXT = '''\
Decision noop  confidence ?
  span         decide 00000000000000c2 in trace c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3
  agent        (no agent recorded)
  reason code  (not recorded)
  reasoning    (not recorded)
  when         2024-03-01T09:00:20.100Z (+0.100s into the trace), took 100.0 ms
  status       unset

Reasoning steps
  no reasoning steps recorded

Alternatives considered
  no alternatives recorded

Reasoning iterations before the decision: 0
  no reasoning_iteration_N spans recorded

How it got here  (root first)
  bare_workflow  [workflow]  00000000000000c1  unset
    > this decision: noop (?)

Tools the deciding agent called before deciding
  no tool calls by the deciding agent before the decision

What it caused
  no consequences recorded (no spans below it, triggered by it, delegated to or linking to it)

Trace outcome
  bare_workflow  c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3  status unset, 3 spans, 0 errors, 1.00 s
  no business outcome recorded (business_outcome, escalation_required, resolution_time_minutes)
'''

SUMMARY_TEXT = '''\
Decisions in trace a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1  support_workflow  (3)
  at       span              decision  agent          conf  reasoning
  +2.000s  0000000000000007  classify  triage_agent   0.95  It is a billing question.
  +2.200s  0000000000000008  delegate  triage_agent    0.8  Refunds are handled by billing.
  +5.000s  000000000000000c  refund    billing_agent  0.66  Retry the refund by hand.

Trace outcome
  support_workflow  a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1  status ok, 13 spans, 2 errors, 10.00 s
  business_outcome: refunded
  escalation_required: false
  resolution_time_minutes: 12
  failed: tool.kb_search 0000000000000004: kb unavailable
  failed: tool.issue_refund 000000000000000b: payment API 500
'''


def test_decision_renders_every_section_plain(fx):
    r = explain(fx, TA[:6], D1)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == D1_TEXT
    assert "\x1b[" not in r.stdout
    assert r.stderr == ""


def test_missing_pieces_are_shown_as_missing(fx):
    r = explain(fx, TC, "00000000000000c2")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == C2_TEXT


def test_trace_summary_lists_decisions_in_time_order_then_outcome(fx):
    r = explain(fx, TA[:4])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == SUMMARY_TEXT


# -- the documented JSON object ---------------------------------------------------------

def test_json_decision_reasoning_and_alternatives(fx):
    ex = _json(fx, TA, D1)
    assert list(ex) == ["decision", "reasoning_steps", "alternatives", "encodings", "reasoning_iterations", "chain",
                        "tools_before", "consequences", "consequences_truncated", "trace_outcome", "missing"]
    d = ex["decision"]
    assert (d["decision_type"], d["confidence"], d["reason_code"], d["reasoning"]) == (
        "delegate", 0.8, "billing_route", "Refunds are handled by billing.")
    assert (d["agent"], d["agent_span_id"], d["is_decision"], d["attributes"]) == (
        "triage_agent", "0000000000000002", True, {"delegated_to": "billing_agent"})
    assert ex["reasoning_steps"] == [
        {"step": 1, "description": "Read the message", "result": "refund request", "evidence": "input", "extra": None},
        {"step": 2, "description": "Check the policy", "result": "billing owns refunds", "evidence": None, "extra": None},
    ]
    assert ex["alternatives"] == [{"decision": "answer_directly", "confidence": 0.15, "reason": "Triage cannot refund.", "extra": None}]
    assert ex["encodings"] == {"reasoning_steps": "json_string", "alternatives": "kvlist_array"}
    assert [(i["iteration"], i["span_id"], i["reasoning"]) for i in ex["reasoning_iterations"]] == [
        (1, "0000000000000005", "Need the order history."), (2, "0000000000000006", "The order is refundable.")]
    assert ex["missing"] == []


def test_json_chain_and_tools_before(fx):
    ex = _json(fx, TA, D1)
    assert [(c["role"], c["span_id"], c["depth"]) for c in ex["chain"]] == [
        ("root", "0000000000000001", 0), ("agent", "0000000000000002", 1), ("decision", D0, 2), ("target", D1, 2)]
    assert ex["chain"][1]["passed_on"] == {"input": "Customer wants a refund"}
    assert ex["chain"][2]["relation"] == "earlier"
    assert [(t["tool"], t["result_count"], t["status"], t["error"]) for t in ex["tools_before"]] == [
        ("lookup_customer", 3, "unset", None), ("kb_search", None, "error", "kb unavailable")]


def test_json_consequences_follow_delegation_triggers_and_links_across_traces(fx):
    ex = _json(fx, TA, D1)
    got = [(c["trace_id"][:2], c["span_id"], c["via"], c["hops"], c["status"], c["error"]) for c in ex["consequences"]]
    assert got == [
        ("a1", "000000000000000a", ["delegated_to"], 1, "unset", None),
        ("a1", "000000000000000b", ["child"], 2, "error", "payment API 500"),
        ("a1", D2, ["child"], 2, "unset", None),
        ("a1", "000000000000000d", ["triggered_by"], 1, "unset", None),
        ("b2", "00000000000000b1", ["link"], 1, "ok", None),
        ("b2", "00000000000000b2", ["child"], 2, "error", "disk full"),
    ]
    assert ex["consequences_truncated"] is False
    o = ex["trace_outcome"]
    assert (o["status"], o["error_count"], o["outcome"]) == (
        "ok", 2, {"business_outcome": "refunded", "escalation_required": False, "resolution_time_minutes": 12})


def test_json_events_encoding_and_chain_through_the_delegating_decision(fx):
    ex = _json(fx, TA, D2)
    assert ex["encodings"] == {"reasoning_steps": "events", "alternatives": "events"}
    assert [(s["step"], s["description"], s["result"], s["evidence"]) for s in ex["reasoning_steps"]] == [
        (1, "Read the refund error", "HTTP 500", "issue_refund"), (2, "Check the amount", "under the manual limit", None)]
    assert ex["alternatives"] == [{"decision": "escalate", "confidence": 0.3, "reason": "Amount is small.", "extra": None}]
    assert [(c["role"], c["span_id"], c.get("relation")) for c in ex["chain"]] == [
        ("root", "0000000000000001", None), ("decision", D1, "triggered"), ("agent", "000000000000000a", None),
        ("target", D2, None)]
    assert ex["chain"][2]["delegated_by"] == D1
    assert ex["chain"][2]["passed_on"] == {"context_from_parent": {"customer": "C-1", "reason": "double charge"}}
    assert [(x["span_id"], x["via"]) for x in ex["chain"][1]["led_to"]] == [
        ("000000000000000a", ["delegated_to"]), ("000000000000000d", ["triggered_by"]), ("00000000000000b1", ["link"])]
    assert [(t["name"], t["error"]) for t in ex["tools_before"]] == [("tool.issue_refund", "payment API 500")]
    assert ex["missing"] == ["reason_code", "consequences"]


def test_json_missing_list(fx):
    ex = _json(fx, TC, "00000000000000c2")
    assert ex["missing"] == ["confidence", "reason_code", "reasoning", "reasoning_steps", "alternatives",
                             "tools_before", "consequences"]
    assert ex["trace_outcome"]["outcome"] == {}


def test_json_summary(fx):
    s = _json(fx, TA)
    assert [(d["span_id"], d["decision_type"], d["agent"], d["confidence"]) for d in s["decisions"]] == [
        (D0, "classify", "triage_agent", 0.95), (D1, "delegate", "triage_agent", 0.8), (D2, "refund", "billing_agent", 0.66)]
    assert [e["span_id"] for e in s["trace_outcome"]["errors"]] == ["0000000000000004", "000000000000000b"]


def test_decision_option_picks_one_type_case_insensitively(fx):
    out = _json(fx, TA, "--decision", "DELEGATE")
    assert isinstance(out, list) and [e["decision"]["span_id"] for e in out] == [D1]
    r = explain(fx, TA, "--decision", "delegate", "--format", "jsonl")
    assert r.exit_code == 0
    assert [json.loads(x)["decision"]["span_id"] for x in r.stdout.splitlines()] == [D1]
    r = explain(fx, TA, "--decision", "classify")
    assert r.stdout.startswith("Decision classify  confidence 0.95\n")


def test_input_files_without_a_store(fx):
    r = invoke(["explain", "-i", fx[0], TC[:8], "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert [d["decision_type"] for d in json.loads(r.stdout)["decisions"]] == ["noop"]


def test_csv_and_tsv_one_row_per_decision(fx):
    r = explain(fx, TA, "--format", "csv")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == [
        "trace_id,span_id,name,agent,decision_type,confidence,reason_code,reasoning,start,offset_ms,duration_ms,status,error",
        f"{TA},{D0},agent.decision_point,triage_agent,classify,0.95,,It is a billing question.,"
        "2024-03-01T09:00:02.000000000Z,2000,100,unset,",
        f"{TA},{D1},agent.decision_point,triage_agent,delegate,0.8,billing_route,Refunds are handled by billing.,"
        "2024-03-01T09:00:02.200000000Z,2200,100,unset,",
        f"{TA},{D2},refund_decision,billing_agent,refund,0.66,,Retry the refund by hand.,"
        "2024-03-01T09:00:05.000000000Z,5000,500,unset,",
    ]
    r = explain(fx, TA, D1, "--format", "tsv")
    assert r.stdout.splitlines()[1].split("\t")[:6] == [TA, D1, "agent.decision_point", "triage_agent", "delegate", "0.8"]
    assert len(r.stdout.splitlines()) == 2
    r = explain(fx, TA, "--decision", "delegate", "--format", "csv")
    assert [line.split(",")[1] for line in r.stdout.splitlines()[1:]] == [D1]
    help_text = " ".join(invoke(["explain", "--help"]).stdout.split())
    assert "--format csv or tsv prints one row per decision" in help_text


def test_non_decision_span_is_explained_with_a_note(fx):
    r = explain(fx, TC, "00000000000000c3")
    assert r.exit_code == 0
    assert r.stdout.startswith("Span helper  (type other, not a decision span)\n")
    assert "\n    > this span: helper\n" in r.stdout
    assert r.stderr == "note: span 00000000000000c3 (helper) is not a decision span (type other); explaining it anyway\n"


@pytest.mark.parametrize("args, message, hint", [
    ([TA, "--decision", "nope"], f"error: no 'nope' decision in trace {TA}", "hint: decision types in this trace: classify, delegate, refund"),
    ([TA, D1, "--decision", "delegate"], "error: give a span id or --decision, not both", None),
    (["ffff"], "error: no trace with id 'ffff' in the store", "hint: list the loaded traces with `agtrace traces`"),
    ([TA, "ffff"], f"error: no span with id 'ffff' in trace {TA}", None),
])
def test_user_mistakes_exit_2_with_a_message(fx, args, message, hint):
    r = explain(fx, *args)
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert lines[0] == message
    if hint:
        assert lines[1] == hint
    assert r.stdout == ""


# -- every encoding of reasoning steps and alternatives -----------------------------------

def _decision_span(attrs=None, events=None) -> Span:
    return Span(1, TA, D1, None, "agent.decision_point", "decision", "a", "a", "unset", None, 0, 1, 1,
                attrs or {}, events or [])


STEP = {"step": 1, "description": "Check", "result": "fine", "evidence": "doc"}
NORMAL_STEP = {**STEP, "extra": None}
ALT = {"decision": "reject", "confidence": 0.2, "reason": "no"}
NORMAL_ALT = {**ALT, "extra": None}


@pytest.mark.parametrize("attrs, events, encoding", [
    ({"reasoning_steps": json.dumps([STEP])}, None, "json_string"),
    ({"reasoning_steps": json.dumps(STEP)}, None, "json_string"),
    ({"reasoning_steps": [STEP]}, None, "kvlist_array"),
    ({"reasoning_steps": STEP}, None, "kvlist"),
    ({"reasoning_steps": {"steps": [STEP]}}, None, "kvlist"),
    ({"reasoning_steps": [json.dumps(STEP)]}, None, "string_array"),
    ({"reasoning_steps.0.step": 1, "reasoning_steps.0.description": "Check", "reasoning_steps.0.result": "fine",
      "reasoning_steps.0.evidence": "doc"}, None, "flattened"),
    ({}, [{"name": "reasoning_step", "time_ns": 5, "attributes": STEP}], "events"),
    ({}, [{"name": "reasoning_step", "time_ns": 5,
           "attributes": {"reasoning_step." + k: v for k, v in STEP.items()}}], "events"),
    ({"reasoning.steps": [{"index": 1.0, "thought": "Check", "observation": "fine", "source": "doc"}]}, None, "kvlist_array"),
])
def test_reasoning_step_encodings(attrs, events, encoding):
    assert reasoning_steps(_decision_span(attrs, events)) == ([NORMAL_STEP], encoding)


def test_reasoning_steps_text_and_combined_sources():
    assert reasoning_steps(_decision_span({"reasoning_steps": "looked it up"})) == (
        [{"step": 1, "description": "looked it up", "result": None, "evidence": None, "extra": None}], "text")
    assert reasoning_steps(_decision_span({"reasoning_steps": ["first", "second"]}))[0][1]["step"] == 2
    steps, enc = reasoning_steps(_decision_span({"reasoning_steps": [STEP]},
                                                [{"name": "reasoning_step", "attributes": {**STEP, "step": 2, "why": "x"}}]))
    assert enc == "kvlist_array+events"
    assert steps[1] == {**NORMAL_STEP, "step": 2, "extra": {"why": "x"}}
    assert reasoning_steps(_decision_span({"reasoning_steps": "[not json"}))[1] == "text"
    assert reasoning_steps(_decision_span({})) == ([], None)


@pytest.mark.parametrize("attrs, events, encoding", [
    ({"alternatives_considered": json.dumps([ALT])}, None, "json_string"),
    ({"alternatives_considered": [ALT]}, None, "kvlist_array"),
    ({"alternatives_considered": ALT}, None, "kvlist"),
    ({"alternatives_considered": [json.dumps(ALT)]}, None, "string_array"),
    ({"alternatives": [{"option": "reject", "score": "0.2", "rationale": "no"}]}, None, "kvlist_array"),
    ({"alternatives_considered.0.decision": "reject", "alternatives_considered.0.confidence": 0.2,
      "alternatives_considered.0.reason": "no"}, None, "flattened"),
    ({}, [{"name": "alternative_considered", "time_ns": 5, "attributes": ALT}], "events"),
])
def test_alternative_encodings(attrs, events, encoding):
    assert alternatives(_decision_span(attrs, events)) == ([NORMAL_ALT], encoding)


def test_plain_alternative_names():
    alts, enc = alternatives(_decision_span({"alternatives_considered": ["reject", "escalate"]}))
    assert enc == "string_array"
    assert [a["decision"] for a in alts] == ["reject", "escalate"]
    assert alts[0]["confidence"] is None


# -- rendering and layering ------------------------------------------------------------------

def test_colour_render_says_what_the_plain_render_says(fx):
    ex = _json(fx, TA, D1)
    doc = explanation(ex)
    buf = io.StringIO()
    doc.write(buf, color=True, width=400)
    coloured = buf.getvalue()
    assert "\x1b[" in coloured
    stripped = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert [ln.rstrip() for ln in stripped.splitlines()] == D1_TEXT.splitlines()


def test_doc_plain_has_no_trailing_blanks():
    doc = Doc()
    doc.line(1, "a", ("b", "bold"), "  ")
    doc.blank()
    doc.blank()
    doc.line(0, "c")
    assert doc.plain() == "  ab\n\nc\n"


def test_analysis_does_not_import_the_cli_libraries():
    code = "import sys, agtrace.analysis.explain; print(sorted(m for m in ('typer', 'rich', 'click') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT / "cli")}, check=True).stdout
    assert out.strip() == "[]"


# -- the bundled samples ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    if not (SAMPLES / "README.md").is_file():
        pytest.skip("sample_traces/ is not present")
    from agtrace.analysis.explain import Explainer
    from agtrace.ingest import load_paths
    from agtrace.store import Store

    store = Store.memory()
    load_paths(store, [str(SAMPLES)])
    yield Explainer(store.con)
    store.close()


APPROVALS = {  # the same decision shape, one per reasoning encoding
    "json_string": ("5f1aba75b4af2d081c70abf34cb187d1", "165c6274766a3066"),
    "kvlist_array": ("01bca9f6a7617710f1d77a0483ae3355", "f8c03e9ec50e7250"),
    "events": ("d2ec903163a035d182559a954738a142", "ed45493e4877daca"),
}


@pytest.mark.parametrize("encoding", list(APPROVALS))
def test_sample_approval_explains_fully(samples, encoding):
    trace, span = APPROVALS[encoding]
    ex = samples.explain(trace, span)
    assert ex["encodings"] == {"reasoning_steps": encoding, "alternatives": encoding}
    assert ex["decision"]["decision_type"] == "approve"
    assert len(ex["reasoning_steps"]) >= 2 and all(s["description"] and s["result"] for s in ex["reasoning_steps"])
    assert [s["step"] for s in ex["reasoning_steps"]] == list(range(1, len(ex["reasoning_steps"]) + 1))
    assert ex["alternatives"] and all(a["decision"] and isinstance(a["confidence"], float) for a in ex["alternatives"])
    assert [(c["role"], c["name"]) for c in ex["chain"]] == [
        ("root", "approval_workflow"), ("agent", "approval_agent.invoke"), ("target", "approval_decision")]
    assert [t["tool"] for t in ex["tools_before"]] == ["fetch_policy", "budget_check", "vendor_risk_lookup"]
    iterations = {"json_string": [1, 2], "kvlist_array": [1, 2, 3], "events": [1, 2]}[encoding]
    assert [i["iteration"] for i in ex["reasoning_iterations"]] == iterations
    assert [(c["name"], c["via"]) for c in ex["consequences"]] == [
        ("chat gpt-4o", ["child"]), ("tool.notify_requester", ["triggered_by"])]
    assert ex["trace_outcome"]["outcome"]["business_outcome"] == "approved"
    assert ex["missing"] == []


def test_sample_approval_json_string_steps_exactly(samples):
    ex = samples.explain(*APPROVALS["json_string"])
    assert [(s["step"], s["description"], s["evidence"]) for s in ex["reasoning_steps"]] == [
        (1, "Check the purchasing policy", "policy FIN-204 section 3.2"),
        (2, "Check the remaining budget", "budget_check"),
        (3, "Assess the vendor", "vendor_risk_lookup")]
    assert [(a["decision"], a["confidence"]) for a in ex["alternatives"]] == [("escalate_to_cfo", 0.07), ("reject", 0.02)]


COMPLAINT2 = "684de17cd74d815da919c386e43a1e9b"


def test_sample_complaint_chain_shows_the_failed_delegation_before_the_escalation(samples):
    ex = samples.explain(COMPLAINT2, "97d260299df86249")
    assert [(c["role"], c["span_id"], c.get("decision_type")) for c in ex["chain"]] == [
        ("root", "617ef0a37c5ba7e2", None),
        ("agent", "458221c9a0810246", None),
        ("decision", "f87a8ae8fceaf136", "classify"),
        ("decision", "bb4741acdc7137e5", "delegate"),
        ("agent", "9ccfb4c8fd71917f", None),
        ("decision", "0a2d12a5223cdbaf", "delegate"),
        ("target", "97d260299df86249", "escalate"),
    ]
    tech = ex["chain"][4]
    assert tech["passed_on"]["triggered_by"] == "bb4741acdc7137e5"
    assert tech["passed_on"]["context_from_parent"]["classification"] == "technical"
    led = ex["chain"][5]["led_to"]
    assert [(x["span_id"], x["status"], x["error"]) for x in led] == [
        ("d154b1c47bbf0ce7", "error", "incident lookup failed: TimeoutError")]
    assert [t["name"] for t in ex["tools_before"]] == ["tool.kb_search"]
    assert [(c["name"], c["via"]) for c in ex["consequences"]] == [("tool.page_oncall", ["triggered_by"])]
    assert "spans of delegated agent oncall_engineer" in ex["missing"]
    assert ex["trace_outcome"]["outcome"]["business_outcome"] == "escalated_to_oncall"


def test_sample_complaint_delegation_consequences_include_the_failures(samples):
    ex = samples.explain(COMPLAINT2, "bb4741acdc7137e5")
    errs = [(c["span_id"], c["error"]) for c in ex["consequences"] if c["status"] == "error"]
    assert errs == [("d154b1c47bbf0ce7", "incident lookup failed: TimeoutError"),
                    ("ebeaeb18dcd6aea0", "Incident API did not answer within 5000 ms")]
    first = ex["consequences"][0]
    assert (first["name"], first["via"], first["hops"]) == ("technical_agent.invoke", ["triggered_by", "delegated_to"], 1)
    assert ex["encodings"]["alternatives"] == "json_string"


def test_sample_inquiry_failed_ticket_downstream_of_the_escalation(samples):
    ex = samples.explain("3c418e432faf4f36199ebaa4cdf74602", "acddea61967bba23")
    assert [(c["span_id"], c["via"], c["status"]) for c in ex["consequences"]] == [
        ("b04890d35c0f45f4", ["triggered_by"], "unset"),
        ("beafcc8ef8b80b52", ["child"], "unset"),
        ("db316fd2f97e2863", ["triggered_by", "link"], "error"),
        ("e88aca76bfa5f2ab", ["triggered_by", "link"], "unset"),
    ]
    assert ex["consequences"][2]["error"] == "ticketing API returned 503 Service Unavailable"
    assert [(t["tool"], t["result_count"]) for t in ex["tools_before"]] == [("web_search", 4), ("kb_search", 1)]
    assert ex["encodings"]["alternatives"] == "kvlist_array"
    assert ex["missing"] == ["reasoning_steps"]
    assert ex["trace_outcome"]["outcome"] == {"business_outcome": "escalated", "escalation_required": True,
                                              "resolution_time_minutes": 142}


def test_sample_inquiry_render_shows_the_failure(samples, tmp_path):
    db = tmp_path / "s.duckdb"
    assert invoke(["load", "--db", db, SAMPLES / "customer_inquiry.otlp.jsonl"]).exit_code == 0
    r = invoke(["explain", "--db", db, "3c418e43", "acddea61"])
    assert r.exit_code == 0, r.stderr
    block = r.stdout.split("What it caused")[1].split("Trace outcome")[0]
    assert block == (
        "  (4 spans, 1 failed)\n"
        "  escalation_agent.invoke  [agent escalation_agent]  b04890d35c0f45f4  unset  <- triggered_by\n"
        "    llm.chat  [llm]  beafcc8ef8b80b52  unset\n"
        "    tool.create_ticket  [tool]  db316fd2f97e2863  ERROR: ticketing API returned 503 Service Unavailable  <- triggered_by, link\n"
        "    tool.create_ticket  [tool]  e88aca76bfa5f2ab  unset  <- triggered_by, link\n\n"
    )


def test_sample_summary_of_a_complaint(samples):
    s = samples.summary(COMPLAINT2)
    assert [(d["decision_type"], d["agent"]) for d in s["decisions"]] == [
        ("classify", "triage_agent"), ("delegate", "triage_agent"), ("delegate", "technical_agent"),
        ("escalate", "technical_agent")]
    assert s["trace_outcome"]["error_count"] == 2


# -- an agent span is its own scope ---------------------------------------------------------

TD = "d4" * 16


def test_agent_span_tools_are_its_own_not_its_callers(tmp_path):
    """Explaining a nested agent span lists the tools that agent called, not its caller's."""
    spans = [
        _span(TD, "00000000000000d1", "orchestrator_agent.invoke", 0, 10, attrs={"agent_name": "orchestrator_agent"}),
        _span(TD, "00000000000000d2", "tool.plan", 0.1, 0.5, "00000000000000d1", {"tool.name": "plan"}),
        _span(TD, "00000000000000d3", "research_agent.invoke", 1, 5, "00000000000000d1",
              {"agent_name": "research_agent"}),
        _span(TD, "00000000000000d4", "tool.web_search", 1.5, 2.5, "00000000000000d3",
              {"tool.name": "web_search", "result_count": 7}),
        _span(TD, "00000000000000d5", "reasoning_iteration_1", 2.5, 3, "00000000000000d3",
              {"iteration": 1, "reasoning": "Enough sources."}),
        # the caller's work after the nested agent: never the nested agent's
        _span(TD, "00000000000000d6", "tool.summarise", 6, 7, "00000000000000d1", {"tool.name": "summarise"}),
    ]
    path = tmp_path / "nested.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in spans))
    r = invoke(["explain", "-i", path, TD[:8], "00000000000000d3", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    ex = json.loads(r.stdout)
    assert ex["decision"]["agent_span_id"] == "00000000000000d3"
    assert [(t["tool"], t["result_count"]) for t in ex["tools_before"]] == [("web_search", 7)]
    assert [i["iteration"] for i in ex["reasoning_iterations"]] == [1]
    r = invoke(["explain", "-i", path, TD[:8], "00000000000000d3"])
    assert "\nTools research_agent called in this invocation  (1)\n  tool.web_search  1.00 s  7 results  +1.500s\n" in r.stdout
    # a decision-less tool span keeps the agent it runs in as its scope
    r = invoke(["explain", "-i", path, TD[:8], "00000000000000d6", "--format", "json"])
    assert [t["tool"] for t in json.loads(r.stdout)["tools_before"]] == ["plan"]
