"""Ingest: trace files of every supported format -> the store.

Public entry point: `load_paths(store, paths, strict=False) -> LoadReport`.
"""

from agtrace.ingest.loader import FileReport, LoadReport, load_paths

__all__ = ["FileReport", "LoadReport", "load_paths"]
