"""What a route needs, as typed dependencies (full-stack-fastapi-template's ``api/deps.py``).

A route names what it needs as a parameter (``side: RunsSideDep``, ``run: RunDep``) instead of
reaching into ``request.app.state``; the objects are the ones ``create_app``'s lifespan opened.
Every dependency here is ``async`` and does no blocking work beyond one ``stat`` (``RunDep``), so
none costs a worker-thread hop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from modescope.app.catalog_view import CatalogView
from modescope.app.dataset_view import DatasetView
from modescope.app.runs_state import RunsSide
from modescope.app.security import LoginThrottle
from modescope.app.settings import Settings
from modescope.app.store import FlagStore
from modescope.core.runfolder import RunFolder
from modescope.core.workspace import Workspace


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


async def get_workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.workspace
    return ws


async def get_catalog(request: Request) -> CatalogView:
    view: CatalogView = request.app.state.view
    return view


async def get_dataset(request: Request) -> DatasetView:
    view: DatasetView = request.app.state.dataset
    return view


async def get_flags(dataset: Annotated[DatasetView, Depends(get_dataset)]) -> FlagStore:
    return dataset.flags


async def get_runs_side(request: Request) -> RunsSide:
    side: RunsSide = request.app.state.runs_side
    return side


async def get_login_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


RunsSideDep = Annotated[RunsSide, Depends(get_runs_side)]


async def get_run(run: str, side: RunsSideDep) -> RunFolder:
    """The ``{run}`` of the path as an existing run's folder, or a 404 (a name that could not
    be a run is no such run either)."""
    return side.runs.run(run)


class Pages:
    """Renders a template for this request: ``render("runs.html", {...})``."""

    def __init__(self, request: Request, templates: Jinja2Templates) -> None:
        self.request = request
        self.templates = templates

    def __call__(self, template: str, context: dict[str, Any],
                 status_code: int = 200) -> HTMLResponse:
        response: HTMLResponse = self.templates.TemplateResponse(
            self.request, template, context, status_code=status_code)
        return response


async def get_pages(request: Request,
                    templates: Annotated[Jinja2Templates, Depends(get_templates)]) -> Pages:
    return Pages(request, templates)


SettingsDep = Annotated[Settings, Depends(get_settings)]
WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]
CatalogDep = Annotated[CatalogView, Depends(get_catalog)]
DatasetDep = Annotated[DatasetView, Depends(get_dataset)]
FlagsDep = Annotated[FlagStore, Depends(get_flags)]
RunDep = Annotated[RunFolder, Depends(get_run)]
LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]
RenderDep = Annotated[Pages, Depends(get_pages)]
