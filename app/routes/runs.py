"""Runs: the list, one run's timeline, its modes page, their JSON twins and their images."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from modescope.app import fidelity_view, run_pages
from modescope.app.analyses import AnalysisUnavailable
from modescope.app.deps import RenderDep, RunDep, RunsSideDep
from modescope.app.links import Links
from modescope.app.plots import loss_chart, scores_chart
from modescope.app.run_images import PNG_RESPONSES, image_response
from modescope.app.runs_state import RunsSide
from modescope.app.runs_view import RunDetail, RunSummary
from modescope.core.lineage import lineage_words
from modescope.indexer.analyses.modes import power_words

pages = APIRouter(prefix="/runs", tags=["runs"])
api = APIRouter(prefix="/api/runs", tags=["runs"])
images = APIRouter(prefix="/images/runs", tags=["images"])
routers = (pages, api, images)
FreshQuery = Annotated[bool, Query(description=(
    "wait for an analysis that counts the latest flags; by default a recomputation under way "
    "gives the last analysis, marked stale"))]


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
    lineage: dict[str, Any] | None = None  # a retrained run's parent and flags (lineage.json)
    # the run in words: coverage, modes reached, fidelity, copies (indexer/run_summary.py);
    # None until its analyses are stored
    reading: dict[str, Any] | None = None


class AnalysisOut(BaseModel):
    run: str
    computed_at: str
    versions: dict[str, str]
    result: dict[str, Any]
    stale: bool = False  # the last analysis while the fresh one is computed (``?fresh=true``)
    note: str | None = None


class ReachImageOut(BaseModel):
    id: int
    image: str
    page: str


class ReachGroupOut(BaseModel):
    bin: int | None
    train_count: int
    reached_share: float
    never_reached: list[ReachImageOut]


class NeverReachedOut(BaseModel):
    run: str
    computed_at: str
    layer: str
    k: int
    n_train: int
    never_reached: int
    coverage: float
    binned: bool
    groups: list[ReachGroupOut]


Layer = Literal["block5", "block1"]


def run_out(s: RunSummary) -> RunOut:
    return RunOut(name=s.name, kind=s.kind, status=s.status, epoch=s.epoch,
                  total_epochs=s.total_epochs, samples=s.samples, indexed=s.indexed,
                  metrics=MetricsOut(**s.metrics.__dict__))


@pages.get("", response_class=HTMLResponse)
async def runs_page(render: RenderDep, side: RunsSideDep) -> HTMLResponse:
    runs = await run_in_threadpool(side.runs.list_runs)
    return render("runs.html", {"title": "Runs", "runs": runs})


@api.get("", response_model=list[RunOut])
async def runs_json(side: RunsSideDep) -> list[RunOut]:
    return [run_out(s) for s in await run_in_threadpool(side.runs.list_runs)]


@pages.get("/{run}", response_class=HTMLResponse)
async def run_page(render: RenderDep, side: RunsSideDep, run: RunDep,
                   epoch: int | None = Query(None, ge=1)) -> HTMLResponse:
    d: RunDetail = await run_in_threadpool(side.runs.detail, run.name)
    shown = epoch if epoch in d.epochs else (d.epochs[-1] if d.epochs else None)
    return render("run.html", {
        "title": f"Run {run.name}", "d": d, "s": d.summary, "chart": loss_chart(d.stats),
        "metrics_chart": scores_chart(d.metrics_rows),
        "epoch": shown, "analyses": run_pages.run_analysis_links(run.name),
        "lineage": lineage_words(d.lineage) if d.lineage else None,
        "reading": await run_pages.reading(side, run.name, d.summary.indexed),
        "refresh": d.progress is not None
        and d.progress.get("status") == "running"})


@api.get("/{run}", response_model=RunDetailOut)
async def run_json(request: Request, side: RunsSideDep, run: RunDep) -> RunDetailOut:
    d: RunDetail = await run_in_threadpool(side.runs.detail, run.name)
    links = Links(request)
    return RunDetailOut(
        run=run_out(d.summary), config=d.config, dataset=d.dataset, stats=d.stats,
        epochs=d.epochs,
        epoch_urls=[links.epoch_image(run.name, e) for e in d.epochs],
        metrics_rows=d.metrics_rows, progress=d.progress, tensorboard=d.tensorboard,
        checkpoints=d.checkpoints, imported_from=d.imported_from, lineage=d.lineage,
        reading=await run_pages.reading(side, run.name, d.summary.indexed))


@pages.get("/{run}/modes", response_class=HTMLResponse)
async def modes_page(render: RenderDep, side: RunsSideDep, run: RunDep) -> HTMLResponse:
    modes, note = await run_pages.analysis(side, run.name, "modes")
    bins: list[dict[str, Any]] = []
    if modes is not None:
        rank = {"dropped": 0, "over-produced": 1, "ok": 2}
        bins = sorted(modes.result["bins"], key=lambda b: (rank[b["verdict"]], -abs(b["z"])))
    return render("modes.html", {
        "title": f"Modes of {run.name}", "run": run.name, "modes": modes, "note": note,
        "bins": bins, "reached": await run_pages.reached_by_bin(side, run.name),
        "power": power_words(modes.value) if modes is not None else None,
        "max_share": max([max(b["train_share"], b["gen_share"]) for b in bins] or [1.0])})


@pages.get("/{run}/never-reached", response_class=HTMLResponse)
async def never_reached_page(render: RenderDep, side: RunsSideDep, run: RunDep,
                             layer: Layer = "block5") -> HTMLResponse:
    """Training images no sample comes near (inside their k-NN ball), by NDB bin."""
    found = await run_pages.never_reached(side, run.name, layer)
    return render("never_reached.html", {
        "title": f"Never reached by {run.name}", "run": run.name, "layer": layer,
        "layers": fidelity_view.LAYERS, "v": found.view, "computed_at": found.computed_at,
        "note": found.note})


@api.get("/{run}/never-reached", response_model=NeverReachedOut)
async def never_reached_json(request: Request, side: RunsSideDep, run: RunDep,
                             layer: Layer = "block5") -> NeverReachedOut:
    found = await run_pages.never_reached(side, run.name, layer, wait=True)
    if found.view is None or found.computed_at is None:  # not reached: it was waited for
        raise AnalysisUnavailable(found.note or f"prdc of run {run.name} is not available")
    links = Links(request)
    return NeverReachedOut(run=run.name, computed_at=found.computed_at,
                           **fidelity_view.as_json(found.view, links.train_image,
                                                   links.image_page))


async def _analysis_json(side: RunsSide, run: str, kind: str, fresh: bool) -> AnalysisOut:
    """What the HTML twin shows: the fresh analysis, or while a flag's recomputation runs the
    last one marked ``stale`` (a flag burst must not hold every API reader for k-means);
    ``fresh`` waits for the recomputation, as does a run that has never had one."""
    analysis, note = (None, None) if fresh else \
        await run_in_threadpool(side.analyses.fresh_or_last, run, kind)
    if analysis is None:
        analysis = await run_pages.fresh_analysis(side, run, kind)
    return AnalysisOut(run=run, computed_at=analysis.computed_at, versions=analysis.versions,
                       result=analysis.result, stale=note is not None, note=note)


@pages.get("/{run}/analyses/{name}", response_class=HTMLResponse)
async def analysis_page(render: RenderDep, side: RunsSideDep, run: RunDep,
                        name: str) -> HTMLResponse:
    """Any registered run analysis: its own template, or its summary lines."""
    spec = run_pages.run_analysis(name)
    found, note = await run_pages.analysis(side, run.name, spec.name)
    return render(run_pages.analysis_template(spec), {
        "title": f"{spec.title.capitalize()} of {run.name}", "run": run.name, "spec": spec,
        "analysis": found, "note": note, "lines": run_pages.summary_lines(spec, found)})


@api.get("/{run}/analyses/{name}", response_model=AnalysisOut)
async def analysis_json(side: RunsSideDep, run: RunDep, name: str,
                        fresh: FreshQuery = False) -> AnalysisOut:
    """Any registered run analysis (computed first if there has never been one)."""
    return await _analysis_json(side, run.name, run_pages.run_analysis(name).name, fresh)


@api.get("/{run}/modes", response_model=AnalysisOut)
async def modes_json(side: RunsSideDep, run: RunDep, fresh: FreshQuery = False) -> AnalysisOut:
    return await _analysis_json(side, run.name, "modes", fresh)


@api.get("/{run}/memorisation", response_model=AnalysisOut)
async def memorisation_json(side: RunsSideDep, run: RunDep,
                            fresh: FreshQuery = False) -> AnalysisOut:
    return await _analysis_json(side, run.name, "memorisation", fresh)


@images.get("/{run}/epochs/{epoch}.png", name="epoch_image", response_class=Response,
            responses=PNG_RESPONSES)
def epoch_image(request: Request, side: RunsSideDep, run: RunDep, epoch: int) -> Response:
    return image_response(request, side.runs.epoch_file(run.name, epoch), side.etags)


@images.get("/{run}/{n}.png", name="sample_image", response_class=Response,
            responses=PNG_RESPONSES)
def sample_image(request: Request, side: RunsSideDep, run: RunDep, n: int) -> Response:
    return image_response(request, side.runs.sample_file(run.name, n), side.etags)
