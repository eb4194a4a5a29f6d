"""/docs: Swagger UI from static/vendor (offline, under the CSP) instead of FastAPI's CDN page;
/openapi.json behind the login like every other route (FastAPI's own is a bare route that
the app's dependencies never see)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

router = APIRouter()


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False, name="api_docs")
def api_docs(request: Request) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, "docs.html", {"openapi_url": "/openapi.json"})


@router.get("/openapi.json", include_in_schema=False, name="openapi")
def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
