"""A run's samples: the gallery and one sample beside its 24 + 24 nearest training images."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from modescope.app.analyses import Analysis, current_versions
from modescope.app.routes.runs import analysis, render
from modescope.app.runs_state import runs_side
from modescope.app.runs_view import safe_run
from modescope.app.samples_view import SampleDetail, SamplesPage

router = APIRouter()


class CardOut(BaseModel):
    n: int
    url: str
    authenticity: float | None
    verdict: str | None
    mode: int | None


class SamplesOut(BaseModel):
    run: str
    sort: str
    seed: int
    page: int
    pages: int
    total: int
    note: str | None
    samples: list[CardOut]


class NeighbourOut(BaseModel):
    id: int
    similarity: float
    path: str | None
    label: str | None
    flagged: bool
    url: str
    thumbnail: str


class SampleOut(BaseModel):
    run: str
    n: int
    image: str
    weights: str
    trained: bool
    warning: str | None
    neighbours: dict[str, list[NeighbourOut]]
    memorisation: dict[str, object] | None
    copy_threshold: float | None
    mode: dict[str, object] | None
    note: str | None


async def _page(request: Request, run: str, sort: str, seed: int, page: int) -> SamplesPage:
    side = runs_side(request)
    run = safe_run(run)
    mem: Analysis | None = None
    modes: Analysis | None = None
    note = None
    if sort == "copied":
        mem, note = await analysis(request, run, "memorisation")
    elif sort == "mode":
        modes, note = await analysis(request, run, "modes")
    else:  # no computation for plain browsing: show verdicts once they exist
        mem = await run_in_threadpool(side.analyses.cached, run, "memorisation")
    return await run_in_threadpool(
        lambda: side.samples.page(run, sort=sort, seed=seed, page=page,
                                  page_size=request.app.state.settings.page_size,
                                  memorisation=mem, modes=modes, note=note))


@router.get("/runs/{run}/samples", response_class=HTMLResponse)
async def samples_page(request: Request, run: str, sort: str = "number",
                       seed: int = Query(1, ge=0, le=2**31),
                       page: int = Query(1, ge=1)) -> HTMLResponse:
    p = await _page(request, run, sort, seed, page)
    return render(request, "samples.html", {"title": f"Samples of {run}", "p": p})


@router.get("/api/runs/{run}/samples", response_model=SamplesOut)
async def samples_json(request: Request, run: str, sort: str = "number",
                       seed: int = Query(1, ge=0, le=2**31),
                       page: int = Query(1, ge=1)) -> SamplesOut:
    p = await _page(request, run, sort, seed, page)
    return SamplesOut(
        run=p.run, sort=p.sort, seed=p.seed, page=p.page, pages=p.pages, total=p.total,
        note=p.note, samples=[CardOut(
            n=c.n, url=str(request.url_for("sample_image", run=p.run, n=c.n)),
            authenticity=c.authenticity, verdict=c.verdict, mode=c.mode) for c in p.cards])


async def _detail(request: Request, run: str, n: int) -> SampleDetail:
    side = runs_side(request)
    run = safe_run(run)

    def at_once() -> SampleDetail | None:
        """The common case in one worker-thread hop: both analyses stored (fresh or last)."""
        versions = current_versions(side.ws, run)
        (mem, note1), (modes, note2) = (side.analyses.fresh_or_last(run, kind, versions)
                                        for kind in ("memorisation", "modes"))
        if mem is None or modes is None:
            return None
        return side.samples.detail(run, n, memorisation=mem, modes=modes, note=note1 or note2)

    if (done := await run_in_threadpool(at_once)) is not None:
        return done
    versions = await run_in_threadpool(current_versions, side.ws, run)  # once for both
    mem, note1 = await analysis(request, run, "memorisation", versions)
    modes, note2 = await analysis(request, run, "modes", versions)
    return await run_in_threadpool(
        lambda: side.samples.detail(run, n, memorisation=mem, modes=modes,
                                    note=note1 or note2))


@router.get("/runs/{run}/samples/{n}", response_class=HTMLResponse)
async def sample_page(request: Request, run: str, n: int) -> HTMLResponse:
    d = await _detail(request, run, n)
    return render(request, "sample.html", {"title": f"{run} sample {n}", "d": d})


@router.get("/api/runs/{run}/samples/{n}", response_model=SampleOut)
async def sample_json(request: Request, run: str, n: int) -> SampleOut:
    d = await _detail(request, run, n)
    return SampleOut(
        run=d.run, n=d.n, image=str(request.url_for("sample_image", run=d.run, n=d.n)),
        weights=d.weights, trained=d.trained, warning=d.warning,
        neighbours={layer: [NeighbourOut(
            **t.__dict__, url=f"/dataset/images/{t.id}",
            thumbnail=str(request.url_for("train_image", image_id=t.id))) for t in rows]
            for layer, rows in d.neighbours.items()},
        memorisation=d.memorisation, copy_threshold=d.threshold, mode=d.mode,
        note=d.analysis_note)
