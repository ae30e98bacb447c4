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
