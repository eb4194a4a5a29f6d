"""Jobs: start a retrain or a pipeline, watch, cancel, resume. Forms work without JavaScript.

Every POST here is guarded by the app-wide ``require_auth`` and ``require_csrf`` dependencies
(app/main.py); the forms carry the session's CSRF token.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from modescope.app import job_specs
from modescope.app.deps import RenderDep, RunsSideDep
from modescope.app.errors import wants_json
from modescope.app.job_specs import RetrainForm, TrainForm
from modescope.app.jobs import Job, JobRunner
from modescope.app.jobs_view import JobRow, job_row, job_rows, retrain_choices, train_size
from modescope.app.store import RowId
from modescope.core.training import UPSAMPLES

pages = APIRouter(prefix="/jobs", tags=["jobs"])
api = APIRouter(prefix="/api/jobs", tags=["jobs"])
routers = (pages, api)


class JobOut(BaseModel):
    id: int
    kind: str
    run: str
    status: str
    params: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    exit_code: int | None
    progress: float | None
    progress_max: float
    progress_label: str
    eta_s: float | None
    log_tail: str
    resumable: bool


# a form gets 303 to /jobs; a JSON client (Accept: application/json) gets 202 and the job
STARTED: dict[str, Any] = {"status_code": 303, "response_class": RedirectResponse,
                           "responses": {202: {"model": JobOut, "description": "The job"}}}


def job_out(r: JobRow) -> JobOut:
    j = r.job
    return JobOut(id=j.id, kind=j.kind, run=j.run, status=j.status, params=j.params,
                  created_at=j.created_at, started_at=j.started_at, finished_at=j.finished_at,
                  exit_code=j.exit_code, progress=r.value, progress_max=r.maximum,
                  progress_label=r.label, eta_s=r.eta_s, log_tail=r.log_tail,
                  resumable=j.resumable)


async def _done(request: Request, jobs: JobRunner, job: Job) -> Response:
    if wants_json(request):
        row = await run_in_threadpool(job_row, jobs, job.id)
        return Response(job_out(row).model_dump_json(), media_type="application/json",
                        status_code=202)
    return RedirectResponse(f"/jobs#job-{job.id}", status_code=303)


@pages.get("", response_class=HTMLResponse)
async def jobs_page(render: RenderDep, side: RunsSideDep) -> HTMLResponse:
    rows = await run_in_threadpool(job_rows, side.jobs)
    runs = await run_in_threadpool(side.runs.list_runs)
    active = any(r.job.status in ("queued", "running") for r in rows)
    parents, parent, settings = await run_in_threadpool(retrain_choices, side.ws)
    return render("jobs.html", {
        "title": "Jobs", "rows": rows, "runs": runs, "refresh": active,
        "size": await run_in_threadpool(train_size, side.ws), "parents": parents,
        "default_parent": parent, "parent_settings": settings, "upsamples": UPSAMPLES})


@api.get("", response_model=list[JobOut])
async def jobs_json(side: RunsSideDep) -> list[JobOut]:
    return [job_out(r) for r in await run_in_threadpool(job_rows, side.jobs)]


@pages.post("/train", **STARTED)
async def start_train(request: Request, side: RunsSideDep, run: str = Form(""),
                      size: int = Form(64), epochs: int = Form(25), batch: int = Form(64),
                      lr_d: float = Form(2e-4), lr_g: float = Form(2e-4),
                      progressive: str = Form(""), stage_epochs: str = Form(""),
                      filters: int = Form(64), upsample: str = Form("transpose")) -> Response:
    """Train a new run on the curated set with the options given (the page fills them in with
    the last run's)."""
    form = TrainForm(run, size, epochs, batch, lr_d, lr_g, progressive, stage_epochs, filters,
                     upsample)
    job = await run_in_threadpool(job_specs.start_train, side.jobs, form)
    return await _done(request, side.jobs, job)


@pages.post("/retrain", **STARTED)
async def start_retrain(request: Request, side: RunsSideDep, run: str = Form(""),
                        size: int | None = Form(None), epochs: int | None = Form(None),
                        batch: int | None = Form(None), n: int = Form(500),
                        parent: str = Form("")) -> Response:
    """Retrain on the curated set with the parent's training options (but those the form
    changes; an empty field keeps the parent's), then generate, index, inspect and compare with
    the parent run (the last inspected run on an earlier dataset version unless one is
    picked)."""
    form = RetrainForm(run, size, epochs, batch, n, parent)
    job = await run_in_threadpool(job_specs.start_retrain, side.jobs, form)
    return await _done(request, side.jobs, job)


@pages.post("/pipeline", **STARTED)
async def start_pipeline(request: Request, side: RunsSideDep, run: str = Form(...),
                         n: int = Form(500)) -> Response:
    job = await run_in_threadpool(job_specs.start_pipeline, side.jobs, run, n)
    return await _done(request, side.jobs, job)


@pages.post("/{job_id}/cancel", **STARTED)
async def cancel_job(request: Request, side: RunsSideDep, job_id: RowId) -> Response:
    job = await run_in_threadpool(side.jobs.cancel, job_id)
    return await _done(request, side.jobs, job)


@pages.post("/{job_id}/resume", **STARTED)
async def resume(request: Request, side: RunsSideDep, job_id: RowId) -> Response:
    job = await run_in_threadpool(job_specs.resume, side.jobs, job_id)
    return await _done(request, side.jobs, job)
