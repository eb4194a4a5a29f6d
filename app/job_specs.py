"""What a job runs: a training request validated (no TensorFlow) before any process starts,
and the one call per Jobs form that validates and queues it."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from modescope.app.analyses import run_kinds
from modescope.app.jobs import Job, JobConflict, JobRunner
from modescope.app.lineage import check_parent, default_parent, parent_config
from modescope.core.errors import InputError
from modescope.core.training import TrainRequest
from modescope.core.workspace import Workspace


def pipeline_steps(kind: str = "pipeline") -> int:
    """The pipeline's steps: generate, index, then one per registered analysis of a run; a
    retrain adds training first and the comparison with its parent last."""
    return 2 + len(run_kinds()) + (2 if kind == "retrain" else 0)


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
    filters: int = 64
    upsample: str = "transpose"


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise InputError(f"{name} {text!r}: give comma-separated whole numbers, "
                         "e.g. 32,64") from None


def train_job(ws: Workspace, form: TrainForm) -> tuple[str, dict[str, Any], list[str]]:
    """(run, params, argv) of a new training on the curated set, or a 400 naming the bad
    field."""
    run = form.run.strip() or time.strftime("curated-%Y%m%d-%H%M%S")
    request = TrainRequest(run=run, size=form.size, epochs=form.epochs, batch=form.batch,
                           lr_d=form.lr_d, lr_g=form.lr_g, filters=form.filters,
                           upsample=form.upsample,
                           progressive=_ints(form.progressive, "progressive"),
                           stage_epochs=_ints(form.stage_epochs, "stage epochs"))
    if ws.run(run).is_trained():
        raise JobConflict(f"run {run} exists; choose another name or resume it")
    params = request.params(form.size)  # the form always names the size: no workspace read
    return run, params, request.to_argv(ws.root, as_json=True)


@dataclass(frozen=True)
class RetrainForm:
    """A retrain: options left None are the parent's (the workspace's defaults without one)."""
    run: str = ""
    size: int | None = None
    epochs: int | None = None
    batch: int | None = None
    n: int = 500  # samples generated and inspected
    parent: str = ""  # the run compared with; "" = ``default_parent``


def _check_n(n: int) -> None:
    if not 1 <= n <= 100_000:
        raise InputError("samples must be between 1 and 100000")


def retrain_job(ws: Workspace, form: RetrainForm) -> tuple[str, dict[str, Any], list[str]]:
    """Train on the curated set with the parent's options (but those the form changes),
    generate, index, inspect and compare with the parent: one pipeline worker
    (app/pipeline.py) given the training command line."""
    run = form.run.strip() or time.strftime("curated-%Y%m%d-%H%M%S")
    _check_n(form.n)
    parent = check_parent(ws, form.parent.strip()) if form.parent.strip() else \
        default_parent(ws)
    if parent == run:
        raise InputError("a run cannot be compared with itself: pick another parent")
    changes: dict[str, Any] = {key: value for key, value in
               (("size", form.size), ("epochs", form.epochs), ("batch", form.batch))
               if value is not None}
    config = parent_config(ws, parent)
    request = TrainRequest.following(config, run, **changes) if config is not None else \
        TrainRequest(run=run, **changes)
    if ws.run(run).is_trained():
        raise JobConflict(f"run {run} exists; choose another name or resume it")
    params = request.params(request.size or ws.read_config().image_size)
    train_argv = request.to_argv(ws.root, as_json=True)
    argv = [sys.executable, "-m", "modescope.app.pipeline", "--workspace", str(ws.root),
            "--run", run, "--n", str(form.n), "--train-argv", json.dumps(train_argv)]
    if parent is not None:
        argv += ["--parent", parent]
    return run, {**params, "n": form.n, "parent": parent}, argv


def resume_job(ws: Workspace, job: Job) -> tuple[str, dict[str, Any], list[str]]:
    if not job.resumable:
        raise InputError(f"job #{job.id} is a {job.status} {job.kind} job; only an interrupted, "
                         "cancelled or failed training job can be resumed")
    if job.kind == "retrain":  # the worker resumes training and skips the steps done
        return job.run, {**job.params, "resumes": job.id}, job.argv
    if not ws.run(job.run).has_checkpoint():
        raise JobConflict(f"run {job.run} has no checkpoint yet; start a new training instead")
    argv = TrainRequest(run=job.run, resume=True).to_argv(ws.root, as_json=True)
    return job.run, {**job.params, "resumes": job.id}, argv


def pipeline_job(ws: Workspace, run: str, n: int) -> tuple[str, dict[str, Any], list[str]]:
    """Generate n samples (trained runs), index them, write every analysis of a run."""
    folder = ws.run(run)
    trained = folder.has_checkpoint()
    if not trained and not folder.has_samples():
        raise InputError(f"run {run} has neither a checkpoint nor imported samples")
    _check_n(n)
    argv = [sys.executable, "-m", "modescope.app.pipeline", "--workspace", str(ws.root),
            "--run", run, "--n", str(n)]
    if not trained:
        argv.append("--no-generate")
    return run, {"n": n, "generate": trained}, argv


def start_train(jobs: JobRunner, form: TrainForm) -> Job:
    """Validate a training form and queue it (400/409 before anything is queued)."""
    run, params, argv = train_job(jobs.ws, form)
    return jobs.submit("train", run, params, argv)


def start_pipeline(jobs: JobRunner, run: str, n: int) -> Job:
    run, params, argv = pipeline_job(jobs.ws, run, n)
    return jobs.submit("pipeline", run, params, argv)


def start_retrain(jobs: JobRunner, form: RetrainForm) -> Job:
    """Validate a retrain-and-inspect form and queue it (400/409 before anything is queued)."""
    run, params, argv = retrain_job(jobs.ws, form)
    return jobs.submit("retrain", run, params, argv)


def resume(jobs: JobRunner, job_id: int) -> Job:
    """Queue a job that continues an interrupted one: training from its checkpoint."""
    job = jobs.db.get(job_id)
    run, params, argv = resume_job(jobs.ws, job)
    return jobs.submit(job.kind, run, params, argv)
