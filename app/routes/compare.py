"""Compare two runs side by side: NDB/K, JS, copy rate, dropped modes, sample grids."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from modescope.app.analyses import Analysis
from modescope.app.errors import BadRequest
from modescope.app.routes.runs import RunOut, analysis, render, run_out
from modescope.app.runs_state import runs_side
from modescope.app.runs_view import RunSummary, safe_run

router = APIRouter()
GRID = 24


@dataclass(frozen=True)
class Side:
    summary: RunSummary
    modes: Analysis | None
    memorisation: Analysis | None
    note: str | None
    samples: list[int]


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


async def _side(request: Request, run: str) -> Side:
    side = runs_side(request)
    run = safe_run(run)
    summary = await run_in_threadpool(side.runs.summary, run)
    modes, n1 = await analysis(request, run, "modes")
    mem, n2 = await analysis(request, run, "memorisation")
    samples = (await run_in_threadpool(side.runs.sample_numbers, run))[:GRID]
    return Side(summary, modes, mem, n1 or n2, samples)


async def _both(request: Request, a: str, b: str) -> tuple[Side, Side]:
    if a == b:
        raise BadRequest("compare needs two different runs: pick another for a or b")
    return await _side(request, a), await _side(request, b)


@router.get("/compare", response_class=HTMLResponse)
async def compare_page(request: Request, a: str = "", b: str = "") -> HTMLResponse:
    names = await run_in_threadpool(runs_side(request).runs.names)
    sides = await _both(request, a, b) if a and b else None
    return render(request, "compare.html", {
        "title": "Compare runs", "names": names, "a": a, "b": b, "sides": sides})


def _side_out(request: Request, s: Side) -> SideOut:
    m = s.modes.result if s.modes else None
    return SideOut(
        run=run_out(s.summary), ndb_over_k=m["ndb_over_k"] if m else None,
        js=m["js"] if m else None, k=m["k"] if m else None,
        copy_rate=s.memorisation.result["copy_rate"] if s.memorisation else None,
        dropped=m["dropped"] if m else [], over_produced=m["over_produced"] if m else [],
        note=s.note,
        samples=[str(request.url_for("sample_image", run=s.summary.name, n=n))
                 for n in s.samples])


@router.get("/api/compare", response_model=CompareOut)
async def compare_json(request: Request, a: str, b: str) -> CompareOut:
    sa, sb = await _both(request, a, b)
    return CompareOut(a=_side_out(request, sa), b=_side_out(request, sb))
