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
    real_send = background._send

    def send_half(f, obj):
        if os.getpid() == PARENT:
            return real_send(f, obj)
        import pickle

        data = pickle.dumps(obj)
        f.write(len(data).to_bytes(8, "little") + data[:len(data) // 2])
        f.flush()

    monkeypatch.setattr(background, "_send", send_half)
    assert background.start(square_and_pid, 4)() == (16, os.getpid())


def test_a_cancelled_start_kills_and_reaps_its_child():
    """show cancels the critical-path child on an error or Ctrl-C instead of
    waiting for it (or recomputing its result here)."""
    import time

    pending = background.start(time.sleep, 30)
    pid = pending._child.pid
    t = time.perf_counter()
    pending.cancel()
    pending.cancel()  # idempotent
    assert time.perf_counter() - t < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


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
    """The parent may give up before sending (an error, Ctrl-C): leaving the
    `with` block ends the waiting child instead of leaving it blocked."""
    with background.Exchange(halves_phase1, halves_phase2) as job:
        pid = job._child.pid
        job.summary()
    job.close()  # idempotent
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def slow_phase1():
    import time

    time.sleep(30)
    return halves_phase1()


def test_an_exchange_abandoned_mid_computation_does_not_wait_for_it():
    import time

    t = time.perf_counter()
    with background.Exchange(slow_phase1, halves_phase2) as job:
        pid = job._child.pid
    assert time.perf_counter() - t < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_two_exchanges_at_once_can_each_be_abandoned():
    """A second child must not hold the first job's pipe open: the first,
    abandoned, would then never see EOF (and close() would hang)."""
    a = background.Exchange(halves_phase1, halves_phase2)
    b = background.Exchange(halves_phase1, halves_phase2)
    assert a.summary()[0] == b.summary()[0] == 19
    a.close()  # its child sees EOF on its down pipe and leaves
    b.send(2)
    assert b.result()[0] == [v * 2 for v in range(10, 20)]
    b.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _both_once() -> list[int]:
    """One start() and one whole Exchange; the pids that computed them."""
    value, start_pid = background.start(square_and_pid, 3)()
    assert value == 9
    with background.Exchange(halves_phase1, halves_phase2) as job:
        job.summary()
        job.send(1)
        values, exchange_pid = job.result()
    assert values == list(range(10, 20))
    return [start_pid, exchange_pid]


def test_no_descriptor_leaks_when_fork_or_pipe_fails(monkeypatch):
    before = _open_fds()
    for _ in range(10):
        _both_once()
    assert _open_fds() == before

    def no_fork():
        raise OSError("no fork today")

    monkeypatch.setattr(background.os, "fork", no_fork)
    for _ in range(10):
        assert _both_once() == [os.getpid(), os.getpid()]
    assert _open_fds() == before
    pipes = iter(range(100))
    real_pipe = os.pipe
    # The second pipe of an Exchange fails: the first is closed again.
    monkeypatch.setattr(background.os, "pipe", lambda: real_pipe() if next(pipes) % 2 == 0 else (_ for _ in ()).throw(OSError("EMFILE")))
    for _ in range(5):
        _both_once()
    assert _open_fds() == before


def test_ctrl_c_just_after_fork_stays_in_the_parent():
    """SIGINT arriving right after fork must not turn the child into a second
    copy of the parent: it is held back over the fork, and the child dies of
    it (default action) while the parent gets its KeyboardInterrupt."""
    import signal

    real_fork = os.fork

    def fork_then_interrupt():
        pid = real_fork()
        os.kill(os.getpid(), signal.SIGINT)  # in both processes
        return pid

    me = os.getpid()
    background.os.fork = fork_then_interrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            background.start(square_and_pid, 2)()
    finally:
        background.os.fork = real_fork
    assert os.getpid() == me  # (a child that got here would have escaped)


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


def test_ctrl_c_while_show_builds_the_tree_does_not_compute_the_critical_path_here(big_trace_db, monkeypatch):
    """The critical-path child is stopped, not waited for and redone here,
    when the tree building is interrupted: Ctrl-C exits at once (130)."""
    import agtrace.analysis.tree as tree_mod
    from agtrace.commands import show

    computed_here = []
    real_critical = show.critical_spans

    def recording_critical(*args):
        if os.getpid() == PARENT:
            computed_here.append(1)
        return real_critical(*args)

    started = []
    real_start = background.start

    def recording_start(*args, **kw):
        started.append(real_start(*args, **kw))
        return started[-1]

    def interrupted_build(spans):
        import signal

        # Ctrl-C reaches the whole process group: the child dies of it too.
        os.kill(started[0]._child.pid, signal.SIGINT)
        raise KeyboardInterrupt

    monkeypatch.setattr(background, "start", recording_start)
    monkeypatch.setattr(show, "critical_spans", recording_critical)
    monkeypatch.setattr(tree_mod, "build_tree", interrupted_build)
    result = invoke(["show", "c" * 8, "--db", big_trace_db])
    assert result.exit_code == 130
    assert computed_here == []
