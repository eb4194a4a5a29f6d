"""Experiments: sweeps of training runs over one factor (docs/experiments.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from modescope.app import experiments_view as view
from modescope.app.deps import RenderDep, RunsSideDep, WorkspaceDep
from modescope.app.errors import wants_json
from modescope.core.experiment import FACTORS

pages = APIRouter(prefix="/experiments", tags=["experiments"])
api = APIRouter(prefix="/api/experiments", tags=["experiments"])
routers = (pages, api)


class ExperimentRowOut(BaseModel):
    value: str
    run: str
    status: str
    images: int | None
    epochs: int
    train_seconds: float | None
    eval_seconds: float
    final: dict[str, float | int | None]
    best: dict[str, float | int | None]
    curve: list[dict[str, float]]


class ExperimentOut(BaseModel):
    name: str
    factor: str
    values: list[str]
    base: dict[str, Any]
    created_at: str
    rows: list[ExperimentRowOut]


@pages.get("", response_class=HTMLResponse)
async def experiments_page(render: RenderDep, ws: WorkspaceDep) -> HTMLResponse:
    items = await run_in_threadpool(view.listing, ws)
    return render("experiments.html", {"title": "Experiments", "items": items,
                                       "factors": FACTORS})


@api.get("", response_model=list[ExperimentOut])
async def experiments_json(ws: WorkspaceDep) -> list[ExperimentOut]:
    items = await run_in_threadpool(view.listing, ws)
    return [ExperimentOut.model_validate(i) for i in items]


@pages.post("", status_code=303, response_class=RedirectResponse,
            responses={202: {"model": ExperimentOut, "description": "Queued (JSON clients)"}})
async def start_experiment(
        request: Request, side: RunsSideDep, name: str = Form(...), factor: str = Form(...),
        values: str = Form(...), epochs: int = Form(10), batch: int = Form(64),
        size: int | None = Form(None), eval_every: int = Form(1),
        eval_samples: int = Form(500), seed: int = Form(0)) -> Response:
    form = view.ExperimentForm(name.strip(), factor, values, epochs, batch, size, eval_every,
                               eval_samples, seed)
    exp = await run_in_threadpool(view.start, side.ws, side.jobs, form)
    if wants_json(request):
        page = await run_in_threadpool(view.page, side.ws, exp.name)
        return Response(ExperimentOut.model_validate(page.summary).model_dump_json(),
                        media_type="application/json", status_code=202)
    return RedirectResponse(f"/experiments/{exp.name}", status_code=303)


@pages.get("/{name}", response_class=HTMLResponse)
async def experiment_page(render: RenderDep, ws: WorkspaceDep, name: str) -> HTMLResponse:
    page = await run_in_threadpool(view.page, ws, name)
    running = any(r["status"] in ("running", "planned") for r in page.summary["rows"])
    return render("experiment.html", {"title": f"Experiment {name}", "p": page,
                                      "refresh": running})


@api.get("/{name}", response_model=ExperimentOut)
async def experiment_json(ws: WorkspaceDep, name: str) -> ExperimentOut:
    page = await run_in_threadpool(view.page, ws, name)
    return ExperimentOut.model_validate(page.summary)
