"""/docs: Swagger UI from static/vendor (offline, under the CSP) instead of FastAPI's CDN page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

router = APIRouter()


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False, name="api_docs")
def api_docs(request: Request) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, "docs.html", {"openapi_url": request.app.openapi_url or "/openapi.json"})
