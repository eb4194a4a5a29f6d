"""What the Jobs page shows of each job: progress from the run folder, ETA, log tail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modescope.app.job_specs import pipeline_steps
from modescope.app.jobs import Job, JobRunner
from modescope.app.lineage import default_parent, inspected, parent_config
from modescope.core.training import TrainConfig
from modescope.core.workspace import DEFAULT_SIZE, Workspace

STEP_LINE = re.compile(r"\[pipeline\] step (\d+)/(\d+): (.*)")


@dataclass(frozen=True)
class JobRow:
    job: Job
    value: float | None  # progress bar value out of ``maximum``
    maximum: float
    label: str
    eta_s: float | None
    log_tail: str


def _train_progress(runner: JobRunner, job: Job) -> tuple[float | None, float, str, float | None]:
    folder = runner.ws.run(job.run)
    p: dict[str, Any] = folder.progress() or {}
    total_epochs = p.get("total_epochs") or job.params.get("total_epochs")
    if p.get("total_steps") and p.get("step") is not None:
        value, maximum = float(p["step"]), float(p["total_steps"])
    elif total_epochs and p.get("epoch") is not None:
        value, maximum = float(p["epoch"]), float(total_epochs)
    else:
        value, maximum = None, 1.0
    eta = p.get("eta_s")
    if eta is None and total_epochs and p.get("epoch"):
        stats = folder.stats()
        if stats and stats[-1].get("wall_s"):
            per_epoch = float(stats[-1]["wall_s"]) / max(1, len(stats))
            eta = max(0.0, (float(total_epochs) - float(p["epoch"])) * per_epoch)
    parts = []
    if p.get("epoch") is not None:
        parts.append(f"epoch {p['epoch']} of {total_epochs or '?'}")
    for k in ("d_loss", "g_loss"):
        if isinstance(p.get(k), int | float):
            parts.append(f"{k} {p[k]:.3f}")
    if isinstance(p.get("images_per_s"), int | float):
        parts.append(f"{p['images_per_s']:.0f} images/s")
    return value, maximum, " · ".join(parts), eta


def _step_progress(runner: JobRunner, job: Job, text: str
                   ) -> tuple[float | None, float, str, float | None]:
    """A pipeline's or retrain's progress from its ``[pipeline] step k/N`` lines; while a
    retrain trains, the training's own progress joins the label."""
    steps = STEP_LINE.findall(text)
    done = int(steps[-1][0]) - 1 if steps else 0
    total = int(steps[-1][1]) if steps else pipeline_steps(job.kind)
    label = steps[-1][2] if steps and job.status == "running" else ""
    eta = None
    if label.startswith("train") and job.status == "running":
        _, _, train_label, eta = _train_progress(runner, job)
        label = " · ".join(x for x in (label, train_label) if x)
    return float(done), float(total), label, eta


def job_rows(runner: JobRunner) -> list[JobRow]:
    rows = []
    for job in runner.jobs():
        long = runner.log_tail(job, 400)  # step lines scroll: a training prints many of its own
        text = "\n".join(long.splitlines()[-20:])
        if job.kind == "train":
            value, maximum, label, eta = _train_progress(runner, job)
        else:
            value, maximum, label, eta = _step_progress(runner, job, long)
        if job.status == "finished":
            value = maximum
        if job.started_at is None:  # queued (or cancelled before it started): no bar at all
            value, label = None, ""
        if job.status not in ("running",):
            eta = None
        rows.append(JobRow(job, value, maximum, label, eta, text))
    return rows


def job_row(runner: JobRunner, job_id: int) -> JobRow:
    return next(r for r in job_rows(runner) if r.job.id == job_id)


def train_size(ws: Workspace) -> int:
    """The retrain form's default image size: the workspace's (before any ingest, the default)."""
    return ws.read_config().image_size if ws.config_path.is_file() else DEFAULT_SIZE


def retrain_choices(ws: Workspace) -> tuple[list[str], str | None, TrainConfig | None]:
    """The runs a retrain can be compared with (those with stored analyses), the default one
    and its training options (what the retrain keeps unless the form changes them)."""
    if not ws.root.is_dir():
        return [], None, None
    parent = default_parent(ws)
    return [r for r in ws.run_names() if inspected(ws, r)], parent, parent_config(ws, parent)
