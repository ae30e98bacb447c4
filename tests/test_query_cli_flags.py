"""Options across commands: one short flag per long option, one meaning per short flag;
examples in --help print one per line."""

from __future__ import annotations

from collections import defaultdict

import typer.main

from agtrace.cli import app
from conftest import invoke

# The settled table (README / report): short flag -> long option.
SHORT_FLAGS = {
    "-i": "--input", "-f": "--format", "-w": "--where", "-n": "--limit", "-s": "--sort", "-r": "--reverse",
    "-b": "--by", "-c": "--columns", "-m": "--metric", "-d": "--depth", "-a": "--attrs", "-W": "--width",
    "-e": "--expect", "-q": "--quiet",
}


def _options():
    """(command, long options, short flags) for every option of every command."""
    cmd = typer.main.get_command(app)
    for name, c in cmd.commands.items():
        for p in c.get_params(c.context_class(c)):  # typer vendors click: no `import click`
            opts = list(p.opts) + list(p.secondary_opts)
            longs = [o for o in opts if o.startswith("--")]
            shorts = [o for o in opts if o.startswith("-") and not o.startswith("--")]
            if longs:
                yield name, longs, shorts


def test_each_short_flag_means_one_long_option_everywhere():
    seen = defaultdict(set)
    for name, longs, shorts in _options():
        for s in shorts:
            assert SHORT_FLAGS.get(s) in longs, (name, longs, s)
            seen[s].add(name)
    assert set(seen) == set(SHORT_FLAGS)


def test_each_long_option_has_the_same_short_flag_everywhere():
    by_long = defaultdict(set)
    for name, longs, shorts in _options():
        for long in longs:
            by_long[long].add(tuple(shorts))
    assert {k: v for k, v in by_long.items() if len(v) > 1} == {}
    # the short flags that moved keep their long options
    assert by_long["--span"] == {()} and by_long["--collapse-over"] == {()} and by_long["--decision"] == {()}


def test_bottlenecks_top_is_also_limit():
    for flag in ("--top", "--limit", "-n"):
        r = invoke(["bottlenecks", flag, "x"])
        assert r.exit_code == 2 and "Invalid value for '--top' / '--limit' / '-n': 'x' is not a valid int" in r.stderr


def test_help_examples_print_one_per_line_unwrapped():
    r = invoke(["query", "--help"])
    lines = r.stdout.splitlines()
    i = lines.index("  Examples:")
    assert lines[i + 1:i + 7] == [
        "",
        "    agtrace query 'duration_ms > 5000'",
        "    agtrace query 'decision_type = \"escalate_to_human\" and decision_confidence < 0.8'",
        "    agtrace query 'status = error and has_ancestor(name = \"triage_agent.invoke\")' --fail-if-any",
        "    agtrace query 'type = \"llm\"' -c agent -c model -c input_tokens --sort -input_tokens",
        "",
    ]


def test_every_analysis_command_keeps_its_examples_whole():
    for command in ("traces", "show", "query", "stats", "critical-path", "bottlenecks", "explain", "check"):
        lines = invoke([command, "--help"]).stdout.splitlines()
        i = lines.index("  Examples:")
        block = lines[i + 2:lines.index("", i + 2)]
        assert len(block) >= 2, command
        assert all(line.startswith("    agtrace " + command) for line in block), (command, block)
