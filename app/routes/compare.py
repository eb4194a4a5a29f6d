"""Compare two runs side by side: NDB/K, JS, copy rate, dropped modes, sample grids."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from modescope.app import run_pages
from modescope.app.deps import RenderDep, RunsSideDep
from modescope.app.links import Links
from modescope.app.routes.runs import RunOut, run_out
from modescope.app.run_pages import CompareSide

pages = APIRouter(prefix="/compare", tags=["compare"])
api = APIRouter(prefix="/api/compare", tags=["compare"])
routers = (pages, api)


class SideOut(BaseModel):
    run: RunOut
    ndb_over_k: float | None
    js: float | None
    k: int | None
    copy_rate: float | None
    dropped: list[int]
    over_produced: list[int]
    note: str | None
    samples: list[str]


class CompareOut(BaseModel):
    a: SideOut
    b: SideOut


@pages.get("", response_class=HTMLResponse)
async def compare_page(render: RenderDep, side: RunsSideDep, a: str = "",
                       b: str = "") -> HTMLResponse:
    names = await run_in_threadpool(side.runs.names)
    sides = await run_pages.compare(side, a, b) if a and b else None
    return render("compare.html", {
        "title": "Compare runs", "names": names, "a": a, "b": b, "sides": sides})


def _side_out(links: Links, s: CompareSide) -> SideOut:
    m = s.modes.result if s.modes else None
    return SideOut(
        run=run_out(s.summary), ndb_over_k=m["ndb_over_k"] if m else None,
        js=m["js"] if m else None, k=m["k"] if m else None,
        copy_rate=s.memorisation.result["copy_rate"] if s.memorisation else None,
        dropped=m["dropped"] if m else [], over_produced=m["over_produced"] if m else [],
        note=s.note,
        samples=[links.sample_image(s.summary.name, n) for n in s.samples])


@api.get("", response_model=CompareOut)
async def compare_json(request: Request, side: RunsSideDep, a: str, b: str) -> CompareOut:
    sa, sb = await run_pages.compare(side, a, b)
    links = Links(request)
    return CompareOut(a=_side_out(links, sa), b=_side_out(links, sb))
