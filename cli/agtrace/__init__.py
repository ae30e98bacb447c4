"""agtrace: answers from exported traces of multi-agent AI systems.

The core (store, ingest, query, analysis) is importable without the CLI:

    from agtrace.store import Store
    from agtrace.ingest import load_paths

    with Store.open("agtrace.duckdb") as store:
        report = load_paths(store, ["sample_traces/"])
"""

__version__ = "0.1.0"
