"""The column-wise tree derivation (SQL parents + `derive.jump_pointers`)
against the row-at-a-time reference, `derive.derive_tree`.

Random traces with duplicate span ids, client/server halves sharing an id,
self-parents, missing parents and parent cycles are loaded in one or two
loads (the second re-derives the spans of the first when it brings their
parents); every stored span's depth, is_root, agent and parent_sid must be
what derive_tree computes over the stored spans in sid order.
"""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from agtrace.ingest import load_paths
from agtrace.ingest.derive import derive_tree, jump_pointers
from agtrace.store import Store
from conftest import fuzz_settings

TRACES = ["a" * 32, "b" * 32]
IDS = [f"{i:016x}" for i in range(1, 9)]

span = st.fixed_dictionaries({
    "trace": st.sampled_from(TRACES),
    "id": st.sampled_from(IDS),
    "parent": st.one_of(st.none(), st.sampled_from(IDS + ["ffffffffffffffff"])),
    "kind": st.sampled_from(["internal", "client", "server", "producer"]),
    "agent": st.sampled_from([None, None, "planner", "researcher"]),
})


def write(path, spans, offset):
    with open(path, "wb") as f:
        for k, s in enumerate(spans):
            row = {"trace_id": s["trace"], "span_id": s["id"], "parent_span_id": s["parent"],
                   "name": f"op{k}", "kind": s["kind"], "start": 1_700_000_000_000_000_000 + (offset + k) * 1000,
                   "end": 1_700_000_000_000_000_000 + (offset + k) * 1000 + 500}
            if s["agent"]:
                row["attributes"] = {"gen_ai.agent.name": s["agent"]}
            f.write(orjson.dumps(row) + b"\n")


def check_against_reference(store):
    rows = store.con.execute(
        "SELECT sid, trace_id, span_id, parent_span_id, kind, own_agent, depth, is_root, agent, parent_sid "
        "FROM spans ORDER BY sid").fetchall()
    cols = list(zip(*rows))
    depth, is_root, agent, pidx, _ = derive_tree(*(list(c) for c in cols[1:6]))
    sids = cols[0]
    expected = [(d, r, a, sids[p] if p >= 0 else None) for d, r, a, p in zip(depth, is_root, agent, pidx)]
    assert [tuple(r[6:]) for r in rows] == expected


@fuzz_settings(150)
@given(st.lists(span, min_size=1, max_size=40), st.integers(0, 40))
def test_loads_derive_what_the_reference_derives(tmp_path_factory, spans, cut):
    tmp = tmp_path_factory.mktemp("derive")
    cut = min(cut, len(spans))
    store = Store.memory()
    parts = [p for p in (spans[:cut], spans[cut:]) if p]
    for n, part in enumerate(parts):
        f = tmp / f"part{n}.jsonl"
        write(f, part, offset=0 if n == 0 else cut)
        load_paths(store, [str(f)])
    check_against_reference(store)


def test_a_cycle_is_broken_where_the_reference_breaks_it(tmp_path):
    # 1 -> 2 -> 3 -> 1 (a cycle), 4 under 3, and a healthy trace beside it.
    spans = [dict(trace=TRACES[0], id=IDS[i], parent=IDS[p], kind="internal", agent=a)
             for i, p, a in ((0, 2, None), (1, 0, "planner"), (2, 1, None), (3, 2, None))]
    spans += [dict(trace=TRACES[1], id=IDS[0], parent=None, kind="server", agent="researcher"),
              dict(trace=TRACES[1], id=IDS[1], parent=IDS[0], kind="internal", agent=None)]
    write(tmp_path / "c.jsonl", spans, 0)
    store = Store.memory()
    report = load_paths(store, [str(tmp_path / "c.jsonl")])
    assert report.parent_cycles == 1
    check_against_reference(store)
    got = store.con.execute("SELECT span_id, depth, agent FROM spans WHERE trace_id = ? ORDER BY sid",
                            [TRACES[0]]).fetchall()
    assert got == [(IDS[0], 0, None), (IDS[1], 1, "planner"), (IDS[2], 2, "planner"), (IDS[3], 3, "planner")]


def test_jump_pointers_on_a_deep_chain():
    import pyarrow as pa

    n = 100_000
    parent = pa.array([-1] + list(range(n - 1)), pa.int64())
    own = pa.array([0] + [-1] * (n - 2) + [1], pa.int32())
    depth, code, unresolved = jump_pointers(parent, own)
    assert depth.to_pylist()[-3:] == [n - 3, n - 2, n - 1]
    assert code.to_pylist()[:2] == [0, 0] and code.to_pylist()[-2:] == [0, 1]
    assert not any(unresolved.to_pylist())


def test_input_analysis_gives_the_same_answer_with_batches_held_or_copied(monkeypatch):
    """-i keeps staged batches as Arrow up to HOLD_ARROW_MAX_BYTES of input, copies them above."""
    from conftest import SAMPLES, invoke

    args = ["query", "-i", SAMPLES, "duration_ms >= 0", "--format", "jsonl", "-n", "0"]
    held = invoke(args)
    monkeypatch.setattr("agtrace.ingest.loader.HOLD_ARROW_MAX_BYTES", 0)
    copied = invoke(args)
    assert held.exit_code == copied.exit_code == 0
    assert held.stdout == copied.stdout
    assert held.stdout.count("\n") == 285
