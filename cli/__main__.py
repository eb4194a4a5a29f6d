"""``python -m modescope.cli``: the same command as ``python -m modescope``."""

from modescope.cli.main import main

main()
