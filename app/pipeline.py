"""The pipeline worker: ``python -m modescope.app.pipeline --workspace WS --run R --n N``.

Runs in its own process (started by app/jobs.py): ``modescope generate``, ``modescope index
--source generated:R`` (each a subprocess, so TensorFlow lives and dies there), then every
registered analysis of a run (NDB modes, memorisation, ...) written to ``runs/R/inspection/``
exactly as the web app caches them. Prints ``[pipeline] step k/N: ...`` lines that the Jobs page
turns into a progress bar.

With ``--train-argv`` (a retrain job: app/retrain.py) it first trains the run with that
``modescope train`` command line, records the run's lineage (``--parent``, the flags between
the two dataset versions), and ends with a comparison against the parent
(``runs/R/comparison.json``). Run again on the same run it resumes: training continues from its
checkpoint (or is skipped once finished), and the samples, their index and analyses already
written are kept.

Cancel: the job's SIGTERM reaches the whole process group, the running step's child included;
the worker waits for that child (the trainer saves a checkpoint) and exits 143.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from modescope.app.analyses import current_versions, run_kinds, store_analysis
from modescope.app.lineage import record_comparison, record_lineage
from modescope.core.command import modescope_argv
from modescope.core.errors import ModescopeError
from modescope.core.training import TrainRequest
from modescope.core.workspace import Workspace
from modescope.indexer.store import IndexStore

STOPPED = 143  # the exit code after a cancel (128 + SIGTERM)


@dataclass(frozen=True)
class Step:
    text: str
    command: list[str] | None = None  # a subprocess to run
    analysis: str | None = None  # a run analysis to compute and store
    action: str | None = None  # "train" or "compare" (a retrain job's first and last steps)


class Stopped(ModescopeError):
    """The job was cancelled (SIGTERM): the worker says so and exits with STOPPED."""

    status = 409
    title = "Cancelled"
    exit_code = STOPPED


def plan(ws: Workspace, run: str, n: int, no_generate: bool, *,
         train: list[str] | None = None, parent: str | None = None) -> list[Step]:
    """The steps, in order: [train,] generate (or skipped: imported samples), index, each
    analysis[, compare with the parent]."""
    base = modescope_argv()
    generate = (Step("generate samples: skipped (imported samples)") if no_generate else
                Step("generate samples", [*base, "generate", "--workspace", str(ws.root),
                                          "--run", run, "--n", str(n)]))
    index = Step("index samples", [*base, "index", "--workspace", str(ws.root),
                                   "--source", f"generated:{run}"])
    steps = [generate, index, *(Step(f"inspect {kind}", analysis=kind) for kind in run_kinds())]
    if train is not None:
        steps.insert(0, Step("train on the curated set", train, action="train"))
        steps.append(Step(f"compare with {parent}" if parent else "compare: no parent run",
                          action="compare"))
    return steps


def done_already(ws: Workspace, run: str, n: int, step: Step) -> bool:
    """Whether a resumed retrain can skip this step: what it writes is there and current."""
    folder = ws.run(run)
    if step.action == "train":
        return (folder.progress() or {}).get("status") == "finished"
    if step.analysis is not None:
        stored = folder.inspection(step.analysis)
        return stored is not None and stored.get("versions") == current_versions(
            ws, run, step.analysis)
    if step.text == "generate samples":
        return len(folder.sample_numbers()) == n
    if step.text == "index samples":
        meta = IndexStore(ws, f"generated:{run}").meta_path
        return (meta.is_file() and folder.generated_dir.is_dir()
                and meta.stat().st_mtime >= folder.generated_dir.stat().st_mtime)
    return False


def _say(text: str) -> None:
    sys.stdout.write(f"[pipeline] {text}\n")
    sys.stdout.flush()


def _call(command: list[str]) -> int:
    """Run one step's command; on a cancel wait for it (it got the signal too), then stop."""
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    try:
        return proc.wait()
    except Stopped:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the job kills the group if it hangs
        proc.wait()
        raise


def _train(ws: Workspace, run: str, argv: list[str], parent: str | None) -> int:
    """Train (resume from the checkpoint when there is one), then record the lineage."""
    folder = ws.run(run)
    if folder.has_checkpoint():
        _say(f"resuming training from its checkpoint (epoch "
             f"{folder.checkpoint_state().get('epoch')})")
        argv = TrainRequest(run=run, resume=True).to_argv(ws.root, as_json=True)
    code = _call(argv)
    if code != 0:
        return code
    status = (folder.progress() or {}).get("status")
    if status != "finished":
        _say(f"training stopped ({status}); resume the job to continue")
        return 1
    if parent is not None:
        record_lineage(ws, parent, run)
    return 0


def _step(ws: Workspace, args: argparse.Namespace, step: Step) -> int:
    if step.action == "train" and step.command is not None:
        return _train(ws, args.run, step.command, args.parent)
    if step.action == "compare":
        if args.parent is not None:
            _say(record_comparison(ws, args.parent, args.run)["sentence"])
        return 0
    if step.command is not None:
        code = _call(step.command)
        if code != 0:
            _say(f"{step.text} failed with exit code {code}")
            return code
    if step.analysis is not None:
        store_analysis(ws, args.run, step.analysis)
    return 0


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modescope.app.pipeline")
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--no-generate", action="store_true")
    parser.add_argument("--train-argv", type=json.loads, default=None,
                        help="a retrain: this `modescope train` command line (JSON list) first")
    parser.add_argument("--parent", default=None, help="a retrain: the run it is compared with")
    args = parser.parse_args(argv)
    ws = Workspace(args.workspace)
    retrain = args.train_argv is not None
    steps = plan(ws, args.run, args.n, args.no_generate, train=args.train_argv,
                 parent=args.parent)
    signal.signal(signal.SIGTERM, _stop)
    try:
        for k, step in enumerate(steps, start=1):
            skip = retrain and done_already(ws, args.run, args.n, step)
            _say(f"step {k}/{len(steps)}: {step.text}{' (done already)' if skip else ''}")
            if not skip and (code := _step(ws, args, step)) != 0:
                return code or 1
    except Stopped:
        _say("cancelled")
        return STOPPED
    except ModescopeError as exc:
        _say(exc.detail)
        return 1
    _say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
