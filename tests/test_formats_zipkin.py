"""Zipkin v2 JSON: arrays, arrays of arrays, shared spans, missing fields, annotations."""

from __future__ import annotations

import json

import orjson

from agtrace.ingest import load_paths
from agtrace.store import Store
from conftest import invoke

T = "8ce82b2e9ed820ba"
US = 1_705_312_800_000_000


def zspan(sid, name, ts, dur, *, parent=None, kind=None, service="svc", trace=T, **extra):
    sp = {"traceId": trace, "id": sid, "localEndpoint": {"serviceName": service}}
    if name is not None:
        sp["name"] = name
    if ts is not None:
        sp["timestamp"] = ts
    if dur is not None:
        sp["duration"] = dur
    if parent:
        sp["parentId"] = parent
    if kind:
        sp["kind"] = kind
    sp.update(extra)
    return sp


def rpc_trace():
    """Gateway calls auth over RPC: a client and a server half share id 0000000000000002."""
    return [
        zspan("0000000000000001", "get /login", US, 10_000, kind="SERVER", service="gateway"),
        zspan("0000000000000002", "post /token", US + 100, 5_000, parent="0000000000000001", kind="CLIENT",
              service="gateway", remoteEndpoint={"serviceName": "auth", "ipv4": "10.0.0.3", "port": 8180}),
        zspan("0000000000000002", "post /token", US + 300, 4_000, parent="0000000000000001", kind="SERVER",
              service="auth", shared=True, localEndpoint={"serviceName": "auth", "ipv4": "10.0.0.3", "port": 8180},
              tags={"http.path": "/token"}),
        zspan("0000000000000003", "select-user", US + 400, 1_000, parent="0000000000000002", kind="CLIENT",
              service="auth", tags={"error": "timeout", "db.system": "cassandra"},
              annotations=[{"timestamp": US + 500, "value": "retry"}, {"timestamp": US + 900, "value": "gave up"}]),
        zspan("0000000000000004", "hash-password", US + 1_500, 200, parent="0000000000000002", service="auth"),
    ]


def load(tmp_path, doc, name="zipkin.json"):
    f = tmp_path / name
    f.write_bytes(orjson.dumps(doc))
    store = Store.memory()
    return store, load_paths(store, [str(f)])


def q(store, sql, params=()):
    return store.con.execute(sql, list(params)).fetchall()


def test_shared_halves_are_two_spans_and_children_hang_under_the_server_half(tmp_path):
    store, report = load(tmp_path, rpc_trace())
    assert report.files[0].format == "zipkin-json"
    assert (report.spans_added, report.duplicates, report.bad_records, report.warnings) == (5, 0, 0, 0)
    assert q(store, """SELECT span_id, kind, parent_span_id, service, depth, name FROM spans
                       ORDER BY depth, span_id""") == [
        ("0000000000000001", "server", None, "gateway", 0, "get /login"),
        ("0000000000000002", "client", "0000000000000001", "gateway", 1, "post /token"),
        ("0000000000000002", "server", "0000000000000001", "auth", 2, "post /token"),
        ("0000000000000003", "client", "0000000000000002", "auth", 3, "select-user"),
        ("0000000000000004", "unspecified", "0000000000000002", "auth", 3, "hash-password"),
    ]


def test_tags_endpoints_annotations_and_error(tmp_path):
    store, _ = load(tmp_path, rpc_trace())
    assert q(store, "SELECT kind, attributes, resource_id IS NOT NULL FROM spans WHERE span_id = '0000000000000002' ORDER BY kind") == [
        ("client", '{"peer.service":"auth","net.peer.ip":"10.0.0.3","net.peer.port":8180}', True),
        ("server", '{"http.path":"/token"}', True),
    ]
    assert q(store, "SELECT service, attributes FROM resources ORDER BY attributes") == [
        ("auth", '{"net.host.ip":"10.0.0.3","net.host.port":8180,"service.name":"auth"}'),
        ("auth", '{"service.name":"auth"}'),
        ("gateway", '{"service.name":"gateway"}'),
    ]
    assert q(store, "SELECT status, status_message, events, start_ns, duration_ns FROM spans WHERE span_id = '0000000000000003'") == [
        ("error", "timeout",
         '[{"name":"retry","time_ns":1705312800000500000,"attributes":{}},'
         '{"name":"gave up","time_ns":1705312800000900000,"attributes":{}}]',
         (US + 400) * 1000, 1_000_000)]


def test_array_of_arrays_and_one_span_per_line(tmp_path):
    t2 = [dict(s, traceId="463ac35c9f6413ad48485a3953bb6124") for s in rpc_trace()]
    store, report = load(tmp_path, [rpc_trace(), t2])
    assert report.spans_added == 10
    assert q(store, "SELECT trace_id, span_count FROM traces ORDER BY trace_id") == [
        ("463ac35c9f6413ad48485a3953bb6124", 5), (T, 5)]
    f = tmp_path / "lines.jsonl"
    f.write_text("\n".join(json.dumps(s) for s in rpc_trace()) + "\n")
    store = Store.memory()
    assert load_paths(store, [str(f)]).spans_added == 5


