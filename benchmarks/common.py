"""Timing helpers shared by the benchmark scripts.

Why whole processes: a user runs `agtrace load` or `jq` as a command, so the
honest figure includes interpreter start-up, imports and teardown. Each run is
a child process; wall time comes from a monotonic clock around it and the peak
RSS from the child's own rusage (os.wait4), so no `/usr/bin/time` is needed
and concurrent runs do not pollute each other's figures.

Nothing here imports agtrace: the benchmarks must also run against an
installed `agtrace` command, or none at all (the DuckDB and jq baselines).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Sequence

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
SRC_DIR = BENCH_DIR.parent / "cli"


def child_env() -> dict[str, str]:
    """The environment agtrace runs in during a benchmark: this checkout's
    source first on the path, no store from $AGTRACE_DB, and bytecode allowed.

    An installed agtrace has its bytecode compiled (pip does it at install);
    a checkout run with PYTHONDONTWRITEBYTECODE=1 (set on some machines)
    would compile every agtrace module again on every run, about 0.06 s that
    no user pays. `compile_bytecode()` writes it once before timing.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("AGTRACE_DB", "NO_COLOR", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def compile_bytecode() -> None:
    """Compile agtrace's modules to bytecode, as `pip install` does."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(SRC_DIR / "agtrace")],
                   check=True, stdout=subprocess.DEVNULL, env=child_env())


@dataclass
class Run:
    seconds: float
    cpu_seconds: float  # user + system of the child: less sensitive to a busy machine than wall time
    max_rss_kb: int
    returncode: int
    load_before: float | None = None  # 1-minute load average when the run started


@dataclass
class Stats:
    """Repeated runs of one command."""

    label: str
    runs: list[Run] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def min_s(self) -> float:
        return min(r.seconds for r in self.runs)

    @property
    def max_s(self) -> float:
        return max(r.seconds for r in self.runs)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(r.cpu_seconds for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.max_rss_kb for r in self.runs) / 1024

    def summary(self) -> str:
        times = ", ".join(f"{r.seconds:.2f}" for r in self.runs)
        return (f"{self.label}: median {self.median_s:.2f}s (runs: {times}), "
                f"CPU {self.median_cpu_s:.2f}s, peak RSS {self.peak_rss_mb:.0f} MB")

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "median_s": round(self.median_s, 3),
            "runs_s": [round(r.seconds, 3) for r in self.runs],
            "median_cpu_s": round(self.median_cpu_s, 3),
            "load_before": [None if r.load_before is None else round(r.load_before, 2) for r in self.runs],
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


def run_once(cmd: Sequence[str], stdout: IO | int | None = subprocess.DEVNULL,
             env: dict[str, str] | None = None, cwd: str | Path | None = None) -> Run:
    """Run `cmd` as a child process; wall time and the child's peak RSS.

    ru_maxrss of the reaped child covers its own waited-for descendants too
    (Linux reports it in kilobytes).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=stdout, stderr=subprocess.PIPE, env=env, cwd=cwd)
    # Drain stderr in this thread only after exit would risk a pipe deadlock
    # on chatty commands, so read it while waiting.
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(err.decode("utf-8", "replace")[-4000:])
    return Run(seconds=elapsed, cpu_seconds=usage.ru_utime + usage.ru_stime, max_rss_kb=int(usage.ru_maxrss),
               returncode=proc.returncode)


def wait_for_quiet(max_load: float | None, timeout_s: float = 900.0) -> float:
    """Wait until the 1-minute load average is at most `max_load`; returns it.

    On a shared machine other jobs inflate wall times; this waits for a quiet
    moment (giving up after `timeout_s`, the load is then reported as is).
    """
    deadline = time.monotonic() + timeout_s
    load = os.getloadavg()[0]
    while max_load is not None and load > max_load and time.monotonic() < deadline:
        time.sleep(5)
        load = os.getloadavg()[0]
    return load


def run_repeated(label: str, cmd: Sequence[str], repeat: int = 3, stdout_path: Path | None = None,
                 env: dict[str, str] | None = None, before_each=None, max_load: float | None = None) -> Stats:
    """Run `cmd` `repeat` times (sequentially); raises if any run fails.

    `stdout_path`, if given, receives the last run's standard output (so the
    caller can check what the command produced). `before_each` is called
    before every run (e.g. to delete the previous run's database file).
    `max_load`: wait for a load average at most this before each run.
    """
    stats = Stats(label)
    for i in range(repeat):
        if before_each is not None:
            before_each()
        load = wait_for_quiet(max_load)
        if stdout_path is not None:
            with open(stdout_path, "wb") as out:
                run = run_once(cmd, stdout=out, env=env)
        else:
            run = run_once(cmd, env=env)
        if run.returncode != 0:
            raise RuntimeError(f"{label}: run {i + 1} exited with {run.returncode}: {' '.join(cmd)}")
        run.load_before = load
        stats.runs.append(run)
        print(f"  {label} run {i + 1}/{repeat}: {run.seconds:.2f}s wall, {run.cpu_seconds:.2f}s CPU, "
              f"{run.max_rss_kb / 1024:.0f} MB, load before {load:.1f}", file=sys.stderr)
    return stats


def warm_page_cache(path: Path) -> None:
    """Read the file once so every timed run starts from the same (warm) cache.

    Dropping caches needs privileges we do not assume; warm runs are the
    reproducible choice, and the one that favours the baselines.
    """
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def machine() -> dict[str, object]:
    """CPU model, cores, RAM, OS and tool versions: printed with every result."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    info: dict[str, object] = {
        "cpu": cpu,
        "cores": cores,
        "ram_gb": ram_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    try:
        import duckdb  # noqa: PLC0415 - optional, only for the report

        info["duckdb"] = duckdb.__version__
    except ImportError:
        pass
    return info


def describe_machine() -> str:
    m = machine()
    text = f"{m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}, Python {m['python']}"
    if "duckdb" in m:
        text += f", DuckDB {m['duckdb']}"
    return text


def tool_version(cmd: Sequence[str]) -> str | None:
    """First line of `cmd` (e.g. `jq --version`), or None when not installed."""
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else None


def file_mb(path: Path) -> float:
    return path.stat().st_size / 1e6
