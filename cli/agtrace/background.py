"""Work for the second core: run a pure-Python computation in a forked child
while this process goes on, and collect its result later.

Why: agtrace is Python, so threads do not run Python code in parallel, and
several commands have two independent CPU-bound steps. `show` of a
50,000-span trace builds its display tree (0.3-0.5 s) and computes the
critical path (0.4-0.6 s) from the same fetched spans; with the critical path
in a child both finish in the time of the longer one. A child made by fork
starts with the spans already in memory (copy-on-write), so nothing is sent
to it; only the small result comes back, pickled through a pipe.

The child only computes: it never touches the DuckDB connection or the
output streams, and it leaves with `os._exit`, so no buffered output is
written twice and no exit handler runs. Where fork is unavailable or unsafe
(not Linux), or the child fails in any way, the computation simply runs here,
so the result is always the same; `tests/test_background.py` checks both ways.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from typing import Any

# Set to False to always compute in-process (tests compare the two).
FORK_ALLOWED = True


def start(fn: Callable[..., Any], *args: Any, fork: bool = True) -> Callable[[], Any]:
    """Begin `fn(*args)`; the returned function waits for and returns its result."""
    if not (fork and FORK_ALLOWED and sys.platform == "linux" and hasattr(os, "fork")):
        result = fn(*args)
        return lambda: result
    try:
        r, w = os.pipe()
        pid = os.fork()
    except OSError:
        result = fn(*args)
        return lambda: result
    if pid == 0:  # the child: compute, send, leave without any teardown
        code = 1
        try:
            os.close(r)
            data = pickle.dumps(fn(*args), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(w, "wb") as f:
                f.write(len(data).to_bytes(8, "little") + data)
            code = 0
        finally:
            os._exit(code)
    os.close(w)

    def collect() -> Any:
        with os.fdopen(r, "rb") as f:
            data = f.read()
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # already reaped (SIGCHLD ignored by whoever started us): the payload tells
        # Whole payloads only: the length prefix catches a child that died mid-write.
        if len(data) >= 8 and int.from_bytes(data[:8], "little") == len(data) - 8:
            try:
                return pickle.loads(data[8:])
            except Exception:
                pass
        return fn(*args)  # the child failed: compute it here

    return collect


def _send(f, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(len(data).to_bytes(8, "little") + data)
    f.flush()


def _receive(f) -> tuple[bool, Any]:
    """(True, the object) for a whole message, (False, None) on EOF or a cut-off one."""
    head = f.read(8)
    if len(head) != 8:
        return False, None
    n = int.from_bytes(head, "little")
    data = f.read(n)
    if len(data) != n:
        return False, None
    try:
        return True, pickle.loads(data)
    except Exception:
        return False, None


class Exchange:
    """Two-phase work split with a forked child, for a step that needs one
    number from both halves before either can finish.

    `show` renders a big trace's rows in two halves, one per core, but the
    column widths depend on the longest name in *both* halves. So the child
    runs `phase1()`, which returns `(state, summary)`, sends the small summary
    up, waits for the parent's decision `x` (`send`), runs `phase2(state, x)`
    and sends that result up. The parent meanwhile does its own half:

        job = Exchange(phase1, phase2)
        theirs = job.summary()     # the child's phase-1 summary
        job.send(x)                # decided from both summaries
        ...                        # the parent's own phase 2
        result = job.result()      # the child's phase-2 result

    Without fork, or if the child fails at any point, the same functions run
    here when their results are asked for, so the outcome never depends on
    the child. Both phases must be pure: the state stays in the child.
    """

    def __init__(self, phase1: Callable[[], tuple[Any, Any]], phase2: Callable[[Any, Any], Any],
                 fork: bool = True):
        self._phase1, self._phase2 = phase1, phase2
        self._pid = None
        self._local: tuple[Any, Any] | None = None  # (state, summary) computed here
        self._x: Any = None
        if fork and FORK_ALLOWED and sys.platform == "linux" and hasattr(os, "fork"):
            try:
                up_r, up_w = os.pipe()
                down_r, down_w = os.pipe()
            except OSError:
                return
            try:
                pid = os.fork()
            except OSError:
                for fd in (up_r, up_w, down_r, down_w):
                    os.close(fd)
                return
            if pid == 0:
                self._child(up_r, up_w, down_r, down_w)  # never returns
            os.close(up_w)
            os.close(down_r)
            self._pid = pid
            self._up = os.fdopen(up_r, "rb")
            self._down = os.fdopen(down_w, "wb")

    def _child(self, up_r: int, up_w: int, down_r: int, down_w: int) -> None:
        code = 1
        try:
            os.close(up_r)
            os.close(down_w)
            with os.fdopen(up_w, "wb") as up, os.fdopen(down_r, "rb") as down:
                state, summary = self._phase1()
                _send(up, summary)
                ok, x = _receive(down)
                if ok:  # else the parent gave up on us
                    _send(up, self._phase2(state, x))
                    code = 0
        finally:
            os._exit(code)

    def close(self) -> None:
        """Stop using the child (whatever it is doing) and reap it; idempotent."""
        if self._pid is None:
            return
        for f in (self._up, self._down):
            try:
                f.close()
            except OSError:
                pass
        try:
            os.waitpid(self._pid, 0)
        except ChildProcessError:
            pass
        self._pid = None

    def _here(self) -> tuple[Any, Any]:
        if self._local is None:
            self._local = self._phase1()
        return self._local

    def summary(self) -> Any:
        """The child's phase-1 summary (computed here if there is no child)."""
        if self._pid is not None:
            ok, s = _receive(self._up)
            if ok:
                return s
            self.close()
        return self._here()[1]

    def send(self, x: Any) -> None:
        """Hand the child the value its phase 2 needs."""
        self._x = x
        if self._pid is not None:
            try:
                _send(self._down, x)
            except (OSError, ValueError):  # the child is gone: phase 2 runs here
                self.close()

    def result(self) -> Any:
        """The child's phase-2 result (computed here if the child failed)."""
        if self._pid is not None:
            ok, r = _receive(self._up)
            self.close()  # reaps it
            if ok:
                return r
        return self._phase2(self._here()[0], self._x)
