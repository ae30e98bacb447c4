"""The Typer application object and the error boundary of the CLI.

Every command runs inside `AgtraceGroup.invoke`, which turns the core's
`AgtraceError`s into a message on stderr and the documented exit code, and
Ctrl-C into exit 130, so a user never sees a traceback for their own mistake.
"""

from __future__ import annotations

import sys


import typer
from typer.core import TyperGroup

from agtrace import __version__
from agtrace.errors import AgtraceError, ExitCode, ExpressionError


def print_error(exc: AgtraceError) -> None:
    if isinstance(exc, ExpressionError):
        typer.echo(exc.render(), err=True)
    else:
        typer.echo(f"error: {exc.message}", err=True)
    if exc.hint:
        typer.echo(f"hint: {exc.hint}", err=True)


def _is_interrupt(exc: Exception) -> bool:
    """Ctrl-C that arrived while DuckDB was executing: it cancels the query and
    raises its own error (InterruptException, or RuntimeError 'Query interrupted'),
    or, when it landed in the Python code that feeds DuckDB an Arrow table
    (`-i` reads its staged batches that way), an error wrapping the
    KeyboardInterrupt ("... failed: KeyboardInterrupt: ")."""
    if type(exc).__name__ == "InterruptException":
        return True
    text = str(exc)
    if type(exc).__module__ == "_duckdb" and "KeyboardInterrupt" in text:
        return True
    return isinstance(exc, RuntimeError) and text.strip().lower() == "query interrupted"


def _interrupted() -> typer.Exit:
    typer.echo("interrupted", err=True)
    return typer.Exit(int(ExitCode.INTERRUPTED))


COMMAND_ORDER = ["load", "traces", "show", "query", "stats", "critical-path", "bottlenecks", "explain", "check"]


class AgtraceGroup(TyperGroup):
    def list_commands(self, ctx):  # in ORDER, not alphabetically
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(self.commands, key=lambda n: (rank.get(n, len(rank)), n))

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AgtraceError as exc:
            print_error(exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            raise _interrupted() from None
        except BrokenPipeError:
            # `agtrace ... | head`: the reader went away; that is not an error.
            try:
                sys.stdout = None  # type: ignore[assignment]
            except Exception:
                pass
            raise typer.Exit(0) from None
        except Exception as exc:
            if not _is_interrupt(exc):
                raise
            raise _interrupted() from None


app = typer.Typer(
    cls=AgtraceGroup,
    name="agtrace",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help=(
        "Answers from exported traces of multi-agent AI systems.\n\n"
        "Load OTLP (JSON or protobuf), Jaeger, Zipkin, OpenTelemetry SDK or JSONL span dumps into an "
        "embedded DuckDB store, then ask: which agent decided what, where the time went, what failed.\n\n"
        "Store: --db PATH, else $AGTRACE_DB, else ./agtrace.duckdb. "
        "Analysis commands also take -i FILE to read files directly.\n\n"
        "Examples:\n\n"
        # \b: click prints the examples as written, one per line, never re-wrapped
        "\b\n"
        "  agtrace load sample_traces/\n"
        "  agtrace traces\n"
        "  agtrace show 592ff49b\n"
        "  agtrace query 'type = \"decision\" and decision_confidence < 0.8'\n"
        "  agtrace stats --by decision_type"
    ),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agtrace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", help="Print the version and exit.", callback=_version, is_eager=True),
) -> None:
    """Answers from exported traces of multi-agent AI systems."""
