"""Errors that carry an HTTP status; one handler renders them as HTML or JSON."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates


class AppError(Exception):
    status = 500
    title = "Something went wrong"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(AppError):
    status = 404
    title = "Not found"


class BadRequest(AppError):
    status = 400
    title = "Bad request"


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or (
        "application/json" in accept and "text/html" not in accept
    )


def render_error(request: Request, templates: Jinja2Templates, exc: AppError) -> Response:
    if wants_json(request):
        return JSONResponse({"error": exc.title, "detail": exc.detail}, status_code=exc.status)
    return templates.TemplateResponse(
        request, "error.html", {"title": exc.title, "detail": exc.detail},
        status_code=exc.status,
    )

