"""What a job runs: parameters validated (TrainConfig, no TensorFlow) before any process starts."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from app.errors import BadRequest
from app.jobs import Job, JobConflict
from modescope.command import modescope_argv
from modescope.errors import InputError
from modescope.samples import check_run_name, run_dir
from modescope.workspace import Workspace
from trainer.config import ConfigError, TrainConfig

PIPELINE_STEPS = 4  # generate, index, modes, memorisation


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
        check_run_name(run)
    except InputError as exc:
        raise BadRequest(str(exc)) from None
    if (run_dir(ws, run) / "config.json").exists():
        raise JobConflict(f"run {run} exists; choose another name or resume it")
    progressive = _ints(form.progressive, "progressive")
    stages = _ints(form.stage_epochs, "stage epochs")
    try:
        config = TrainConfig(size=form.size, epochs=form.epochs, batch_size=form.batch,
                             lr_d=form.lr_d, lr_g=form.lr_g, progressive=progressive,
                             stage_epochs=stages)
    except ConfigError as exc:
        raise BadRequest(str(exc)) from None
    argv = [*modescope_argv(), "train", "--workspace", str(ws.root), "--run", run,
            "--size", str(config.size), "--epochs", str(config.epochs),
            "--batch", str(config.batch_size), "--lr-d", repr(config.lr_d),
            "--lr-g", repr(config.lr_g)]
    if config.progressive:
        argv += ["--progressive", ",".join(map(str, config.progressive)),
                 "--stage-epochs", ",".join(map(str, config.stage_epochs))]
    argv.append("--json")
    params = {"size": config.size, "epochs": config.epochs, "batch": config.batch_size,
              "lr_d": config.lr_d, "lr_g": config.lr_g,
              "progressive": list(config.progressive), "stage_epochs": list(config.stage_epochs),
              "total_epochs": config.total_epochs}
    return run, params, argv


def resume_job(ws: Workspace, job: Job) -> tuple[str, dict[str, Any], list[str]]:
    if not job.resumable:
        raise BadRequest(f"job #{job.id} is a {job.status} {job.kind} job; only an interrupted, "
                         "cancelled or failed training job can be resumed")
    if not (run_dir(ws, job.run) / "checkpoints" / "latest" / "state.json").is_file():
        raise JobConflict(f"run {job.run} has no checkpoint yet; start a new training instead")
    argv = [*modescope_argv(), "train", "--workspace", str(ws.root), "--resume", job.run,
            "--json"]
    return job.run, {**job.params, "resumes": job.id}, argv


def pipeline_job(ws: Workspace, run: str, n: int) -> tuple[str, dict[str, Any], list[str]]:
    """Generate n samples (trained runs), index them, write both analyses."""
    try:
        check_run_name(run)
    except InputError as exc:
        raise BadRequest(str(exc)) from None
    folder = run_dir(ws, run)
    trained = (folder / "checkpoints" / "latest").is_dir()
    if not trained and not (folder / "generated").is_dir():
        raise BadRequest(f"run {run} has neither a checkpoint nor imported samples")
    if not 1 <= n <= 100_000:
        raise BadRequest("samples must be between 1 and 100000")
    argv = [sys.executable, "-m", "app.pipeline", "--workspace", str(ws.root), "--run", run,
            "--n", str(n)]
    if not trained:
        argv.append("--no-generate")
    return run, {"n": n, "generate": trained}, argv
