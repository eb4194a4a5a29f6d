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

from modescope.app.errors import wants_json
from modescope.app.job_specs import TrainForm, pipeline_job, resume_job, train_job
from modescope.app.jobs import Job
from modescope.app.jobs_view import JobRow, job_rows
from modescope.app.routes.runs import render
from modescope.app.runs_state import runs_side
from modescope.app.store import RowId

router = APIRouter()


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


def _done(request: Request, job: Job) -> Response:
    if wants_json(request):
        rows = [r for r in job_rows(runs_side(request).jobs) if r.job.id == job.id]
        return Response(job_out(rows[0]).model_dump_json(), media_type="application/json",
                        status_code=202)
    return RedirectResponse(f"/jobs#job-{job.id}", status_code=303)


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(request: Request) -> HTMLResponse:
    side = runs_side(request)
    rows = await run_in_threadpool(job_rows, side.jobs)
    runs = await run_in_threadpool(side.runs.list_runs)
    active = any(r.job.status in ("queued", "running") for r in rows)
    return render(request, "jobs.html", {
        "title": "Jobs", "rows": rows, "runs": runs, "refresh": active,
        "size": side.ws.read_config().image_size if side.ws.config_path.is_file() else 64})


@router.get("/api/jobs", response_model=list[JobOut])
async def jobs_json(request: Request) -> list[JobOut]:
    return [job_out(r) for r in await run_in_threadpool(job_rows, runs_side(request).jobs)]


@router.post("/jobs/train", **STARTED)
async def start_train(request: Request, run: str = Form(""), size: int = Form(64),
                      epochs: int = Form(25), batch: int = Form(64),
                      lr_d: float = Form(2e-4), lr_g: float = Form(2e-4),
                      progressive: str = Form(""), stage_epochs: str = Form("")) -> Response:
    side = runs_side(request)
    form = TrainForm(run, size, epochs, batch, lr_d, lr_g, progressive, stage_epochs)
    name, params, argv = await run_in_threadpool(train_job, side.ws, form)
    job = await run_in_threadpool(side.jobs.submit, "train", name, params, argv)
    return _done(request, job)


@router.post("/jobs/pipeline", **STARTED)
async def start_pipeline(request: Request, run: str = Form(...),
                         n: int = Form(500)) -> Response:
    side = runs_side(request)
    name, params, argv = await run_in_threadpool(pipeline_job, side.ws, run, n)
    job = await run_in_threadpool(side.jobs.submit, "pipeline", name, params, argv)
    return _done(request, job)


@router.post("/jobs/{job_id}/cancel", **STARTED)
async def cancel_job(request: Request, job_id: RowId) -> Response:
    job = await run_in_threadpool(runs_side(request).jobs.cancel, job_id)
    return _done(request, job)


@router.post("/jobs/{job_id}/resume", **STARTED)
async def resume(request: Request, job_id: RowId) -> Response:
    side = runs_side(request)
    old = await run_in_threadpool(side.jobs.db.get, job_id)
    name, params, argv = await run_in_threadpool(resume_job, side.ws, old)
    job = await run_in_threadpool(side.jobs.submit, "train", name, params, argv)
    return _done(request, job)
