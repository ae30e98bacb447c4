"""`python -m agtrace` runs the same CLI as the `agtrace` console script."""

from agtrace.cli import main

main()
