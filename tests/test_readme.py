"""The README's examples are real: every `console` block's commands run on the
bundled samples and print exactly what the README shows.

A block opens with ```console; `$ agtrace ...` lines are commands, the lines
after each are its expected stdout. A block preceded by the line
`<!-- readme: output varies -->` is shown but not compared (timings, paths).
`python tests/test_readme.py --update` rewrites the blocks from real runs.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP_MARK = "<!-- readme: output varies -->"
BLOCK_RE = re.compile(r"(?P<before>[^\n]*\n)```console\n(?P<body>.*?)```", re.S)


def blocks(text: str):
    for m in BLOCK_RE.finditer(text):
        skip = m.group("before").strip() == SKIP_MARK
        cmds, cur = [], None
        for line in m.group("body").splitlines():
            if line.startswith("$ "):
                cur = [line[2:], []]
                cmds.append(cur)
            elif cur is not None:
                cur[1].append(line)
        yield m, skip, [(c, "\n".join(out) + ("\n" if out else "")) for c, out in cmds]


def run(cmd: str) -> str:
    from typer.testing import CliRunner

    from agtrace.cli import app

    args = shlex.split(cmd)
    assert args[0] == "agtrace", cmd
    r = CliRunner().invoke(app, args[1:])
    assert r.exit_code in (0, 1), (cmd, r.stderr)
    return r.stdout


def _store(tmp_dir: Path) -> str:
    db = str(tmp_dir / "readme.duckdb")
    os.environ["AGTRACE_DB"] = db
    os.environ.pop("NO_COLOR", None)
    os.environ.pop("GITHUB_ACTIONS", None)
    run("agtrace load sample_traces/")
    return db


@pytest.fixture(scope="module")
def readme_env(tmp_path_factory):
    old_cwd, old_db = os.getcwd(), os.environ.get("AGTRACE_DB")
    os.chdir(ROOT)
    db = _store(tmp_path_factory.mktemp("readme"))
    yield db
    os.chdir(old_cwd)
    if old_db is None:
        os.environ.pop("AGTRACE_DB", None)
    else:
        os.environ["AGTRACE_DB"] = old_db


CASES = [(cmd, out) for _, skip, cmds in blocks(README.read_text()) if not skip for cmd, out in cmds]


@pytest.mark.parametrize("cmd, expected", CASES, ids=[c for c, _ in CASES])
def test_readme_example(readme_env, isolated_store, monkeypatch, cmd, expected):
    monkeypatch.setenv("AGTRACE_DB", readme_env)  # the module's store, not the per-test one
    assert run(cmd) == expected


def test_readme_has_examples():
    assert len(CASES) >= 8


def update() -> None:
    import tempfile

    sys.path.insert(0, str(ROOT / "cli"))
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as d:
        _store(Path(d))
        text = README.read_text()
        out, pos = [], 0
        for m, skip, cmds in blocks(text):
            out.append(text[pos:m.start("body")])
            body = []
            for cmd, expected in cmds:
                body.append(f"$ {cmd}\n")
                body.append(expected if skip else run(cmd))
            out.append("".join(body))
            pos = m.end("body")
        out.append(text[pos:])
        README.write_text("".join(out))


if __name__ == "__main__" and "--update" in sys.argv:
    update()
