"""CLI commands, one module each; every module here is registered on the app.

A command module imports `app` from `agtrace.app`, declares its command with
`@app.command(...)` and sets `ORDER` (its place in `agtrace --help`). Commands
parse flags, call the core and render; they hold no analysis logic.
"""
