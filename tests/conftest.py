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


@pytest.fixture(scope="session")
def samples_db(tmp_path_factory):
    """One store of the bundled samples, shared by read-only tests."""
    path = tmp_path_factory.mktemp("samples") / "samples.duckdb"
    r = invoke(["load", "--db", path, SAMPLES])
    assert r.exit_code == 0, r.stderr
    return path


def fuzz_settings(default_examples: int, *extra_checks):
    """Hypothesis settings of the fuzz tests: deterministic unless
    AGTRACE_FUZZ_RANDOM is set, AGTRACE_FUZZ_EXAMPLES examples."""
    import os

    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=int(os.environ.get("AGTRACE_FUZZ_EXAMPLES", str(default_examples))),
        deadline=None,
        derandomize=not os.environ.get("AGTRACE_FUZZ_RANDOM"),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               *extra_checks],
    )


def invoke(args, input=None):
    """Run the real CLI in-process; returns the click Result (stdout/stderr apart)."""
    from agtrace.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input)
