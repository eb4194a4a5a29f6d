"""``create_app(settings)``: the FastAPI app. Nothing happens at import time."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from modescope import __version__
from modescope.app import security
from modescope.app.catalog_view import CatalogView
from modescope.app.child import die_with_parent
from modescope.app.dataset_view import open_dataset
from modescope.app.errors import install_error_handler
from modescope.app.resources import package_dir
from modescope.app.routes import (
    auth,
    compare,
    dataset,
    docs,
    experiments,
    export,
    jobs,
    overview,
    runs,
    samples,
)
from modescope.app.runs_state import open_runs_side
from modescope.app.settings import Settings
from modescope.core.workspace import Workspace

# each module's ``routers``: the pages, their /api/ twins and images, each with its prefix and
# tag (the groups of /docs); URLs are the prefix plus the route's path
ROUTE_MODULES = (overview, auth, dataset, export, docs, runs, samples, jobs, compare,
                 experiments)



def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's handler: a graceful shutdown


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    templates = Jinja2Templates(directory=package_dir("templates"))
    templates.env.auto_reload = False  # no stat() of every template on every page
    templates.env.globals["version"] = __version__
    templates.env.globals["csrf_token"] = security.csrf_token

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # blocking page work runs in this many threads: under one GIL more threads only
        # contend (40, anyio's default, gave p99 2x worse at 200 requests/s: bench/load.py)
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        ws = Workspace(settings.workspace)
        app.state.workspace = ws
        app.state.view = CatalogView(ws)
        app.state.dataset = open_dataset(ws, settings.analysis_wait_s)
        runs_side = open_runs_side(app, ws, settings)
        if multiprocessing.parent_process() is not None:
            # a uvicorn worker (serve --workers N, uvicorn --reload): uvicorn's supervisor
            # stops it with SIGTERM, but a supervisor killed outright left it (and its
            # analysis child) running; on its parent's death it stops itself the same way
            die_with_parent(os.getppid(), on_exit=_terminate_self)
        yield
        runs_side.close()
        app.state.dataset.curation.close()
        app.state.dataset.flags.close()

    # every route: logged in (unless open on loopback), and CSRF on POST/PUT/PATCH/DELETE
    app = FastAPI(title="modescope", version=__version__, lifespan=lifespan,
                  # /docs (vendored) and /openapi.json (behind the login): app/routes/docs.py
                  docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(security.require_auth), Depends(security.require_csrf)])
    app.state.settings = settings
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=package_dir("static")), name="static")
    for module in ROUTE_MODULES:
        for router in module.routers:
            app.include_router(router)
    install_error_handler(app, templates)  # any ModescopeError: its status, HTML or JSON
    security.install(app, settings)
    return app
