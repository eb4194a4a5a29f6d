"""The pipeline worker: ``python -m modescope.app.pipeline --workspace WS --run R --n N``.

Runs in its own process (started by app/jobs.py): ``modescope generate``, ``modescope index
--source generated:R`` (each a subprocess, so TensorFlow lives and dies there), then the NDB
modes and memorisation analyses written to ``runs/R/inspection/`` exactly as the web app caches
them. Prints ``[pipeline] step k/4: ...`` lines that the Jobs page turns into a progress bar.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from modescope.app.analyses import store_analysis
from modescope.app.job_specs import PIPELINE_STEPS
from modescope.core.command import modescope_argv
from modescope.core.errors import ModescopeError
from modescope.core.workspace import Workspace


def step(k: int, text: str) -> None:
    sys.stdout.write(f"[pipeline] step {k}/{PIPELINE_STEPS}: {text}\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modescope.app.pipeline")
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--no-generate", action="store_true")
    args = parser.parse_args(argv)
    ws = Workspace(args.workspace)
    base = modescope_argv()
    commands = [] if args.no_generate else [
        ("generate samples", [*base, "generate", "--workspace", str(ws.root), "--run", args.run,
                              "--n", str(args.n)])]
    commands.append(("index samples", [*base, "index", "--workspace", str(ws.root),
                                       "--source", f"generated:{args.run}"]))
    k = 0
    if args.no_generate:
        k += 1
        step(k, "generate samples: skipped (imported samples)")
    for text, cmd in commands:
        k += 1
        step(k, text)
        code = subprocess.call(cmd, stdin=subprocess.DEVNULL)
        if code != 0:
            sys.stdout.write(f"[pipeline] {text} failed with exit code {code}\n")
            return code or 1
    for kind in ("modes", "memorisation"):
        k += 1
        step(k, f"inspect {kind}")
        try:
            store_analysis(ws, args.run, kind)
        except ModescopeError as exc:
            sys.stdout.write(f"[pipeline] {exc.detail}\n")
            return 1
    sys.stdout.write("[pipeline] done\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
