"""/docs: Swagger UI from static/vendor (offline, under the CSP) instead of FastAPI's CDN page;
/openapi.json behind the login like every other route (FastAPI's own is a bare route that
the app's dependencies never see)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from modescope.app.deps import RenderDep

router = APIRouter(include_in_schema=False)
routers = (router,)


@router.get("/docs", response_class=HTMLResponse, name="api_docs")
def api_docs(render: RenderDep) -> Response:
    return render("docs.html", {"openapi_url": "/openapi.json"})


@router.get("/openapi.json", name="openapi")
def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
