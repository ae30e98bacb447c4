"""`agtrace show`: golden renderings, messy traces, the JSON tree, id lookup.

Goldens live in tests/golden/show_*.txt; regenerate them after an intended
change with `AGTRACE_UPDATE_GOLDEN=1 pytest tests/test_show.py` and review
the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from conftest import ROOT, SAMPLES, invoke

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("AGTRACE_UPDATE_GOLDEN") == "1"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

MR1 = "592ff49b07831bad230d50eb08dd0a54"  # market research trace 1 (fan-out)
MR1_SENTIMENT = "a5068b34e34d1cd0"
COMPLAINT2 = "684de17cd74d815da919c386e43a1e9b"  # two error spans
INQUIRY5 = "3c418e432faf4f36199ebaa4cdf74602"  # failing ticket call, links
APPROVAL_EVENTS = "d2ec903163a035d182559a954738a142"  # reasoning as events
SAMPLE_FILES = ["market_research.jsonl", "complaint_handling.console.txt", "customer_inquiry.otlp.jsonl",
                "approval.otlp.json"]

MESSY = "aaaa0000000000000000000000000001"
MESSY_TWIN = "aaaa0000000000000000000000000002"
BASE_NS = 1_705_313_700_000_000_000  # 2024-01-15T10:15:00Z
MS = 1_000_000


ROW = re.compile(r"^([* ])([✗ ]) ((?:\[\d+\] *)?(?:│  |   )*(?:[├└]─ )?)([◎●✦▸◆·≡?]) (\S+)")


def body_lines(out: str) -> list[str]:
    """The lines below the column headings (`span ... duration ├───┤`)."""
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if re.match(r"^ {3}span +duration  ├", ln))
    return lines[head + 1:]


def name_column(out: str) -> list[str]:
    """The name column (tree, glyph, name, facts) of every line below the headings."""
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if re.match(r"^ {3}span +duration  ├", ln))
    end = lines[head].index("duration") - 1
    return [ln[3:end].rstrip() for ln in lines[head + 1:]]


def span_rows(out: str) -> list[tuple[str, str, str, str, str]]:
    """(critical mark, error mark, guides, glyph, name) of every row below the ruler."""
    return [m.groups() for m in map(ROW.match, body_lines(out)) if m]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with AGTRACE_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def show(db, *args):
    return invoke(["show", "--db", db, *args])


def show_ok(db, *args) -> str:
    r = show(db, *args)
    assert r.exit_code == 0, r.stderr
    return r.stdout


# -- stores --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("show_samples") / "samples.duckdb"
    r = invoke(["load", "--db", db, *[SAMPLES / f for f in SAMPLE_FILES]])
    assert r.exit_code == 0, r.stderr
    return db


def _span(sid, parent, name, start_ms, end_ms, trace=MESSY, **kw):
    d = {"trace_id": trace, "span_id": sid, "parent_span_id": parent, "name": name,
         "start": BASE_NS + start_ms * MS, "end": BASE_NS + end_ms * MS, "service": "messy"}
    d.update(kw)
    return d


def messy_spans() -> list[dict]:
    """Orphans, several roots, a parent cycle, a self-parent, a wide fan-out,
    long values, wide characters and control characters."""
    rows = [
        _span("0000000000000001", None, "root_workflow", 0, 1000),
        _span("0000000000000002", "0000000000000001", "planner_agent.invoke", 10, 300,
              attributes={"agent_name": "planner_agent", "agent_version": "1.0"}),
        _span("0000000000000003", "0000000000000099", "orphan.task", 400, 600),
        _span("0000000000000004", "0000000000000099", "orphan.task2", 450, 700, status="error",
              status_message="boom\nsecond line \x1b[31mred"),
        _span("0000000000000005", "0000000000000006", "loop.a", 100, 200),
        _span("0000000000000006", "0000000000000005", "loop.b", 90, 210),
        _span("0000000000000007", "0000000000000001", "tool.search", 310, 900,
              attributes={"tool.name": "search", "result_count": 3, "query": "x" * 300}),
        _span("0000000000000008", "0000000000000001", "agent.decision_point", 905, 910,
              attributes={"decision_type": "go", "decision_confidence": 0.5, "reasoning": "because " * 40}),
        _span("0000000000000009", "0000000000000001", "名前の長いスパン", 920, 990),
        _span("000000000000000a", "0000000000000077", "lonely.orphan", 950, 960),
    ]
    for i in range(30):
        rows.append(_span(f"{0x100 + i:016x}", "0000000000000002", "llm.call", 20 + i * 9, 30 + i * 9 + (i % 4) * 5,
                          status="error" if i == 7 else "unset",
                          events=[{"name": "exception", "time": BASE_NS + 40 * MS,
                                   "attributes": {"exception.type": "RateLimit", "exception.message": "429"}}]
                          if i == 7 else []))
    return rows


@pytest.fixture(scope="module")
def messy_db(tmp_path_factory):
    d = tmp_path_factory.mktemp("show_messy")
    path = d / "messy.jsonl"
    spans = messy_spans() + [_span("00000000000000f1", None, "twin_root", 0, 5, trace=MESSY_TWIN)]
    path.write_text("\n".join(json.dumps(s) for s in spans) + "\n", encoding="utf-8")
    db = d / "messy.duckdb"
    r = invoke(["load", "--db", db, path])
    assert r.exit_code == 0, r.stderr
    return db


def sql_store(db: Path, spans_sql: str) -> None:
    """A store whose spans come from one SELECT (fast for huge traces)."""
    from agtrace.store import Store

    store = Store.open(db, read_only=False)
    con = store.con
    con.execute(f"""
        INSERT INTO spans BY NAME
        SELECT row_number() OVER () AS sid, *, end_ns - start_ns AS duration_ns, 'unset' AS status,
               'internal' AS kind, 'big' AS service, '{{}}' AS attributes, NULL AS events, 'other' AS type
        FROM ({spans_sql})
    """)
    con.execute("""
        INSERT INTO traces
        SELECT trace_id, arg_min(span_id, start_ns), arg_min(name, start_ns), 'big', min(start_ns), max(end_ns),
               max(end_ns) - min(start_ns), count(*), 0, 1, []::VARCHAR[]
        FROM spans GROUP BY trace_id
    """)
    store.close()


DEEP = "dddd0000000000000000000000000001"
BIG = "bbbb0000000000000000000000000001"


@pytest.fixture(scope="module")
def deep_db(tmp_path_factory):
    """A chain 10,000 spans deep: span i is the parent of span i+1."""
    db = tmp_path_factory.mktemp("show_deep") / "deep.duckdb"
    sql_store(db, f"""
        SELECT '{DEEP}' AS trace_id, printf('%016x', i + 1) AS span_id,
               CASE WHEN i = 0 THEN NULL ELSE printf('%016x', i) END AS parent_span_id,
               'step_' || i AS name, {BASE_NS} + i * 1000 AS start_ns, {BASE_NS} + 100000000 - i * 1000 AS end_ns,
               i AS depth, i = 0 AS is_root
        FROM range(10000) t(i)
    """)
    return db


@pytest.fixture(scope="module")
def big_db(tmp_path_factory):
    """50,000 spans: a root, 10 agents, 4,999 or 5,000 tool calls each."""
    db = tmp_path_factory.mktemp("show_big") / "big.duckdb"
    sql_store(db, f"""
        SELECT '{BIG}' AS trace_id, printf('%016x', i + 1) AS span_id,
               CASE WHEN i = 0 THEN NULL WHEN i <= 10 THEN printf('%016x', 1)
                    ELSE printf('%016x', 2 + i % 10) END AS parent_span_id,
               CASE WHEN i = 0 THEN 'root' WHEN i <= 10 THEN 'agent_' || i ELSE 'tool.call' END AS name,
               {BASE_NS} + i * 10000 AS start_ns, {BASE_NS} + i * 10000 + 5000000 AS end_ns,
               CASE WHEN i = 0 THEN 0 WHEN i <= 10 THEN 1 ELSE 2 END AS depth, i = 0 AS is_root
        FROM range(50000) t(i)
    """)
    return db


# -- goldens -----------------------------------------------------------------------

GOLDEN_CASES = {
    "show_market_research_w120.txt": [MR1, "--width", "120"],
    "show_market_research_w100.txt": [MR1[:8], "--width", "100"],  # the README's example
    "show_market_research_w80.txt": [MR1[:8], "--width", "80"],
    "show_market_research_span_w100.txt": [MR1, "--span", MR1_SENTIMENT[:8], "--width", "100"],
    "show_complaint_errors_w100.txt": [COMPLAINT2, "--width", "100"],
    "show_inquiry_attrs_w120.txt": [INQUIRY5, "--attrs", "--width", "120"],
    "show_approval_events_w100.txt": [APPROVAL_EVENTS, "--width", "100"],
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_samples_piped(sample_db, name):
    out = show_ok(sample_db, *GOLDEN_CASES[name])
    assert "\x1b" not in out
    check_golden(name, out)


def test_golden_messy_piped(messy_db):
    out = show_ok(messy_db, MESSY, "--width", "100", "--collapse-over", "5")
    assert "\x1b" not in out
    check_golden("show_messy_collapsed_w100.txt", out)


def test_golden_messy_uncollapsed_has_every_span(messy_db):
    out = show_ok(messy_db, MESSY, "--width", "100", "--no-critical")
    check_golden("show_messy_w100.txt", out)
    assert out.count("llm.call") == 30


def _waterfall(db, trace_id, width, **kw):
    from agtrace.analysis.tree import build_tree, flatten
    from agtrace.commands.show import critical_spans
    from agtrace.render.waterfall import Waterfall
    from agtrace.store import Store
    from agtrace.trace_fetch import fetch_trace

    with Store.open(db) as store:
        data = fetch_trace(store.con, trace_id)
    tree = build_tree(data.spans)
    marked, _ = critical_spans(data.spans, trace_id)
    return Waterfall(tree, flatten(tree), trace_id=trace_id, width=width, critical=marked, **kw)


def test_terminal_render_without_colour_equals_golden(sample_db):
    """The rich renderable, on a console of fixed width and no colours, gives
    exactly the piped text."""
    from rich.console import Console

    view = _waterfall(sample_db, MR1, 120)
    buf = io.StringIO()
    Console(file=buf, width=120, color_system=None).print(view)
    assert buf.getvalue() == (GOLDEN / "show_market_research_w120.txt").read_text(encoding="utf-8")


def test_terminal_render_in_colour_is_the_golden_plus_styles(sample_db):
    from rich.console import Console

    view = _waterfall(sample_db, COMPLAINT2, 100)
    buf = io.StringIO()
    Console(file=buf, width=100, force_terminal=True, color_system="standard").print(view)
    text = buf.getvalue()
    assert "\x1b[31m" in text or "\x1b[1;31m" in text  # errors in red
    assert "\x1b[1;33m*" in text  # critical marks in bold yellow
    assert ANSI.sub("", text) == (GOLDEN / "show_complaint_errors_w100.txt").read_text(encoding="utf-8")


def test_cli_colours_a_terminal_and_honours_no_color(sample_db, monkeypatch):
    import agtrace.render.output as output

    monkeypatch.setattr(output, "is_terminal", lambda stream=None: True)
    monkeypatch.setenv("TERM", "xterm-256color")
    coloured = show_ok(sample_db, COMPLAINT2, "--width", "100")
    assert "\x1b[" in coloured
    golden = (GOLDEN / "show_complaint_errors_w100.txt").read_text(encoding="utf-8")
    assert ANSI.sub("", coloured) == golden
    monkeypatch.setenv("NO_COLOR", "1")
    assert show_ok(sample_db, COMPLAINT2, "--width", "100") == golden
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert show_ok(sample_db, COMPLAINT2, "--width", "100") == golden


def _cells(text: str) -> int:
    from agtrace.render.waterfall import cell_len

    return cell_len(text)


@pytest.mark.parametrize("name", ["show_market_research_w80.txt", "show_messy_collapsed_w100.txt",
                                  "show_complaint_errors_w100.txt"])
def test_rows_are_aligned(name):
    """Every span row has its duration right-aligned just before the ruler's
    first column, counted in terminal cells (wide characters count 2)."""
    lines = (GOLDEN / name).read_text(encoding="utf-8").splitlines()
    ruler = next(i for i, ln in enumerate(lines) if "├─" in ln and "duration" in ln)
    bar_col = _cells(lines[ruler][: lines[ruler].index("├─")])
    dur = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|µs|ms|s)|\d+m\d\ds|\?)$")
    rows = 0
    for ln in lines[ruler + 1:]:
        # Cut the line at the bar column, in cells.
        acc, cut = 0, len(ln)
        for i, ch in enumerate(ln):
            if acc >= bar_col:
                cut = i
                break
            acc += _cells(ch)
        head = ln[:cut]
        if acc >= bar_col and head.endswith("  ") and dur.search(head.rstrip()):
            assert _cells(head) == bar_col
            assert len(ln) <= 200
            rows += 1
    assert rows >= 8


# -- messy traces ----------------------------------------------------------------------


def test_orphans_hang_under_a_placeholder_and_roots_are_all_shown(messy_db):
    out = show_ok(messy_db, MESSY, "--width", "100")
    lines = out.splitlines()
    i = next(k for k, ln in enumerate(lines) if "? missing parent 0000000000000099" in ln)
    assert "├─ · orphan.task " in lines[i + 1]
    assert "└─ · orphan.task2 " in lines[i + 2]
    assert any("? missing parent 0000000000000077" in ln for ln in lines)
    assert any("└─ · lonely.orphan " in ln for ln in lines)
    assert "5 roots" in out
    assert "3 orphan span(s) whose parent is not in the trace" in out
    assert [(g, name) for _, _, guides, g, name in span_rows(out) if not guides] == [
        ("◎", "root_workflow"), ("·", "loop.b"), ("?", "missing"), ("?", "missing")]


def test_cycle_is_reported_and_the_trace_still_renders(messy_db):
    r = show(messy_db, MESSY, "--width", "100")
    assert r.exit_code == 0
    assert ("note: parent cycle 0000000000000006 -> 0000000000000005 -> 0000000000000006 (each span's parent is"
            in r.stdout)
    assert "loop.b  ↻ parent cycle broken here" in r.stdout
    assert re.search(r"└─ · loop\.a ", r.stdout)
    doc = json.loads(show_ok(messy_db, MESSY, "-f", "json"))
    assert any(p.startswith("parent cycle 0000000000000006 -> 0000000000000005") for p in doc["problems"])
    loop_b = next(n for n in doc["roots"] if n["name"] == "loop.b")
    assert loop_b["cycle"] == ["0000000000000006", "0000000000000005"]
    assert [c["name"] for c in loop_b["children"]] == ["loop.a"]


def test_control_characters_never_reach_the_terminal(messy_db, monkeypatch):
    import agtrace.render.output as output

    out = show_ok(messy_db, MESSY, "--width", "100", "--attrs")
    assert "\x1b" not in out and "\r" not in out
    assert "✗ boom second line  [31mred" in out
    monkeypatch.setattr(output, "is_terminal", lambda stream=None: True)
    monkeypatch.setenv("TERM", "xterm-256color")
    coloured = show_ok(messy_db, MESSY, "--width", "100")
    assert "\x1b[" in coloured
    assert "\x1b[31mred" not in coloured


def test_long_values_are_shortened_in_the_tree_and_whole_with_attrs(messy_db):
    out = show_ok(messy_db, MESSY, "--width", "100")
    assert "x" * 300 not in out
    reasoning = next(ln for ln in out.splitlines() if "“because because" in ln)
    assert reasoning.endswith("…") and len(reasoning) == 100
    full = show_ok(messy_db, MESSY, "--width", "100", "--attrs")
    assert "query: " + "x" * 300 in full
    assert "reasoning: " + ("because " * 40).rstrip() in full
    assert "exception.message: 429" in full


def test_collapse_summarises_same_name_siblings(messy_db):
    out = show_ok(messy_db, MESSY, "--width", "100", "--collapse-over", "5")
    row = next(ln for ln in out.splitlines() if "llm.call" in ln)
    assert re.search(r"└─ ✦ llm\.call ×30  10\.0ms…25\.0ms  1 ✗ +276ms  ", row)
    assert row.startswith("*✗ ")
    assert out.count("llm.call") == 1
    # Not enough siblings: nothing collapses.
    assert show_ok(messy_db, MESSY, "--collapse-over", "30").count("llm.call") == 30


def test_deep_chain_renders_without_recursion(deep_db):
    out = show_ok(deep_db, DEEP, "--width", "100")
    rows = body_lines(out)
    assert len(rows) == 10000
    assert rows[0].startswith("*  · step_0 ")
    assert re.match(r"^\*  \[9999\] *└─ · step_9999 ", rows[-1])
    # The guides never grow past the name column, so no row outgrows the width.
    assert max(len(ln) for ln in rows) == 100
    assert max(ln.index("step_") for ln in rows) < 60


def test_deep_chain_json_is_valid_and_nested(deep_db):
    text = show_ok(deep_db, DEEP, "-f", "json")
    out: list = []

    def parse():
        sys.setrecursionlimit(100_000)
        out.append(json.loads(text))

    # The limit is process-wide: restored, or later tests that rely on
    # Python's default (the reader's "nested too deeply") would see this one.
    limit = sys.getrecursionlimit()
    old = threading.stack_size(512 * 1024 * 1024)
    try:
        t = threading.Thread(target=parse)
        t.start()
        t.join()
    finally:
        threading.stack_size(old)
        sys.setrecursionlimit(limit)
    doc = out[0]
    assert doc["span_count"] == 10000
    node, depth = doc["root"], 0
    while node["children"]:
        assert len(node["children"]) == 1
        node, depth = node["children"][0], depth + 1
    assert depth == 9999 and node["name"] == "step_9999"
    # Indentation is capped, so the size stays linear in the span count.
    assert max(len(ln) - len(ln.lstrip()) for ln in text.splitlines()) <= 2 * 32 + 4


def test_fifty_thousand_spans_render(big_db):
    out = show_ok(big_db, BIG, "--width", "120")
    assert sum(1 for ln in out.splitlines() if "tool.call" in ln) == 49989
    assert "50000 spans" in out
    # The collapsed view and the JSON tree, from one fetch (the CLI paths are
    # tested on smaller traces).
    from agtrace.analysis.tree import build_tree, flatten
    from agtrace.render.trace_json import write_document
    from agtrace.render.waterfall import Waterfall
    from agtrace.store import Store
    from agtrace.trace_fetch import fetch_trace

    with Store.open(big_db) as store:
        tree = build_tree(fetch_trace(store.con, BIG).spans)
    rows = flatten(tree, collapse_over=100)
    collapsed = Waterfall(tree, rows, trace_id=BIG, width=120).plain().splitlines()
    groups = [ln for ln in collapsed if "tool.call ×" in ln]
    assert "└─ · tool.call ×4998  5.00ms…5.00ms    505ms  " in groups[0]
    assert [int(re.search(r"×(\d+)", g).group(1)) for g in groups] == [4998] + [4999] * 9
    buf = io.StringIO()
    write_document(buf, tree, BIG)
    doc = orjson.loads(buf.getvalue())
    ids = [n["span_id"] for n in _walk(doc)]
    assert len(ids) == 50000 == len(set(ids)) == doc["span_count"]


# -- id lookup and options ---------------------------------------------------------


def test_prefix_ambiguous_and_unknown_ids(messy_db, sample_db):
    assert show_ok(sample_db, MR1[:6], "--width", "120") == show_ok(sample_db, MR1, "--width", "120")
    r = show(messy_db, "aaaa")
    assert r.exit_code == 2
    assert "ambiguous" in r.stderr and MESSY in r.stderr and MESSY_TWIN in r.stderr
    r = show(messy_db, "ffff1234")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr == ("error: no trace with id 'ffff1234' in the store\n"
                        "hint: list the loaded traces with `agtrace traces`\n")
    r = show(sample_db, MR1, "--span", "ffffff")
    assert r.exit_code == 2 and "no span with id 'ffffff'" in r.stderr


def test_no_critical_removes_the_marks(sample_db):
    out = show_ok(sample_db, MR1, "--width", "120", "--no-critical")
    assert "critical path" not in out
    assert not any(ln.startswith("*") for ln in out.splitlines())
    doc = json.loads(show_ok(sample_db, MR1, "-f", "json", "--no-critical"))
    assert all("critical_path" not in n for n in _walk(doc))


def test_critical_marks_follow_the_bottleneck(sample_db):
    out = show_ok(sample_db, MR1, "--width", "120")
    marked = [name for crit, _, _, _, name in span_rows(out) if crit == "*"]
    assert marked == ["market_research_workflow", "customer_sentiment_agent.invoke", "tool.review_search",
                      "tool.social_listening", "llm.chat", "synthesis_agent.invoke", "chat",
                      "agent.decision_point"]


def test_depth_limits_rows_and_counts_what_is_hidden(sample_db, messy_db):
    out = show_ok(sample_db, MR1, "--width", "120", "--depth", "1")
    assert name_column(out) == [
        "◎ market_research_workflow",
        "├─ · sync.wait_for_research",
        "├─ ● competitor_analysis_agent.invoke  v1.9.0  +3 spans",
        "├─ ● market_trends_agent.invoke  v1.9.0  +3 spans",
        "├─ ● customer_sentiment_agent.invoke  v1.9.0  +3 spans",
        "└─ ● synthesis_agent.invoke  v1.9.0  +2 spans",
    ]
    root_only = show_ok(sample_db, MR1, "--depth", "0")
    assert "market_research_workflow  +16 spans" in root_only
    hidden_errors = show_ok(messy_db, MESSY, "--depth", "1", "--width", "120")
    assert "planner_agent.invoke  v1.0  +30 spans  (1 ✗)" in hidden_errors


def test_span_shows_the_subtree_under_its_ancestors(sample_db):
    out = show_ok(sample_db, MR1, "--span", MR1_SENTIMENT, "--width", "100")
    assert "subtree a5068b34e34d1cd0 · customer_sentiment_agent.invoke · 4 spans" in out
    names = [name for *_, name in span_rows(out)]
    assert names == ["market_research_workflow", "customer_sentiment_agent.invoke", "tool.review_search",
                     "tool.social_listening", "llm.chat"]
    doc = json.loads(show_ok(sample_db, MR1, "--span", MR1_SENTIMENT, "-f", "json"))
    assert doc["span"] == MR1_SENTIMENT and doc["root"]["span_id"] == MR1_SENTIMENT
    assert doc["ancestors"] == [{"span_id": "bfaa244397d5a612", "name": "market_research_workflow"}]
    assert [c["name"] for c in doc["root"]["children"]] == ["tool.review_search", "tool.social_listening", "llm.chat"]


def test_width_below_minimum_is_a_usage_error(sample_db):
    r = show(sample_db, MR1, "--width", "20")
    assert r.exit_code == 2


def test_input_files_without_a_store(tmp_path):
    r = invoke(["show", MR1[:10], "-i", SAMPLES / "market_research.jsonl", "--width", "120"])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == (GOLDEN / "show_market_research_w120.txt").read_text(encoding="utf-8")


# -- JSON shape ------------------------------------------------------------------


def _walk(doc):
    stack = [doc["root"]] if "root" in doc else list(reversed(doc["roots"]))
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n["children"]))


def test_json_shape(sample_db):
    import duckdb

    doc = json.loads(show_ok(sample_db, MR1, "-f", "json"))
    assert list(doc)[:4] == ["trace_id", "root_name", "service", "start"]
    assert doc["trace_id"] == MR1 and doc["duration_ms"] == 5800.0 and doc["span_count"] == 17
    assert doc["error_count"] == 0 and doc["problems"] == []
    assert doc["agents"] == ["competitor_analysis_agent", "customer_sentiment_agent", "market_trends_agent",
                             "synthesis_agent"]
    root = doc["root"]
    for key in ("span_id", "name", "agent", "type", "start_offset_ms", "duration_ms", "status", "attributes",
                "children"):
        assert key in root
    assert (root["name"], root["start_offset_ms"], root["duration_ms"], root["type"]) == (
        "market_research_workflow", 0.0, 5800.0, "workflow")
    nodes = list(_walk(doc))
    con = duckdb.connect(str(sample_db), read_only=True)
    expected = sorted(r[0] for r in con.execute("SELECT span_id FROM spans WHERE trace_id = ?", [MR1]).fetchall())
    con.close()
    assert sorted(n["span_id"] for n in nodes) == expected  # every span exactly once
    for n in nodes:
        offsets = [c["start_offset_ms"] for c in n["children"]]
        assert offsets == sorted(offsets)
    sentiment = next(n for n in nodes if n["span_id"] == MR1_SENTIMENT)
    assert (sentiment["agent"], sentiment["type"], sentiment["start_offset_ms"], sentiment["duration_ms"],
            sentiment["critical_path"]) == ("customer_sentiment_agent", "agent", 10.3, 5400.0, True)
    assert sentiment["attributes"]["agent_version"] == "1.9.0"
    synth = next(n for n in nodes if n["name"] == "synthesis_agent.invoke")
    assert [ln["span_id"] for ln in synth["links"]] == ["8c28f9a843b20556", "51d93dea52c6ba66", MR1_SENTIMENT]
    wait = next(n for n in nodes if n["name"] == "sync.wait_for_research")
    assert wait["critical_path"] is False


def test_json_orphans_and_roots(messy_db):
    doc = json.loads(show_ok(messy_db, MESSY, "-f", "json"))
    assert "root" not in doc
    assert [(n["name"], n.get("placeholder", False), n["span_id"]) for n in doc["roots"]] == [
        ("root_workflow", False, "0000000000000001"),
        ("loop.b", False, "0000000000000006"),
        (None, True, "0000000000000099"),
        (None, True, "0000000000000077"),
    ]
    ph = doc["roots"][2]
    assert [c["name"] for c in ph["children"]] == ["orphan.task", "orphan.task2"]
    assert ph["start_offset_ms"] == 400.0 and ph["duration_ms"] == 300.0
    spans = [n for n in _walk(doc) if not n.get("placeholder")]
    assert len(spans) == len({n["span_id"] for n in spans}) == doc["span_count"] == 40


def test_jsonl_and_csv_are_flat_rows_in_tree_order(sample_db):
    lines = show_ok(sample_db, MR1, "-f", "jsonl").splitlines()
    rows = [orjson.loads(ln) for ln in lines]
    assert len(rows) == 17
    assert [(r["depth"], r["name"]) for r in rows[:4]] == [
        (0, "market_research_workflow"), (1, "sync.wait_for_research"), (1, "competitor_analysis_agent.invoke"),
        (2, "tool.web_search")]
    csv_text = show_ok(sample_db, MR1, "-f", "csv", "--depth", "1")
    assert csv_text.splitlines()[0] == ("span_id,parent_span_id,depth,name,agent,type,start_offset_ms,duration_ms,"
                                        "status,status_message,critical_path")
    assert len(csv_text.splitlines()) == 7


# -- the pure parts ----------------------------------------------------------------


def _rows(*specs):
    from agtrace.trace_fetch import SpanRow

    return [SpanRow(sid, parent, name, start, end, kind=kind) for sid, parent, name, start, end, kind in specs]


def test_tree_orders_children_by_start_then_id():
    from agtrace.analysis.tree import build_tree

    tree = build_tree(_rows(("r", None, "root", 0, 100, None), ("b", "r", "b", 20, 30, None),
                            ("a", "r", "a", 20, 25, None), ("c", "r", "c", 5, 90, None)))
    assert [c.span_id for c in tree.roots[0].children] == ["c", "a", "b"]
    assert [n.depth for n in tree.walk()] == [0, 1, 1, 1]
    assert tree.roots[0].size == 4 and tree.problems == []


def test_tree_breaks_a_cycle_with_a_tail_at_its_earliest_span():
    from agtrace.analysis.tree import build_tree

    tree = build_tree(_rows(("x", "z", "x", 30, 40, None), ("y", "x", "y", 10, 50, None), ("z", "y", "z", 20, 60, None),
                            ("t", "y", "tail", 12, 14, None), ("s", "s", "self", 0, 1, None)))
    assert [(r.span_id, r.cycle) for r in tree.roots] == [("s", ("s",)), ("y", ("y", "x", "z"))]
    assert [n.span_id for n in tree.walk()] == ["s", "y", "t", "z", "x"]
    assert tree.problems == [
        "span s is its own parent; shown as a top-level span",
        "parent cycle y -> x -> z -> y (each span's parent is the next); broken at y, shown as a top-level span",
    ]


def test_tree_zipkin_shared_span_and_duplicate_ids():
    from agtrace.analysis.tree import build_tree

    tree = build_tree(_rows(("r", None, "root", 0, 100, "server"), ("s", "r", "call", 10, 50, "client"),
                            ("s", "r", "handle", 12, 48, "server"), ("k", "s", "inner", 20, 30, None),
                            ("d", "r", "dup", 60, 70, None), ("d", "r", "dup", 65, 80, None)))
    assert [(n.span_id, n.name, n.depth) for n in tree.walk()] == [
        ("r", "root", 0), ("s", "call", 1), ("s", "handle", 2), ("k", "inner", 3), ("d", "dup", 1), ("d", "dup", 1)]
    assert tree.problems == ["span id d occurs 2 times; children attach to the earliest"]


def test_flatten_guides_views_and_groups():
    from agtrace.analysis.tree import build_tree, flatten

    spans = _rows(("r", None, "root", 0, 100, None), ("a", "r", "a", 1, 50, None), ("a1", "a", "w", 2, 3, None),
                  ("a2", "a", "w", 4, 9, None), ("a3", "a", "w", 5, 6, None), ("b", "r", "b", 60, 90, None),
                  ("b1", "b", "leaf", 61, 62, None))
    tree = build_tree(spans)
    assert [(r.guides, r.cont) for r in flatten(tree)] == [
        ("", "│"), ("├─ ", "│  │"), ("│  ├─ ", "│  │  "), ("│  ├─ ", "│  │  "), ("│  └─ ", "│     "),
        ("└─ ", "   │"), ("   └─ ", "      ")]
    limited = flatten(tree, max_depth=1)
    assert [(r.node.span_id, r.hidden) for r in limited] == [("r", 0), ("a", 3), ("b", 1)]
    focus = flatten(tree, focus=tree.find("b1"))
    assert [(r.node.span_id, r.context, r.guides) for r in focus] == [
        ("r", True, ""), ("b", True, "└─ "), ("b1", False, "   └─ ")]
    grouped = flatten(tree, collapse_over=2)
    g = grouped[2].group
    assert (g.name, g.count, g.start_ns, g.end_ns, g.min_duration_ns, g.max_duration_ns) == ("w", 3, 2, 9, 1, 5)
    assert [r.node.span_id if r.node else "group" for r in grouped] == ["r", "a", "group", "b", "b1"]


def test_flatten_wraps_deep_guides_in_bands():
    from agtrace.analysis.tree import build_tree, flatten
    from agtrace.trace_fetch import SpanRow

    spans = [SpanRow(str(i), str(i - 1) if i else None, f"n{i}", i, 100 - i) for i in range(16)]
    rows = flatten(build_tree(spans), max_guides=4)
    assert [r.guides for r in rows[3:]] == [
        "      └─ ", "         └─ ",  # depths 3 and 4: every level drawn
        "[5]└─ ", "[6]   └─ ", "[7]      └─ ",  # past the limit: depth label, then one more level per row
        "[8]└─ ", "[9]   └─ ", "[10]     └─ ",  # wrapped back
        "[11]  └─ ", "[12]     └─ ", "[13]  └─ ", "[14]     └─ ", "[15]  └─ "]
    assert max(len(r.guides) for r in rows) == 12


@pytest.mark.parametrize("ns,text", [
    (None, "?"), (0, "0ns"), (999, "999ns"), (1_000, "1µs"), (999_499, "999µs"), (999_500, "1.00ms"),
    (3_250_000, "3.25ms"), (48_100_000, "48.1ms"), (245_000_000, "245ms"), (1_240_000_000, "1.24s"),
    (12_300_000_000, "12.3s"), (123_000_000_000, "2m03s"), (3_800_000_000_000, "1h03m"), (-5_000_000, "-5.00ms"),
])
def test_format_duration(ns, text):
    from agtrace.render.waterfall import format_duration

    assert format_duration(ns) == text


@pytest.mark.parametrize("start,end,expected", [
    (0, 10, (0, "██████████")), (0.5, 3.25, (0, "▐██▎")), (2, 2, (2, "▏")), (9.9, 10, (9, "▕")),
    (3.3, 3.6, (3, "▌")), (0, 25, (0, "██████████")), (-3, 1, (0, "█")), (0.7, 1.2, (0, "▕▎")),
])
def test_bar_cells(start, end, expected):
    from agtrace.render.waterfall import bar_cells

    assert bar_cells(start, end, 10) == expected


def test_density_and_text_helpers():
    from agtrace.render.waterfall import cell_len, clean, density_cells, fit

    assert density_cells([(0, 5), (2, 8), (3, 4)], 10) == (0, "▒▒▓█▓▒▒▒")
    assert density_cells([(2, 3), (6, 7)], 10) == (2, "█   █")
    assert (cell_len("名前x"), cell_len("e\u0301"), cell_len("│ ├─ ✦")) == (5, 1, 6)
    assert (fit("名前の長い", 6), fit("abcdef", 4), fit("abc", 3)) == ("名前…", "abc…", "abc")
    assert clean("a\nb\x1b[31mc\x07") == "a b [31mc "


def test_core_modules_import_no_ui_and_show_stays_lazy(tmp_path, sample_db):
    """tree/trace_fetch never import typer or rich; a piped `show` never imports rich."""
    code = (
        "import sys\n"
        "import agtrace.analysis.tree, agtrace.trace_fetch\n"
        "bad = [m for m in ('typer', 'rich', 'click', 'duckdb') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "import os\n"
        "real_exit = os._exit\n"  # a read-only command leaves through os._exit (agtrace.cli._fast_exit)
        "def exit_(code):\n"
        "    sys.stderr.write('RICH=%s' % ('rich' in sys.modules)); sys.stderr.flush(); real_exit(code)\n"
        "os._exit = exit_\n"
        "from agtrace.cli import main\n"
        f"sys.argv = ['agtrace', 'show', '{MR1[:8]}', '--db', {str(sample_db)!r}]\n"
        "main()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "cli"))
    env.pop("NO_COLOR", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "market_research_workflow" in r.stdout
    assert r.stderr.endswith("RICH=False")


def test_every_trace_of_the_shared_samples_renders(shared_samples):
    """Real exports from other projects (Zipkin shared ids, Jaeger, Monocle,
    the Collector's file exporter): every trace renders, every span once."""
    from agtrace.analysis.tree import build_tree, flatten
    from agtrace.commands.show import critical_spans
    from agtrace.ingest import load_paths
    from agtrace.render.trace_json import write_document
    from agtrace.render.waterfall import Waterfall
    from agtrace.store import Store
    from agtrace.trace_fetch import fetch_trace

    store = Store.memory()
    load_paths(store, [str(p) for p in sorted(shared_samples.iterdir()) if p.suffix in (".json", ".jsonl", ".txt")])
    trace_ids = [r[0] for r in store.con.execute("SELECT trace_id FROM traces ORDER BY trace_id").fetchall()]
    assert len(trace_ids) > 100
    for tid in trace_ids:
        data = fetch_trace(store.con, tid)
        tree = build_tree(data.spans)
        marked, _ = critical_spans(data.spans, tid)
        text = Waterfall(tree, flatten(tree), trace_id=tid, width=100, critical=marked).plain()
        assert len(body_lines(text)) >= len(data.spans)
        buf = io.StringIO()
        write_document(buf, tree, tid, critical=marked)
        doc = json.loads(buf.getvalue())
        ids = sorted(n["span_id"] for n in _walk(doc) if not n.get("placeholder"))
        assert ids == sorted(s.span_id for s in data.spans), tid


def test_an_instant_trace_and_spans_without_times():
    from agtrace.analysis.tree import build_tree, flatten
    from agtrace.render.waterfall import Waterfall
    from agtrace.trace_fetch import SpanRow

    tree = build_tree([SpanRow("a", None, "only", 5, 5), SpanRow("b", "a", "kid", None, None)])
    assert Waterfall(tree, flatten(tree), trace_id="t1", width=60, critical={"a"}).plain() == (
        "Trace t1  only\n"
        "  start 1970-01-01T00:00:00.000Z · duration 0ns · 2 spans ·\n"
        "  0 errors\n"
        "  legend  · other  * critical path  ✗ error\n"
        "\n"
        "                      0\n"
        "   span     duration  ├─────────────────┼──────────────────┤\n"
        "*  · only        0ns  ▏\n"
        "   └─ · kid        ?\n"
    )


def test_json_depth_limit_counts_hidden_descendants(sample_db):
    doc = json.loads(show_ok(sample_db, MR1, "-f", "json", "--depth", "1"))
    kids = doc["root"]["children"]
    assert [(k["name"], k.get("hidden_descendants"), k["children"]) for k in kids] == [
        ("sync.wait_for_research", None, []),
        ("competitor_analysis_agent.invoke", 3, []),
        ("market_trends_agent.invoke", 3, []),
        ("customer_sentiment_agent.invoke", 3, []),
        ("synthesis_agent.invoke", 2, []),
    ]


@pytest.mark.parametrize("trace_id,kw", [(MR1, {}), (COMPLAINT2, {"show_attrs": True}), (INQUIRY5, {"show_attrs": True})])
def test_plain_fast_path_equals_the_segments(sample_db, trace_id, kw):
    """`plain()` builds rows as strings directly; it must say exactly what the
    segments (the colour and rich paths) say."""
    for width in (60, 100, 140):
        view = _waterfall(sample_db, trace_id, width, **kw)
        fast = view.plain()
        assert view.lines()  # builds the segments
        assert fast == view.plain() == "".join("".join(t for t, _ in ln).rstrip() + "\n" for ln in view.lines())
        assert ANSI.sub("", view.ansi()) == fast


@pytest.mark.parametrize("trace_id,kw", [(MR1, {}), (COMPLAINT2, {"show_attrs": True}), (INQUIRY5, {"show_attrs": True})])
def test_rendering_in_two_processes_says_the_same(sample_db, monkeypatch, trace_id, kw):
    """A big view is rendered half in a forked child (`Waterfall._text`):
    forced on the samples, plain and colour text are what one process writes."""
    from agtrace.render import waterfall

    for width in (60, 140):
        whole = _waterfall(sample_db, trace_id, width, **kw)
        expected_plain, expected_ansi = whole.plain(), whole.ansi()
        monkeypatch.setattr(waterfall, "SPLIT_MIN_ROWS", 2)
        split = _waterfall(sample_db, trace_id, width, **kw)
        assert split.plain() == expected_plain
        assert split.ansi() == expected_ansi
        monkeypatch.undo()


@pytest.mark.parametrize("long_at", [1, 9])
def test_both_halves_use_the_columns_of_the_whole(monkeypatch, long_at):
    """The name column is sized by the longest row of either half: a long
    name in one half widens the other half's column too."""
    from agtrace.analysis.tree import build_tree, flatten
    from agtrace.render import waterfall
    from agtrace.trace_fetch import SpanRow

    spans = [SpanRow("r", None, "root", 0, 10_000, type="agent")]
    spans += [SpanRow(f"s{i}", "r", "step_with_a_very_long_descriptive_name" if i == long_at else "s",
                      i * 1000, i * 1000 + 900, type="tool") for i in range(1, 11)]
    tree = build_tree(spans)

    def text():
        return waterfall.Waterfall(tree, flatten(tree), trace_id="t", width=160).plain()

    whole = text()
    monkeypatch.setattr(waterfall, "SPLIT_MIN_ROWS", 2)
    assert text() == whole
    durations = {ln.index("900ns") for ln in whole.splitlines() if "900ns" in ln}
    assert len(durations) == 1  # every row's duration in one column


@pytest.mark.parametrize("seed", range(6))
def test_flatten_guides_match_the_reference_prefix(seed):
    """The shared-prefix walk in `flatten` draws what `_prefix` draws from
    each row's ancestors, for random trees deep enough to wrap in bands."""
    import random

    from agtrace.analysis.tree import _prefix, ancestors, build_tree, flatten
    from agtrace.trace_fetch import SpanRow

    rng = random.Random(seed)
    n = 400
    parents = [None] + [str(rng.randrange(max(0, i - 3), i)) for i in range(1, n)]
    spans = [SpanRow(str(i), parents[i], f"s{i}", rng.randrange(1000), 2000) for i in range(n)]
    tree = build_tree(spans)
    for max_guides in (3, 5, 40):
        for row in flatten(tree, max_guides=max_guides):
            node = row.node
            chain = ancestors(node) + [node]
            if len(chain) == 1:
                assert (row.guides, row.depth) == ("", 0)
                continue
            flags = [a.parent.children[-1] is not a for a in chain[1:-1]]
            guides, cont = _prefix(flags, node.parent.children[-1] is node, max_guides)
            assert row.depth == len(chain) - 1
            assert row.guides == guides
            assert row.cont == (cont + "│" if node.children else cont)


def test_width_of_a_terminal_without_a_size_falls_back_to_columns(monkeypatch):
    """A pseudo-terminal with no size (script, docker -t) reports 0 columns: use $COLUMNS, else 120."""
    import os
    import sys

    from agtrace.commands import show

    class Tty:
        def isatty(self):
            return True

        def fileno(self):
            return 1

    monkeypatch.setattr(sys, "stdout", Tty())
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((0, 0)))
    monkeypatch.setenv("COLUMNS", "100")
    assert show.output_width(None) == 100
    monkeypatch.delenv("COLUMNS")
    assert show.output_width(None) == show.DEFAULT_PIPE_WIDTH == 120
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((90, 30)))
    assert show.output_width(None) == 90
