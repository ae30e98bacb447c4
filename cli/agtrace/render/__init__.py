"""Rendering: machine formats (json, jsonl, csv, tsv) and terminal views.

`render.output` holds the writers every command shares, so that `table` and
`csv` of the same rows can never disagree. Terminal views built on rich live
beside it; the core never imports this package.
"""
