"""A run's samples: the gallery and one sample beside its 24 + 24 nearest training images."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from modescope.app import run_pages
from modescope.app.deps import RenderDep, RunDep, RunsSideDep
from modescope.app.links import Links

pages = APIRouter(prefix="/runs/{run}/samples", tags=["samples"])
api = APIRouter(prefix="/api/runs/{run}/samples", tags=["samples"])
routers = (pages, api)


class CardOut(BaseModel):
    n: int
    url: str
    p_value: float | None
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
    held_out: bool  # never trained on: an unseen real image, not a training image
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
    calibration: dict[str, object] | None
    mode: dict[str, object] | None
    note: str | None


@pages.get("", response_class=HTMLResponse)
async def samples_page(render: RenderDep, side: RunsSideDep, run: RunDep,
                       sort: str = "number", seed: int = Query(1, ge=0, le=2**31),
                       page: int = Query(1, ge=1)) -> HTMLResponse:
    p = await run_pages.samples_page(side, run.name, sort, seed, page)
    return render("samples.html", {"title": f"Samples of {run.name}", "p": p})


@api.get("", response_model=SamplesOut)
async def samples_json(request: Request, side: RunsSideDep, run: RunDep,
                       sort: str = "number", seed: int = Query(1, ge=0, le=2**31),
                       page: int = Query(1, ge=1)) -> SamplesOut:
    p = await run_pages.samples_page(side, run.name, sort, seed, page)
    links = Links(request)
    return SamplesOut(
        run=p.run, sort=p.sort, seed=p.seed, page=p.page, pages=p.pages, total=p.total,
        note=p.note, samples=[CardOut(
            n=c.n, url=links.sample_image(p.run, c.n),
            p_value=c.p_value, verdict=c.verdict, mode=c.mode) for c in p.cards])


@pages.get("/{n}", response_class=HTMLResponse)
async def sample_page(render: RenderDep, side: RunsSideDep, run: RunDep, n: int) -> HTMLResponse:
    d = await run_pages.sample_detail(side, run.name, n)
    return render("sample.html", {"title": f"{run.name} sample {n}", "d": d})


@api.get("/{n}", response_model=SampleOut)
async def sample_json(request: Request, side: RunsSideDep, run: RunDep, n: int) -> SampleOut:
    d = await run_pages.sample_detail(side, run.name, n)
    links = Links(request)
    return SampleOut(
        run=d.run, n=d.n, image=links.sample_image(d.run, d.n),
        weights=d.weights, trained=d.trained, warning=d.warning,
        neighbours={layer: [NeighbourOut(
            **t.__dict__, url=f"/dataset/images/{t.id}",
            thumbnail=links.train_image(t.id)) for t in rows]
            for layer, rows in d.neighbours.items()},
        memorisation=d.memorisation, calibration=d.calibration, mode=d.mode,
        note=d.analysis_note)
