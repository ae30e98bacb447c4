"""Analyses over loaded traces: plain functions over plain data, no CLI imports.

Each module is importable on its own (`agtrace.analysis.critical_path`,
`agtrace.analysis.bottlenecks`, ...); nothing is re-exported here so that
importing one analysis never drags in the others.
"""
