"""Work for the second core: run pure-Python computations in a forked child
while this process goes on, and collect the results later.

Why: agtrace is Python, so threads do not run Python code in parallel, and
`show` of a big trace has CPU-bound steps that can share the work. A
50,000-span trace builds its display tree (0.3-0.5 s) while a child computes
the critical path (0.4-0.6 s) from the same fetched spans (`start`), and then
renders its rows half here, half in a child (`Exchange`). A child made by
fork starts with the spans already in memory (copy-on-write), so nothing big
is sent to it; its results come back pickled through a pipe (a set of span
ids, or half of the rendered text: a few megabytes).

The child only computes: it never touches the DuckDB connection or the
output streams, takes Ctrl-C by dying quietly (the parent reports it), and
leaves with `os._exit`, so no buffered output is written twice and no exit
handler runs. Where fork is unavailable (not Linux), or the child fails in
any way, the computation simply runs here, so the result is always the same;
`tests/test_background.py` checks both ways. The functions must be
deterministic: after a failure they may run again here.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any

# Set to False to always compute in-process (tests compare the two).
FORK_ALLOWED = True

# Parent-side pipe ends of the children now running: a later child closes
# them, or a child that is abandoned (close()) would never see its pipe's EOF.
_PARENT_FDS: set[int] = set()


def _can_fork(wanted: bool) -> bool:
    return wanted and FORK_ALLOWED and sys.platform == "linux" and hasattr(os, "fork")


def _fork() -> int:
    """fork() with Ctrl-C held back across it: a SIGINT landing just after the
    fork would raise KeyboardInterrupt in the child, which would then run the
    parent's code (print "interrupted", flush the parent's buffers). The child
    takes SIGINT's default action instead (it dies; the parent falls back or
    stops), and the parent gets any pending SIGINT once the mask is restored.

    Raises OSError if there is no fork to be had."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking with threads running (DuckDB's).
            # The child runs pure Python and never calls into DuckDB, and
            # glibc's fork leaves malloc usable, so the warning does not apply.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            for fd in _PARENT_FDS:
                try:
                    os.close(fd)
                except OSError:
                    pass
            _PARENT_FDS.clear()
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
            except ValueError:  # forked from a thread other than the main one: no handler to reset
                pass
        return pid
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _send(f, obj: Any) -> None:
    """One message: an 8-byte length, then the pickle (written apart: no copy)."""
    import pickle  # here, not at import: `show` of a small trace never forks

    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(len(data).to_bytes(8, "little"))
    f.write(data)
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
    import pickle

    try:
        return True, pickle.loads(data)
    except Exception:
        return False, None


