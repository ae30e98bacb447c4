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


# -- Exchange: two-phase work with one value decided from both sides ------------


def halves_phase1():
    """The child's half: its state stays there, a summary comes up."""
    return list(range(10, 20)), (max(range(10, 20)), os.getpid())


def halves_phase2(state, x):
    return [v * x for v in state], os.getpid()


def test_an_exchange_runs_both_phases_in_the_child():
    job = background.Exchange(halves_phase1, halves_phase2)
    try:
        (top, pid1) = job.summary()
        job.send(top + 1)
        values, pid2 = job.result()
    finally:
        job.close()
    assert top == 19
    assert values == [v * 20 for v in range(10, 20)]
    assert pid1 == pid2 != os.getpid()


def test_an_exchange_without_fork_runs_here(monkeypatch):
    monkeypatch.setattr(background, "FORK_ALLOWED", False)
    job = background.Exchange(halves_phase1, halves_phase2)
    top, pid = job.summary()
    job.send(2)
    assert job.result() == ([v * 2 for v in range(10, 20)], os.getpid())
    assert pid == os.getpid()


def failing_phase1():
    if os.getpid() != PARENT:
        raise RuntimeError("the child fails in phase 1")
    return halves_phase1()


def failing_phase2(state, x):
    if os.getpid() != PARENT:
        os._exit(3)  # dies without a word
    return halves_phase2(state, x)


@pytest.mark.parametrize("phase1,phase2", [(failing_phase1, halves_phase2), (halves_phase1, failing_phase2)])
def test_an_exchange_whose_child_fails_computes_here(phase1, phase2):
    job = background.Exchange(phase1, phase2)
    try:
        top, _ = job.summary()
        job.send(3)
        values, pid = job.result()
    finally:
        job.close()
    assert (top, values, pid) == (19, [v * 3 for v in range(10, 20)], os.getpid())


def test_an_abandoned_exchange_reaps_its_child():
    """The parent may give up before sending (an error, Ctrl-C): close() ends
    the waiting child instead of leaving it blocked."""
    job = background.Exchange(halves_phase1, halves_phase2)
    pid = job._pid
    job.summary()
    job.close()
    job.close()  # idempotent
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@pytest.mark.parametrize("args", [[], ["--attrs"], ["--collapse-over", "5"], ["--depth", "3"],
                                  ["--span", "0000000000000002"]])
def test_show_renders_the_same_in_two_processes(big_trace_db, monkeypatch, args):
    """Over waterfall.SPLIT_MIN_ROWS rows half the text is rendered in a child."""
    from agtrace.render import waterfall

    cmd = ["show", "c" * 8, "--db", big_trace_db, "--width", "120", *args]
    monkeypatch.setattr(waterfall, "SPLIT_MIN_ROWS", 2)
    split = invoke(cmd)
    monkeypatch.setattr(background, "FORK_ALLOWED", False)
    here = invoke(cmd)
    assert split.exit_code == here.exit_code == 0
    assert split.stdout == here.stdout
    assert len(split.stdout.splitlines()) > 20
