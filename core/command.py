"""How to start modescope itself in a child process (jobs, experiments, the pipeline)."""

from __future__ import annotations

import sys
from pathlib import Path


def modescope_argv() -> list[str]:
    """The modescope command of this environment (its console script, else the module)."""
    script = Path(sys.executable).parent / "modescope"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "modescope"]
