"""``python -m modescope``: the command line, where no console script is on the PATH."""

from modescope.cli.main import main

main()
