"""Shared test fixtures: every test gets its own store, and the CLI runner.

The autouse fixture points $AGTRACE_DB at a temporary file, so no test reads
or writes ./agtrace.duckdb (the same isolation a user gets from --db).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_traces"
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"


@pytest.fixture(autouse=True)
def isolated_store(tmp_path, monkeypatch):
    db = tmp_path / "store.duckdb"
    monkeypatch.setenv("AGTRACE_DB", str(db))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return db


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def shared_samples():
    if not SHARED_SAMPLES.is_dir():
        pytest.skip("../shared/samples is not present (a user's clone)")
    return SHARED_SAMPLES


def invoke(args, input=None):
    """Run the real CLI in-process; returns the click Result (stdout/stderr apart)."""
    from agtrace.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input)
