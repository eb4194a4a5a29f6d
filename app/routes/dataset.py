"""/dataset (the curation grid), /dataset/images/{id}, flag/unflag, and their JSON twins."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, Strict

from modescope.app.dataset_view import VIEWS, ImageDetail, Tile
from modescope.app.deps import DatasetDep, FlagsDep, RenderDep, RunsSideDep, SettingsDep
from modescope.app.links import Links
from modescope.app.security import safe_next
from modescope.app.store import MAX_IDS_PER_CHANGE, MAX_NOTE_CHARS, FlagChange, RowId
from modescope.core.catalog import FLAG_REASONS

pages = APIRouter(prefix="/dataset", tags=["dataset"])
api = APIRouter(prefix="/api/dataset", tags=["dataset"])
routers = (pages, api)
Reason = Literal["noisy", "duplicate", "off-topic", "other"]
View = Literal["all", "modes", "outliers", "duplicates", "flagged", "suggest"]
# JSON ids are numbers: lax parsing read `true` as image 1 and "7" as 7 (found by fuzzing)
JsonId = Annotated[RowId, Strict()]
assert tuple(Reason.__args__) == FLAG_REASONS and tuple(View.__args__) == VIEWS  # type: ignore[attr-defined]


class FlagOut(BaseModel):
    reason: str
    note: str | None
    flagged_at: str


class TileOut(BaseModel):
    id: int
    label: str | None
    path: str
    status: str
    url: str | None
    page: str
    flag: FlagOut | None
    outlier_score: float | None
    unusual: bool
    score: float | None
    held_out: bool  # never trained on: a reference for the copy verdicts


class DatasetOut(BaseModel):
    view: str
    page: int
    pages: int
    total: int
    images: list[TileOut]
    groups: list[list[TileOut]]
    mode: int | None
    modes: list[tuple[int, int]]
    notice: str | None
    method: str | None
    review: dict[str, int] | None = None  # view=suggest: {"flagged", "kept", "reviewed"}
    counts: dict[str, int]
    analysis_seconds: dict[str, float]


class ImageDetailOut(BaseModel):
    image: TileOut
    sha256: str | None
    width: int | None
    height: int | None
    warning: str | None
    outlier_rank: int | None
    ranked_of: int | None
    mode: int | None
    mode_size: int | None
    duplicates: list[TileOut]
    nearest: dict[str, list[TileOut]]  # block5 / block1: most similar first, score = cosine
    notice: str | None


class FlagIn(BaseModel):
    ids: list[JsonId] = Field(min_length=1, max_length=MAX_IDS_PER_CHANGE)
    reason: Reason = "noisy"
    note: str | None = Field(None, max_length=MAX_NOTE_CHARS)


class UnflagIn(BaseModel):
    ids: list[JsonId] = Field(min_length=1, max_length=MAX_IDS_PER_CHANGE)


class ChangeOut(BaseModel):
    changed: list[int]
    not_training: list[int]
    flagged_total: int


def _tile_out(links: Links, t: Tile) -> TileOut:
    return TileOut(
        id=t.id, label=t.label, path=t.path, status=t.status,
        url=links.train_image(t.id, t.version) if t.has_file else None,
        page=links.image_page(t.id),
        flag=FlagOut(reason=t.flag.reason, note=t.flag.note, flagged_at=t.flag.flagged_at)
        if t.flag else None,
        outlier_score=t.score, unusual=t.unusual, score=t.extra, held_out=t.held_out)


@pages.get("", response_class=HTMLResponse, name="dataset_page")
def dataset_page(request: Request, render: RenderDep, dataset: DatasetDep,
                 settings: SettingsDep, view: View = "all", page: int = Query(1, ge=1),
                 mode: int | None = Query(None, ge=0),
                 done: str | None = Query(None, max_length=200)) -> Response:
    data = dataset.page(view, page, settings.page_size, mode)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render("dataset.html",
                  {"d": data, "title": "Dataset", "reasons": FLAG_REASONS,
                   "back": _without_done(here), "done": _done(done)})


@api.get("", response_model=DatasetOut)
def dataset_json(request: Request, dataset: DatasetDep, settings: SettingsDep,
                 view: View = "all", page: int = Query(1, ge=1),
                 mode: int | None = Query(None, ge=0)) -> DatasetOut:
    d = dataset.page(view, page, settings.page_size, mode)
    links = Links(request)
    return DatasetOut(
        view=d.view, page=d.page, pages=d.pages, total=d.total,
        images=[_tile_out(links, t) for t in d.tiles],
        groups=[[_tile_out(links, t) for t in g] for g in d.groups],
        mode=d.mode, modes=d.modes, notice=d.notice, method=d.method, review=d.review,
        counts=d.counts,
        analysis_seconds=d.costs)


@pages.get("/images/{image_id}", response_class=HTMLResponse, name="dataset_image")
def image_page(request: Request, render: RenderDep, dataset: DatasetDep, side: RunsSideDep,
               image_id: RowId, done: str | None = Query(None, max_length=200)) -> Response:
    detail = dataset.image(image_id, side.indexes)
    return render("image.html",
                  {"i": detail, "title": f"Image #{image_id}", "reasons": FLAG_REASONS,
                   "back": request.url.path, "done": _done(done)})


@api.get("/images/{image_id}", response_model=ImageDetailOut)
def image_json(request: Request, dataset: DatasetDep, side: RunsSideDep,
               image_id: RowId) -> ImageDetailOut:
    i: ImageDetail = dataset.image(image_id, side.indexes)
    links = Links(request)
    return ImageDetailOut(
        image=_tile_out(links, i.tile), sha256=i.row.sha256, width=i.row.width,
        height=i.row.height, warning=i.row.warning, outlier_rank=i.rank, ranked_of=i.ranked_of,
        mode=i.mode, mode_size=i.mode_size,
        duplicates=[_tile_out(links, t) for t in i.duplicates],
        nearest={layer: [_tile_out(links, t) for t in tiles]
                 for layer, tiles in i.nearest.items()},
        notice=i.notice)


@pages.post("/flag", name="flag_form", status_code=303, response_class=RedirectResponse)
def flag_form(flags: FlagsDep, ids: list[RowId] = Form([]), reason: Reason = Form("noisy"),
              note: str = Form("", max_length=MAX_NOTE_CHARS),
              back: str = Form("/dataset", max_length=2000)) -> Response:
    change = flags.flag(ids, reason, note)
    return _back(back, f"flagged {len(change.changed)} as {reason}"
                 + _skipped(change))


@pages.post("/unflag", name="unflag_form", status_code=303, response_class=RedirectResponse)
def unflag_form(flags: FlagsDep, ids: list[RowId] = Form([]),
                back: str = Form("/dataset", max_length=2000)) -> Response:
    change = flags.unflag(ids)
    return _back(back, f"unflagged {len(change.changed)}")


@api.post("/flag", response_model=ChangeOut)
def flag_json(flags: FlagsDep, body: FlagIn) -> ChangeOut:
    change = flags.flag(body.ids, body.reason, body.note)
    return _change_out(change, len(flags.flagged_ids()))


@pages.post("/keep", name="keep_form", status_code=303, response_class=RedirectResponse)
def keep_form(flags: FlagsDep, ids: list[RowId] = Form([]),
              back: str = Form("/dataset", max_length=2000)) -> Response:
    """Reviewed and kept: "more like these" learns them as good examples and never suggests
    them again (a flag on them is taken off)."""
    change = flags.keep(ids)
    return _back(back, f"kept {len(change.changed)}" + _skipped(change))


@api.post("/keep", response_model=ChangeOut)
def keep_json(flags: FlagsDep, body: UnflagIn) -> ChangeOut:
    """Reviewed and kept (see the form); ``flagged_total`` counts the flags left."""
    change = flags.keep(body.ids)
    return _change_out(change, len(flags.flagged_ids()))


@api.post("/unflag", response_model=ChangeOut)
def unflag_json(flags: FlagsDep, body: UnflagIn) -> ChangeOut:
    change = flags.unflag(body.ids)
    return _change_out(change, len(flags.flagged_ids()))


def _change_out(change: FlagChange, flagged_total: int) -> ChangeOut:
    return ChangeOut(changed=change.changed, not_training=change.not_training,
                     flagged_total=flagged_total)


def _skipped(change: FlagChange) -> str:
    return f"; {len(change.not_training)} not training images" if change.not_training else ""


DONE = re.compile(r"((un)?flagged \d+( as [a-z-]+)?|kept \d+)(; \d+ not training images)?")


def _done(message: str | None) -> str | None:
    """Only the messages this module writes: a crafted link cannot put other text on the page."""
    return message if message is not None and DONE.fullmatch(message) else None


def _without_done(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "done"]
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


def _back(back: str, message: str) -> RedirectResponse:
    """303 to the page the form came from (same site only), saying what changed."""
    parts = urlsplit(_without_done(safe_next(back)))
    query = urlencode([*parse_qsl(parts.query), ("done", message)])
    return RedirectResponse(urlunsplit(("", "", parts.path, query, "")), status_code=303)
