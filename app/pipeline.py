"""The pipeline worker: ``python -m modescope.app.pipeline --workspace WS --run R --n N``.

Runs in its own process (started by app/jobs.py): ``modescope generate``, ``modescope index
--source generated:R`` (each a subprocess, so TensorFlow lives and dies there), then every
registered analysis of a run (NDB modes, memorisation, ...) written to ``runs/R/inspection/``
exactly as the web app caches them. Prints ``[pipeline] step k/N: ...`` lines that the Jobs page
turns into a progress bar.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from modescope.app.analyses import run_kinds, store_analysis
from modescope.core.command import modescope_argv
from modescope.core.errors import ModescopeError
from modescope.core.workspace import Workspace


@dataclass(frozen=True)
class Step:
    text: str
    command: list[str] | None = None  # a subprocess to run
    analysis: str | None = None  # a run analysis to compute and store


def plan(ws: Workspace, run: str, n: int, no_generate: bool) -> list[Step]:
    """The steps, in order: generate (or skipped: imported samples), index, each analysis."""
    base = modescope_argv()
    generate = (Step("generate samples: skipped (imported samples)") if no_generate else
                Step("generate samples", [*base, "generate", "--workspace", str(ws.root),
                                          "--run", run, "--n", str(n)]))
    index = Step("index samples", [*base, "index", "--workspace", str(ws.root),
                                   "--source", f"generated:{run}"])
    return [generate, index, *(Step(f"inspect {kind}", analysis=kind) for kind in run_kinds())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modescope.app.pipeline")
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--no-generate", action="store_true")
    args = parser.parse_args(argv)
    ws = Workspace(args.workspace)
    steps = plan(ws, args.run, args.n, args.no_generate)
    for k, step in enumerate(steps, start=1):
        sys.stdout.write(f"[pipeline] step {k}/{len(steps)}: {step.text}\n")
        sys.stdout.flush()
        if step.command is not None:
            code = subprocess.call(step.command, stdin=subprocess.DEVNULL)
            if code != 0:
                sys.stdout.write(f"[pipeline] {step.text} failed with exit code {code}\n")
                return code or 1
        if step.analysis is not None:
            try:
                store_analysis(ws, args.run, step.analysis)
            except ModescopeError as exc:
                sys.stdout.write(f"[pipeline] {exc.detail}\n")
                return 1
    sys.stdout.write("[pipeline] done\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