def _close_quietly(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class _Child:
    """A forked child and the parent's ends of its pipes."""

    def __init__(self, body: Callable[[Any, Any], None], two_way: bool):
        """Fork a child running `body(up, down)` (`down` None unless `two_way`).
        Raises OSError when there is no pipe or fork to be had (nothing leaks)."""
        fds: list[int] = []
        try:
            up_r, up_w = os.pipe()
            fds += [up_r, up_w]
            if two_way:
                down_r, down_w = os.pipe()
                fds += [down_r, down_w]
            pid = _fork()
        except BaseException:
            _close_quietly(*fds)
            raise
        if pid == 0:  # the child: run, leave without any teardown
            code = 1
            try:
                _close_quietly(up_r, *([down_w] if two_way else []))
                with os.fdopen(up_w, "wb") as up:
                    down = os.fdopen(down_r, "rb") if two_way else None
                    body(up, down)
                code = 0
            finally:
                os._exit(code)
        _close_quietly(up_w, *([down_r] if two_way else []))
        self.pid = pid
        self.up = os.fdopen(up_r, "rb")
        self.down = os.fdopen(down_w, "wb") if two_way else None
        _PARENT_FDS.update(f.fileno() for f in (self.up, self.down) if f is not None)

    def end(self, kill: bool) -> None:
        """Close the pipes and reap the child (killed first if `kill`: its result is not wanted)."""
        for f in (self.up, self.down):
            if f is not None:
                _PARENT_FDS.discard(f.fileno())
                try:
                    f.close()
                except OSError:
                    pass
        if kill:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass  # already reaped (SIGCHLD ignored by whoever started us): the pipe told us


class Pending:
    """A result being computed (`start`): call it to wait for and get the result,
    or `cancel()` it when the result is no longer wanted (an error, Ctrl-C)."""

    def __init__(self, fn: Callable[..., Any], args: tuple, child: _Child | None):
        self._fn, self._args, self._child = fn, args, child
        self._done = child is None
        self._result: Any = fn(*args) if child is None else None

    def __call__(self) -> Any:
        if not self._done:
            child, self._child = self._child, None
            try:
                ok, value = _receive(child.up)
            except BaseException:  # Ctrl-C while waiting: stop the child too
                child.end(kill=True)
                raise
            child.end(kill=False)
            # A whole message only: the length prefix catches a child that died mid-write.
            self._result = value if ok else self._fn(*self._args)  # the child failed: compute it here
            self._done = True
        return self._result

    def cancel(self) -> None:
        """Stop the child without computing anything here; idempotent."""
        if self._child is not None:
            self._child.end(kill=True)
            self._child = None
        self._done = True


def start(fn: Callable[..., Any], *args: Any, fork: bool = True) -> Pending:
    """Begin `fn(*args)`, in a forked child when `fork` (and fork is available)."""
    if not _can_fork(fork):
        return Pending(fn, args, None)

    def body(up, _down) -> None:
        _send(up, fn(*args))

    try:
        child = _Child(body, two_way=False)
    except OSError:
        return Pending(fn, args, None)
    return Pending(fn, args, child)


class Exchange:
    """Two-phase work split with a forked child, for a step that needs one
    value from both halves before either can finish.

    `show` renders a big trace's rows in two halves, one per core, but the
    column widths depend on the longest name in *both* halves. So the child
    runs `phase1()`, which returns `(state, summary)`, sends the summary up,
    waits for the parent's decision `x` (`send`), runs `phase2(state, x)` and
    sends that result up. The parent meanwhile does its own half:

        with Exchange(phase1, phase2) as job:
            theirs = job.summary()     # the child's phase-1 summary
            job.send(x)                # decided from both summaries
            ...                        # the parent's own phase 2
            result = job.result()      # the child's phase-2 result

    Without fork, or if the child fails at any point, the same functions run
    here when their results are asked for, so the outcome never depends on
    the child. Leaving the `with` block early (an error, Ctrl-C) kills and
    reaps the child.
    """

    def __init__(self, phase1: Callable[[], tuple[Any, Any]], phase2: Callable[[Any, Any], Any],
                 fork: bool = True):
        self._phase1, self._phase2 = phase1, phase2
        self._child: _Child | None = None
        self._local: tuple[Any, Any] | None = None  # (state, summary) computed here
        self._step = 0  # 0: nothing asked yet, 1: summary given, 2: x sent, 3: result given
        self._x: Any = None
        if _can_fork(fork):
            try:
                self._child = _Child(self._run_child, two_way=True)
            except OSError:
                self._child = None

    def _run_child(self, up, down) -> None:
        state, summary = self._phase1()
        _send(up, summary)
        ok, x = _receive(down)
        if ok:  # else the parent gave up on us
            _send(up, self._phase2(state, x))

    def __enter__(self) -> "Exchange":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    def close(self) -> None:
        """Stop using the child and reap it (killed if its result has not come); idempotent."""
        if self._child is not None:
            self._child.end(kill=self._step < 3)
            self._child = None

    def _here(self) -> tuple[Any, Any]:
        if self._local is None:
            self._local = self._phase1()
        return self._local

    def summary(self) -> Any:
        """The child's phase-1 summary (computed here if there is no child)."""
        assert self._step == 0, "summary() comes first, once"
        self._step = 1
        if self._child is not None:
            ok, s = _receive(self._child.up)
            if ok:
                return s
            self.close()
        return self._here()[1]

    def send(self, x: Any) -> None:
        """Hand the child the value its phase 2 needs."""
        assert self._step == 1, "send() comes after summary(), once"
        self._step = 2
        self._x = x
        if self._child is not None:
            try:
                _send(self._child.down, x)
            except Exception:  # the child is gone, or x does not pickle: phase 2 runs here
                self.close()

    def result(self) -> Any:
        """The child's phase-2 result (computed here if the child failed)."""
        assert self._step == 2, "result() comes after send(), once"
        if self._child is not None:
            ok, r = _receive(self._child.up)
            self._step = 3
            self.close()
            if ok:
                return r
        self._step = 3
        return self._phase2(self._here()[0], self._x)
