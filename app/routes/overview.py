"""The overview page, its JSON twin, thumbnails by id, and the health check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from modescope import __version__
from modescope.app.catalog_view import Overview
from modescope.app.deps import CatalogDep, RenderDep, RunsSideDep, SettingsDep
from modescope.app.links import Links
from modescope.app.routes.runs import RunOut, run_out
from modescope.app.run_images import CACHE_CONTROL as IMMUTABLE
from modescope.app.run_images import PNG_RESPONSES
from modescope.app.store import RowId
from modescope.core.errors import NotFound

pages = APIRouter(tags=["overview"])
api = APIRouter(prefix="/api/overview", tags=["overview"])
images = APIRouter(prefix="/images/train", tags=["images"])
routers = (pages, api, images)


class Health(BaseModel):
    status: str
    version: str
    workspace: str
    catalog: bool


class ImageOut(BaseModel):
    id: int
    path: str
    label: str | None
    url: str | None


class RejectedOut(BaseModel):
    id: int
    path: str
    reason: str | None


class OverviewOut(BaseModel):
    workspace: str
    image_size: int
    fit: str
    counts: dict[str, int]
    rejected_by_reason: dict[str, int]
    rejected: list[RejectedOut]
    page: int
    pages: int
    images: list[ImageOut]
    index: dict[str, Any] | None
    runs: list[RunOut]


@pages.get("/health", response_model=Health)
def health(view: CatalogDep) -> Health:
    return Health(
        status="ok", version=__version__, workspace=str(view.workspace.root),
        catalog=view.workspace.catalog_path.is_file(),
    )


@pages.get("/", response_class=HTMLResponse)
def overview_page(render: RenderDep, view: CatalogDep, side: RunsSideDep,
                  settings: SettingsDep, page: int = Query(1, ge=1)) -> HTMLResponse:
    data = view.overview(page, settings.page_size)
    return render("overview.html",
                  {"o": data, "title": "Overview", "runs": side.runs.list_runs()})


@api.get("", response_model=OverviewOut)
def overview_json(request: Request, view: CatalogDep, side: RunsSideDep, settings: SettingsDep,
                  page: int = Query(1, ge=1)) -> OverviewOut:
    o: Overview = view.overview(page, settings.page_size)
    links = Links(request)
    return OverviewOut(
        workspace=o.workspace, image_size=o.config.image_size, fit=o.config.fit,
        counts=o.counts, rejected_by_reason=dict(o.reasons),
        rejected=[RejectedOut(id=r.id, path=r.path, reason=r.reason) for r in o.rejected],
        page=o.grid.page, pages=o.grid.pages,
        images=[_image_out(links, r) for r in o.grid.images],
        index=o.index, runs=[run_out(r) for r in side.runs.list_runs()],
    )


def _image_out(links: Links, row: Any) -> ImageOut:
    url = links.train_image(row.id) if row.file else None
    return ImageOut(id=row.id, path=row.path, label=row.label, url=url)


@images.get("/{image_id}.png", name="train_image", response_class=Response,
            responses=PNG_RESPONSES)
def train_image(request: Request, view: CatalogDep, image_id: RowId,
                v: str | None = Query(None, max_length=64)) -> Response:
    """A training image by id. The normalised file is named by its content hash, which is the
    strong ETag. An id's content can change when its source file changes and is re-ingested, so
    only a URL that names the version (``?v=`` + 16+ hash characters, as the dataset pages
    write it) is cached as immutable; a bare URL is revalidated (304 when unchanged)."""
    path = view.image_file(image_id)
    tag = f'"{path.stem}"'
    pinned = v is not None and len(v) >= 16 and path.stem.startswith(v)
    headers = {"ETag": tag, "Cache-Control": IMMUTABLE if pinned else "no-cache"}
    if tag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    try:  # read here, in this route's worker thread: FileResponse would take two more hops
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"image {image_id}'s normalised file is missing; rerun "
                       "`modescope ingest`") from None
    return Response(data, media_type="image/png", headers=headers)
