"""Runs: the list, one run's timeline, its modes page, and their JSON twins."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from modescope.app.analyses import Analysis, AnalysisUnavailable
from modescope.app.plots import loss_chart, scores_chart
from modescope.app.run_images import PNG_RESPONSES, image_response
from modescope.app.runs_state import runs_side
from modescope.app.runs_view import RunDetail, RunSummary, safe_run

router = APIRouter()


class MetricsOut(BaseModel):
    ndb_over_k: float | None
    js: float | None
    k: int | None
    dropped: list[int]
    copy_rate: float | None
    copies: int | None
    checkpoint_epoch: int | None = None  # the figures are this checkpoint's scores
    modes_fresh: bool
    memorisation_fresh: bool


class RunOut(BaseModel):
    name: str
    kind: str
    status: str
    epoch: int | None
    total_epochs: int | None
    samples: int
    indexed: bool
    metrics: MetricsOut


class RunDetailOut(BaseModel):
    run: RunOut
    config: dict[str, Any] | None
    dataset: dict[str, Any] | None
    stats: list[dict[str, Any]]
    epochs: list[int]
    epoch_urls: list[str]
    metrics_rows: list[dict[str, Any]]
    progress: dict[str, Any] | None
    tensorboard: str | None
    checkpoints: list[str]
    imported_from: str | None


class AnalysisOut(BaseModel):
    run: str
    computed_at: str
    versions: dict[str, str]
    result: dict[str, Any]


def run_out(s: RunSummary) -> RunOut:
    return RunOut(name=s.name, kind=s.kind, status=s.status, epoch=s.epoch,
                  total_epochs=s.total_epochs, samples=s.samples, indexed=s.indexed,
                  metrics=MetricsOut(**s.metrics.__dict__))


async def analysis(request: Request, run: str, kind: str,
                   versions: dict[str, str | None] | None = None
                   ) -> tuple[Analysis | None, str | None]:
    """The fresh analysis, or while it is computed off the event loop: the last one, marked
    (stale-while-revalidate: a flag burst must not make every page wait for k-means), or, when
    there is none yet, the fresh one after at most ``analysis_wait_s``."""
    analyses = runs_side(request).analyses
    try:
        found, note = await run_in_threadpool(analyses.fresh_or_last, run, kind, versions)
        if found is not None:
            return found, note
        fut = await run_in_threadpool(analyses.submit, run, kind, versions)
        wait = request.app.state.settings.analysis_wait_s
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), wait), None
    except AnalysisUnavailable as exc:
        return None, exc.detail
    except TimeoutError:
        return None, f"the {kind} analysis is still being computed: reload in a moment"


def render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, template, context)
    return response


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(request: Request) -> HTMLResponse:
    runs = await run_in_threadpool(runs_side(request).runs.list_runs)
    return render(request, "runs.html", {"title": "Runs", "runs": runs})


@router.get("/api/runs", response_model=list[RunOut])
async def runs_json(request: Request) -> list[RunOut]:
    return [run_out(s) for s in await run_in_threadpool(runs_side(request).runs.list_runs)]


@router.get("/runs/{run}", response_class=HTMLResponse)
async def run_page(request: Request, run: str,
                   epoch: int | None = Query(None, ge=1)) -> HTMLResponse:
    d: RunDetail = await run_in_threadpool(runs_side(request).runs.detail, safe_run(run))
    shown = epoch if epoch in d.epochs else (d.epochs[-1] if d.epochs else None)
    return render(request, "run.html", {
        "title": f"Run {run}", "d": d, "s": d.summary, "chart": loss_chart(d.stats),
        "metrics_chart": scores_chart(d.metrics_rows),
        "epoch": shown, "refresh": d.progress is not None
        and d.progress.get("status") == "running"})


@router.get("/api/runs/{run}", response_model=RunDetailOut)
async def run_json(request: Request, run: str) -> RunDetailOut:
    d: RunDetail = await run_in_threadpool(runs_side(request).runs.detail, safe_run(run))
    return RunDetailOut(
        run=run_out(d.summary), config=d.config, dataset=d.dataset, stats=d.stats,
        epochs=d.epochs,
        epoch_urls=[str(request.url_for("epoch_image", run=run, epoch=e)) for e in d.epochs],
        metrics_rows=d.metrics_rows, progress=d.progress, tensorboard=d.tensorboard,
        checkpoints=d.checkpoints, imported_from=d.imported_from)


@router.get("/runs/{run}/modes", response_class=HTMLResponse)
async def modes_page(request: Request, run: str) -> HTMLResponse:
    side = runs_side(request)
    await run_in_threadpool(side.runs.run, safe_run(run))
    modes, note = await analysis(request, run, "modes")
    bins: list[dict[str, Any]] = []
    if modes is not None:
        rank = {"dropped": 0, "over-produced": 1, "ok": 2}
        bins = sorted(modes.result["bins"], key=lambda b: (rank[b["verdict"]], -abs(b["z"])))
    return render(request, "modes.html", {
        "title": f"Modes of {run}", "run": run, "modes": modes, "note": note, "bins": bins,
        "max_share": max([max(b["train_share"], b["gen_share"]) for b in bins] or [1.0])})


async def _analysis_json(request: Request, run: str, kind: str) -> AnalysisOut:
    """The fresh analysis (waiting for it if need be) as its JSON twin."""
    await run_in_threadpool(runs_side(request).runs.run, safe_run(run))
    found = await asyncio.wrap_future(
        await run_in_threadpool(runs_side(request).analyses.submit, run, kind))
    return AnalysisOut(run=run, computed_at=found.computed_at, versions=found.versions,
                       result=found.result)


@router.get("/api/runs/{run}/modes", response_model=AnalysisOut)
async def modes_json(request: Request, run: str) -> AnalysisOut:
    return await _analysis_json(request, run, "modes")


@router.get("/api/runs/{run}/memorisation", response_model=AnalysisOut)
async def memorisation_json(request: Request, run: str) -> AnalysisOut:
    return await _analysis_json(request, run, "memorisation")


@router.get("/images/runs/{run}/epochs/{epoch}.png", name="epoch_image", response_class=Response,
            responses=PNG_RESPONSES)
def epoch_image(request: Request, run: str, epoch: int) -> Response:
    side = runs_side(request)
    return image_response(request, side.runs.epoch_file(safe_run(run), epoch), side.etags)


@router.get("/images/runs/{run}/{n}.png", name="sample_image", response_class=Response,
            responses=PNG_RESPONSES)
def sample_image(request: Request, run: str, n: int) -> Response:
    side = runs_side(request)
    return image_response(request, side.runs.sample_file(safe_run(run), n), side.etags)
