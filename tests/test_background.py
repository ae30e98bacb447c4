"""agtrace.background: a computation in a forked child gives what it gives in-process."""

from __future__ import annotations

import os

import orjson
import pytest

from agtrace import background
from conftest import invoke


def square_and_pid(x):
    return x * x, os.getpid()


def boom(x):
    if os.getpid() != PARENT:
        raise RuntimeError("the child fails")
    return ("computed here", x)


PARENT = os.getpid()


def test_the_work_runs_in_another_process_and_comes_back():
    value, pid = background.start(square_and_pid, 12)()
    assert value == 144
    assert pid != os.getpid()


def test_a_failing_child_falls_back_to_computing_here():
    assert background.start(boom, 7)() == ("computed here", 7)


def test_without_fork_it_runs_here(monkeypatch):
    monkeypatch.setattr(background, "FORK_ALLOWED", False)
    assert background.start(square_and_pid, 3)() == (9, os.getpid())
    assert background.start(square_and_pid, 3, fork=False)()[1] == os.getpid()


@pytest.fixture
def big_trace_db(tmp_path):
    """One 6,000-span trace (over show.BACKGROUND_MIN_SPANS) with a fan-out."""
    f = tmp_path / "big.jsonl"
    t0 = 1_700_000_000_000_000_000
    with open(f, "wb") as out:
        for i in range(6000):
            out.write(orjson.dumps({
                "trace_id": "c" * 32, "span_id": f"{i + 1:016x}",
                "parent_span_id": None if i == 0 else f"{(i - 1) // 3 + 1:016x}",
                "name": "root" if i == 0 else f"step_{i % 5}", "start": t0 + i * 1000,
                "end": t0 + i * 1000 + 9_000_000 - (i % 11) * 700_000,
            }) + b"\n")
    db = tmp_path / "big.duckdb"
    assert invoke(["load", "--db", db, f]).exit_code == 0
    return db


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_show_marks_the_same_critical_path_with_or_without_the_child(big_trace_db, monkeypatch, fmt):
    args = ["show", "c" * 8, "--db", big_trace_db, "--width", "120", "--format", fmt]
    forked = invoke(args)
    monkeypatch.setattr(background, "FORK_ALLOWED", False)
    here = invoke(args)
    assert forked.exit_code == here.exit_code == 0
    assert forked.stdout == here.stdout
    marks = ([ln for ln in forked.stdout.splitlines() if ln.startswith("*")] if fmt == "table"
             else [1 for _ in range(forked.stdout.count('"critical_path": true'))])
    assert len(marks) >= 3  # root -> ... -> the longest chain


def test_a_child_reaped_by_the_system_still_delivers(monkeypatch):
    """With SIGCHLD ignored (inherited from some launchers) the kernel reaps the
    child itself and waitpid fails; the result comes from the pipe all the same."""
    import signal

    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        value, pid = background.start(square_and_pid, 5)()
    finally:
        signal.signal(signal.SIGCHLD, old)
    assert value == 25


def test_a_cut_off_payload_is_computed_here(monkeypatch):
    """A child that dies mid-write leaves a short payload: not unpickled as if whole."""
    real_dumps = background.pickle.dumps
    monkeypatch.setattr(background.pickle, "dumps", lambda obj, protocol=None: real_dumps(obj)[:-3]
                        if os.getpid() != PARENT else real_dumps(obj))
    assert background.start(square_and_pid, 4)() == (16, os.getpid())
