"""The harness talks to modescope through its CLI and the CLI's ``--json``, as a user's script
would, so it keeps working while the product's internals change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any


class CliError(RuntimeError):
    pass


def modescope(*args: str | Path, log: Path | None = None, json_out: bool = True
              ) -> dict[str, Any]:
    """Run ``python -m modescope ARGS --json`` (niced) and return its JSON (``{}`` for a
    command without ``--json``: ``json_out=False``)."""
    argv = ["nice", "-n", "10", sys.executable, "-m", "modescope", *map(str, args),
            *(["--json"] if json_out else [])]
    start = time.perf_counter()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("MODESCOPE_WORKSPACE", None)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL)
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ modescope {' '.join(map(str, args))}  # rc {proc.returncode}, "
                    f"{time.perf_counter() - start:.1f} s\n")
    if proc.returncode != 0:
        raise CliError(f"modescope {' '.join(map(str, args))} failed ({proc.returncode}): "
                       f"{proc.stderr.strip()[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout) if json_out else {}
    return out


@cache
def has_option(command: tuple[str, ...], option: str) -> bool:
    """Whether ``modescope COMMAND --help`` lists OPTION (options the product may add or drop)."""
    proc = subprocess.run([sys.executable, "-m", "modescope", *command, "--help"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    return option in proc.stdout
