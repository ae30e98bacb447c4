"""Each command run as a real, fresh process gives byte for byte what it gives
in-process.

Why this exists: a command process imports only DuckDB's engine module and
only its own command module (agtrace/engine.py, agtrace/cli.py), to meet the
0.5 s start-up budgets. The test process has the whole ``duckdb`` package
imported, which installs extra methods (``con.sql``, ``con.from_arrow``) on
the connection class, so in-process tests alone would never notice a code
path that needs them but forgot ``engine.relational()``. Here every command,
including a load and a trace large enough for the Arrow fetch path, runs in a
new interpreter and is compared with the CliRunner run of the same arguments.
"""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from conftest import SAMPLES, invoke

TRACE = "592ff49b"  # the market-research fan-out (README)
BIG_TRACE_SPANS = 20_001  # one more than bottlenecks.SMALL_TRACE: fetched through Arrow


def run_fresh(args, env_db):
    env = {**os.environ, "AGTRACE_DB": str(env_db), "NO_COLOR": "1"}
    env.pop("AGTRACE_FAST_MIN_BYTES", None)
    return subprocess.run([sys.executable, "-m", "agtrace", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def fresh_store(tmp_path_factory):
    """A store written by fresh `agtrace load` processes: the samples plus one big trace."""
    tmp = tmp_path_factory.mktemp("fresh")
    db = tmp / "fresh.duckdb"
    big = tmp / "big.jsonl"
    t0 = 1_700_000_000_000_000_000
    with open(big, "wb") as f:
        for i in range(BIG_TRACE_SPANS):
            f.write(orjson.dumps({
                "trace_id": "b" * 32, "span_id": f"{i + 1:016x}",
                "parent_span_id": None if i == 0 else f"{(i + 1) // 2:016x}",
                "name": "root" if i == 0 else f"step_{i % 7}", "start": t0 + i * 1000,
                "end": t0 + i * 1000 + 5_000_000 - (i % 13) * 1000, "kind": "internal",
            }) + b"\n")
    for path in (SAMPLES, big):
        r = run_fresh(["load", path], db)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
    r = run_fresh(["traces", "--format", "json"], db)
    assert {"span_count": BIG_TRACE_SPANS, "trace_id": "b" * 32}.items() <= {
        k: v for t in orjson.loads(r.stdout) if t["trace_id"] == "b" * 32 for k, v in t.items()}.items()
    return db


CASES = [
    ["traces", "--format", "json"],
    ["show", TRACE, "--width", "100"],
    ["show", TRACE, "--format", "json"],
    ["query", 'name =~ "^tool" or duration_ms > 1000', "--format", "jsonl", "-n", "0"],
    ["query", "status = error", "--count"],
    ["stats", "--by", "decision_type", "--format", "json"],
    ["stats", "--by", "agent", "--by", "decision_type"],
    ["stats", "--streaks", "--by", "decision_type", "--format", "json"],
    ["stats", "--traces", "--rate", 'decision_type =~ "^escalate"', "--format", "json"],
    ["critical-path", TRACE, "--format", "json"],
    ["critical-path", "b" * 8, "--format", "json"],
    ["bottlenecks", "--by", "agent", "--format", "json"],
    ["explain", "3c418e43", "--format", "json"],
    ["check", SAMPLES / "rules.toml", "--format", "json"],
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(map(str, a[:3])))
def test_fresh_process_matches_in_process(fresh_store, args, monkeypatch):
    fresh = run_fresh(args, fresh_store)
    monkeypatch.setenv("NO_COLOR", "1")
    inproc = invoke([*args, "--db", fresh_store])
    assert "Traceback" not in fresh.stderr, fresh.stderr
    assert fresh.returncode == inproc.exit_code, fresh.stderr
    assert fresh.stdout == inproc.stdout
    assert fresh.stdout.strip()


def test_a_command_process_imports_only_its_own_command_and_the_engine(fresh_store):
    # os._exit is wrapped to report what was imported when the command left.
    code = (
        "import os, sys, runpy\n"
        "real_exit = os._exit\n"
        "def exit_(code):\n"
        "    mods = sorted(m for m in sys.modules if m.startswith('agtrace.commands.') or m == 'duckdb')\n"
        "    sys.stderr.write(f'fast exit {code} {mods!r}')\n"
        "    sys.stderr.flush()\n"
        "    real_exit(code)\n"
        "os._exit = exit_\n"
        f"sys.argv = ['agtrace', 'stats', '--by', 'decision_type', '--db', {str(fresh_store)!r}]\n"
        "runpy.run_module('agtrace', run_name='__main__')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "fast exit 0 ['agtrace.commands.common', 'agtrace.commands.stats']"


@pytest.mark.parametrize("argv, expected", [
    (["stats", "--by", "agent"], "stats"),
    (["critical-path", "592ff49b"], "critical-path"),
    (["--help"], None),            # the root help lists every command
    (["--version"], None),
    ([], None),
    (["stat"], None),              # a typo: every command, for "did you mean 'stats'?"
    (["critical_path"], None),     # module names are not command names
])
def test_invoked_command(argv, expected):
    from agtrace.cli import invoked_command

    assert invoked_command(argv) == expected


def test_a_typo_in_a_fresh_process_still_suggests_the_command(tmp_path):
    r = run_fresh(["stat"], tmp_path / "none.duckdb")
    assert r.returncode == 2
    assert "No such command 'stat'. Did you mean 'stats'?" in r.stderr


@pytest.mark.parametrize("argv, allowed", [
    (["stats", "--by", "agent"], True),
    (["query", "status = error", "--db", "x.duckdb"], True),
    (["query", "status = error", "-i", "t.jsonl"], False),      # reading files may start a worker pool
    (["stats", "--input=t.jsonl"], False),
    (["show", "abc", "-it.jsonl"], False),
    (["load", "t.jsonl"], False),                               # writes: the normal exit closes the store
    (["--help"], False),
])
def test_fast_exit_only_for_read_only_commands_on_a_store(argv, allowed):
    from agtrace.cli import fast_exit_allowed, invoked_command

    assert fast_exit_allowed(argv, invoked_command(argv)) is allowed


@pytest.mark.parametrize("args, code", [
    (["query", "status = error", "--fail-if-any", "--count"], 1),
    (["query", "status = error", "--fail-if-none", "--count"], 0),
    (["query", "duration_ms > and"], 2),
    (["show", "ffffffff"], 2),
])
def test_exit_codes_survive_the_fast_exit(fresh_store, args, code):
    r = run_fresh(args, fresh_store)
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr


def test_output_cut_short_by_the_reader_is_not_an_error(fresh_store):
    env = {**os.environ, "AGTRACE_DB": str(fresh_store)}
    proc = subprocess.Popen([sys.executable, "-m", "agtrace", "query", "duration_ms >= 0", "--format", "jsonl",
                             "-n", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, stderr
    assert orjson.loads(first)["trace_id"]
    assert stderr == ""
