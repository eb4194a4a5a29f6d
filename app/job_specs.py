"""What a job runs: a training request validated (no TensorFlow) before any process starts."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from modescope.app.analyses import run_kinds
from modescope.app.errors import BadRequest
from modescope.app.jobs import Job, JobConflict
from modescope.core.errors import InputError
from modescope.core.training import TrainRequest
from modescope.core.workspace import Workspace


def pipeline_steps() -> int:
    """The pipeline's steps: generate, index, then one per registered analysis of a run."""
    return 2 + len(run_kinds())


@dataclass(frozen=True)
class TrainForm:
    run: str
    size: int
    epochs: int
    batch: int
    lr_d: float
    lr_g: float
    progressive: str = ""  # "32,64"
    stage_epochs: str = ""  # "2,3"


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise BadRequest(f"{name} {text!r}: give comma-separated whole numbers, "
                         "e.g. 32,64") from None


def train_job(ws: Workspace, form: TrainForm) -> tuple[str, dict[str, Any], list[str]]:
    """(run, params, argv) of a retrain on the curated set, or a 400 naming the bad field."""
    run = form.run.strip() or time.strftime("curated-%Y%m%d-%H%M%S")
    try:
        request = TrainRequest(run=run, size=form.size, epochs=form.epochs, batch=form.batch,
                               lr_d=form.lr_d, lr_g=form.lr_g,
                               progressive=_ints(form.progressive, "progressive"),
                               stage_epochs=_ints(form.stage_epochs, "stage epochs"))
    except InputError as exc:
        raise BadRequest(str(exc)) from None
    if ws.run(run).is_trained():
        raise JobConflict(f"run {run} exists; choose another name or resume it")
    params = request.params(ws.read_config().image_size)
    return run, params, request.to_argv(ws.root, as_json=True)


def resume_job(ws: Workspace, job: Job) -> tuple[str, dict[str, Any], list[str]]:
    if not job.resumable:
        raise BadRequest(f"job #{job.id} is a {job.status} {job.kind} job; only an interrupted, "
                         "cancelled or failed training job can be resumed")
    if not ws.run(job.run).has_checkpoint():
        raise JobConflict(f"run {job.run} has no checkpoint yet; start a new training instead")
    argv = TrainRequest(run=job.run, resume=True).to_argv(ws.root, as_json=True)
    return job.run, {**job.params, "resumes": job.id}, argv


def pipeline_job(ws: Workspace, run: str, n: int) -> tuple[str, dict[str, Any], list[str]]:
    """Generate n samples (trained runs), index them, write every analysis of a run."""
    try:
        folder = ws.run(run)
    except InputError as exc:
        raise BadRequest(str(exc)) from None
    trained = folder.has_checkpoint()
    if not trained and not folder.has_samples():
        raise BadRequest(f"run {run} has neither a checkpoint nor imported samples")
    if not 1 <= n <= 100_000:
        raise BadRequest("samples must be between 1 and 100000")
    argv = [sys.executable, "-m", "modescope.app.pipeline", "--workspace", str(ws.root),
            "--run", run, "--n", str(n)]
    if not trained:
        argv.append("--no-generate")
    return run, {"n": n, "generate": trained}, argv
