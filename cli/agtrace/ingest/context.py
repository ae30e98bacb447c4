"""What a reader gets to work with: the sink and the file's statistics."""

from __future__ import annotations

from dataclasses import dataclass

from agtrace.ingest.sink import FileStats, SpanSink


@dataclass
class ReadContext:
    sink: SpanSink
    stats: FileStats

    def bad(self, line: int | None, reason: str) -> None:
        self.stats.add_bad(line, reason)

    def warn(self, line: int | None, reason: str) -> None:
        self.stats.add_warning(line, reason)
