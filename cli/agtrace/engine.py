"""DuckDB's engine, imported without the ``duckdb`` package's pure-Python layer.

Every agtrace command is a short-lived process, and several of them have a
whole-process budget of 0.5 s. ``import duckdb`` (2.x) costs about 0.25 s on
the benchmark machine, most of it in Python modules agtrace never uses: the
relational/expression API (``duckdb._relation``, ~75 ms of dataclass
creation) and ``importlib.metadata`` for ``duckdb.__version__`` (~55 ms).
The engine itself is the ``_duckdb`` extension module, which the package
re-exports name for name (``duckdb.connect is _duckdb.connect``); importing it
directly costs about 0.06 s.

So the rest of agtrace writes ``from agtrace.engine import duckdb`` and gets
the very same functions, connection class and exception classes. Where a
DuckDB build does not ship the engine as a top-level module, the public
package is used instead: slower to import, identical in behaviour.
``tests/test_engine.py`` checks that identity for every name agtrace uses.
"""

from __future__ import annotations

try:
    import _duckdb as duckdb
except ImportError:  # pragma: no cover - depends on how DuckDB was built
    import duckdb  # type: ignore[no-redef]



def relational() -> None:
    """Make the relational API available: ``con.sql``, ``con.from_arrow``,
    ``relation.to_arrow_table`` / ``to_arrow_reader``.

    The ``duckdb`` package installs those methods on the connection class when
    it is imported; the engine module alone has only ``execute`` and the
    ``fetch*`` family. The code paths that stream Arrow (loading, whole-store
    analyses, large traces) call this first; they run for seconds, where the
    package's 0.2 s import does not matter. Idempotent and cheap once done.
    """
    import duckdb as _package  # noqa: F401 - imported for its side effect


__all__ = ["duckdb", "relational"]
