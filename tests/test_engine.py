"""agtrace imports DuckDB's engine module directly (see agtrace/engine.py);
it must be the very engine the public ``duckdb`` package exposes."""

import subprocess
import sys

import duckdb

from agtrace.engine import duckdb as engine

# Every name agtrace's code reaches through ``agtrace.engine``.
USED = ("connect", "DuckDBPyConnection", "Error", "IOException")


def test_engine_names_are_the_public_duckdb_objects():
    for name in USED:
        assert getattr(engine, name) is getattr(duckdb, name), name


def test_engine_is_the_extension_module_not_the_python_package():
    assert engine.__name__ == "_duckdb"


def test_importing_agtrace_store_does_not_import_the_duckdb_package():
    code = "import sys, agtrace.store, agtrace.query.compiler; print('duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
