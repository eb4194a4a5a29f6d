"""Experiments: sweeps of training runs over one factor (docs/experiments.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from modescope.app import experiments_view as view
from modescope.app.errors import wants_json
from modescope.app.routes.runs import render
from modescope.app.runs_state import runs_side
from modescope.core.experiment import FACTORS

router = APIRouter()


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


@router.get("/experiments", response_class=HTMLResponse)
async def experiments_page(request: Request) -> HTMLResponse:
    items = await run_in_threadpool(view.listing, runs_side(request).ws)
    return render(request, "experiments.html", {"title": "Experiments", "items": items,
                                                "factors": FACTORS})


@router.get("/api/experiments", response_model=list[ExperimentOut])
async def experiments_json(request: Request) -> list[ExperimentOut]:
    items = await run_in_threadpool(view.listing, runs_side(request).ws)
    return [ExperimentOut.model_validate(i) for i in items]


@router.post("/experiments", status_code=303, response_class=RedirectResponse,
             responses={202: {"model": ExperimentOut,
                              "description": "Queued (JSON clients)"}})
async def start_experiment(
        request: Request, name: str = Form(...), factor: str = Form(...),
        values: str = Form(...), epochs: int = Form(10), batch: int = Form(64),
        size: int | None = Form(None), eval_every: int = Form(1),
        eval_samples: int = Form(500), seed: int = Form(0)) -> Response:
    side = runs_side(request)
    form = view.ExperimentForm(name.strip(), factor, values, epochs, batch, size, eval_every,
                               eval_samples, seed)
    exp = await run_in_threadpool(view.start, side.ws, side.jobs, form)
    if wants_json(request):
        page = await run_in_threadpool(view.page, side.ws, exp.name)
        return Response(ExperimentOut.model_validate(page.summary).model_dump_json(),
                        media_type="application/json", status_code=202)
    return RedirectResponse(f"/experiments/{exp.name}", status_code=303)


@router.get("/experiments/{name}", response_class=HTMLResponse)
async def experiment_page(request: Request, name: str) -> HTMLResponse:
    page = await run_in_threadpool(view.page, runs_side(request).ws, name)
    running = any(r["status"] in ("running", "planned") for r in page.summary["rows"])
    return render(request, "experiment.html", {"title": f"Experiment {name}", "p": page,
                                               "refresh": running})


@router.get("/api/experiments/{name}", response_model=ExperimentOut)
async def experiment_json(request: Request, name: str) -> ExperimentOut:
    page = await run_in_threadpool(view.page, runs_side(request).ws, name)
    return ExperimentOut.model_validate(page.summary)