def test_missing_duration_timestamp_or_name(tmp_path):
    spans = [
        zspan("0000000000000001", "root", US, 1_000, kind="SERVER"),
        # one-way message receive: no duration -> zero, and no warning
        zspan("0000000000000002", "receive", US + 10, None, parent="0000000000000001", kind="CONSUMER"),
        # no timestamp: taken from the annotations, end from the last one
        zspan("0000000000000003", "late", None, None, parent="0000000000000001",
              annotations=[{"timestamp": US + 50, "value": "ws"}, {"timestamp": US + 80, "value": "wr"}]),
        # no duration, but an annotation after the start gives the end
        zspan("0000000000000004", None, US + 20, None, parent="0000000000000001",
              annotations=[{"timestamp": US + 60, "value": "done"}]),
        # nothing to place it in time: a bad record
        zspan("0000000000000005", "ghost", None, None, parent="0000000000000001"),
    ]
    store, report = load(tmp_path, spans)
    assert (report.spans_added, report.warnings) == (4, 0)
    assert [r for _, r in report.files[0].bad] == ["span 0000000000000005: no start or end time"]
    assert q(store, "SELECT span_id, name, kind, start_ns, duration_ns FROM spans ORDER BY span_id") == [
        ("0000000000000001", "root", "server", US * 1000, 1_000_000),
        ("0000000000000002", "receive", "consumer", (US + 10) * 1000, 0),
        ("0000000000000003", "late", "unspecified", (US + 50) * 1000, 30_000),
        ("0000000000000004", "", "unspecified", (US + 20) * 1000, 40_000),
    ]


def test_fan_out_server_halves_and_kindless_spans_do_not_collide_wrongly(tmp_path):
    spans = [
        zspan("0000000000000001", "send", US, 100, kind="CLIENT", service="producer"),
        # one message, three consumers: three server halves with one id and one kind
        zspan("0000000000000001", "receive", US + 10, None, kind="SERVER", shared=True, service="c1"),
        zspan("0000000000000001", "receive", US + 20, None, kind="SERVER", shared=True, service="c2"),
        zspan("0000000000000001", "receive", US + 30, None, kind="SERVER", shared=True, service="c3"),
        # a local span (no kind) reusing the id: a span of its own
        zspan("0000000000000001", "local", US + 40, 5, service="producer"),
        # the same kindless span exported twice: one span
        zspan("0000000000000009", "work", US + 50, 5, parent="0000000000000001"),
        zspan("0000000000000009", "work", US + 50, 5, parent="0000000000000001"),
    ]
    store, report = load(tmp_path, spans)
    assert (report.spans_added, report.duplicates, report.conflicting_duplicates) == (6, 1, 0)
    assert q(store, "SELECT kind, service, depth FROM spans WHERE span_id = '0000000000000001' ORDER BY start_ns") == [
        ("client", "producer", 0), ("server", "c1", 1), ("server", "c2", 1), ("server", "c3", 1),
        ("unspecified", "producer", 0)]
    # Loading the same file again adds nothing.
    assert load_paths(store, [str(tmp_path / "zipkin.json")]).files[0].status == "already loaded"
    g = tmp_path / "again.json"
    g.write_bytes(orjson.dumps(list(reversed(spans))))
    again = load_paths(store, [str(g)])
    assert (again.spans_added, again.duplicates) == (0, 7)


def test_ids_are_kept_as_written_lowercased(tmp_path):
    spans = [zspan("00F067AA0BA902B7", "a", US, 1, trace="463AC35C9F6413AD48485A3953BB6124"),
             zspan("b7ad6b7169203331", "b", US, 1, trace="463ac35c9f6413ad", parent="0000000000000000")]
    store, _ = load(tmp_path, spans)
    assert q(store, "SELECT trace_id, span_id, parent_span_id FROM spans ORDER BY trace_id") == [
        ("463ac35c9f6413ad", "b7ad6b7169203331", None),
        ("463ac35c9f6413ad48485a3953bb6124", "00f067aa0ba902b7", None)]


def test_cli_loads_zipkin(tmp_path):
    f = tmp_path / "trace"
    f.write_text(json.dumps(rpc_trace()))
    r = invoke(["load", f])
    assert r.exit_code == 0, r.stderr
    assert f"{f}: 5 spans [zipkin-json]" in r.stderr


def test_smartthings_sample_shared_and_fan_out_spans(shared_samples):
    store = Store.memory()
    report = load_paths(store, [str(shared_samples / "zipkin_v2_smartthings_oauth.json")])
    assert (report.spans_added, report.duplicates, report.bad_records, report.warnings) == (175, 0, 0, 0)
    # 41 ids are shared: the halves are kept apart and chained client -> server -> children.
    assert q(store, "SELECT count(*) FROM (SELECT span_id FROM spans GROUP BY span_id HAVING count(*) > 1)") == [(41,)]
    assert q(store, """SELECT name, kind, service, depth FROM spans
                       WHERE span_id IN ('19b91ab9a7d47f3d', '9d2d35b746db84f3', 'd645461738ed0e17')
                       ORDER BY depth, start_ns""") == [
        ("post /events", "client", "datamgmt", 26), ("post", "server", "bouncer", 27),
        ("send iot-events360", "client", "bouncer", 28),
        ("receive iot-events360", "server", "pusher", 29), ("receive iot-events360", "server", "pusher", 29),
        ("receive iot-events360", "server", "pusher", 29), ("receive iot-events360", "server", "pusher", 29),
        ("receive iot-events360", "server", "pusher", 29),
        ("process.archiver", "unspecified", "pusher", 30),
    ]
    assert q(store, "SELECT count(*) FROM spans WHERE name = ''") == [(6,)]
    assert q(store, "SELECT count(*) FROM spans WHERE status = 'error'") == [(2,)]
