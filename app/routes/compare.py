"""Compare two runs side by side: NDB/K, JS, copy rate, dropped modes, sample grids, and
"did curation help?": each measure with its interval and a verdict (indexer/run_compare.py),
with the lineage (flags between them) when one run was retrained from the other."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from modescope.app import run_pages
from modescope.app.deps import RenderDep, RunsSideDep
from modescope.app.links import Links
from modescope.app.routes.runs import RunOut, run_out
from modescope.app.run_pages import CompareSide, Comparison

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
    reading: dict[str, Any] | None  # the run in words (indexer/run_summary.py)


class EstimateOut(BaseModel):
    value: float
    lo: float
    hi: float
    text: str
    count: str


class MeasureRowOut(BaseModel):
    measure: str
    analysis: str
    better: str
    method: str
    a: EstimateOut | None
    b: EstimateOut | None
    change: float | None
    change_text: str
    verdict: str
    sentence: str


class ReachChangesOut(BaseModel):
    """Training images (ids) whose k-NN ball got a sample from a to b, or lost every one."""

    layer: str
    reached: list[int]
    unreached: list[int]


class SummaryOut(BaseModel):
    a: str
    b: str
    sentence: str
    alpha: float
    rows: list[MeasureRowOut]
    reach: ReachChangesOut | None = None


class LineageOut(BaseModel):
    run: str
    parent: str
    words: str
    flagged: list[str] | None
    unflagged: list[str] | None


class CompareOut(BaseModel):
    a: SideOut
    b: SideOut
    summary: SummaryOut
    lineage: LineageOut | None


@pages.get("", response_class=HTMLResponse)
async def compare_page(render: RenderDep, side: RunsSideDep, a: str = "",
                       b: str = "") -> HTMLResponse:
    names = await run_in_threadpool(side.runs.names)
    sides = await run_pages.compare(side, a, b) if a and b else None
    found = await run_pages.comparison(side, *sides) if sides else None
    return render("compare.html", {
        "title": "Compare runs", "names": names, "a": a, "b": b, "sides": sides,
        "comparison": found})


def _side_out(links: Links, s: CompareSide) -> SideOut:
    m = s.modes.result if s.modes else None
    return SideOut(
        run=run_out(s.summary), ndb_over_k=m["ndb_over_k"] if m else None,
        js=m["js"] if m else None, k=m["k"] if m else None,
        copy_rate=s.memorisation.result["copy_rate"] if s.memorisation else None,
        dropped=m["dropped"] if m else [], over_produced=m["over_produced"] if m else [],
        note=s.note,
        samples=[links.sample_image(s.summary.name, n) for n in s.samples], reading=s.reading)


@api.get("", response_model=CompareOut)
async def compare_json(request: Request, side: RunsSideDep, a: str, b: str) -> CompareOut:
    sa, sb = await run_pages.compare(side, a, b)
    found = await run_pages.comparison(side, sa, sb)
    links = Links(request)
    return CompareOut(a=_side_out(links, sa), b=_side_out(links, sb),
                      summary=SummaryOut.model_validate(found.summary),
                      lineage=_lineage_out(found))


def _lineage_out(found: Comparison) -> LineageOut | None:
    record = found.lineage
    if record is None or found.lineage_words is None:
        return None
    return LineageOut(run=record["run"], parent=record["parent"], words=found.lineage_words,
                      flagged=record.get("flagged"), unflagged=record.get("unflagged"))
