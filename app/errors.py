"""Errors that carry an HTTP status; one handler renders them as HTML or JSON."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
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



# Any route can answer 4xx: its own errors, the security layer's (401 login, 403 CSRF, 400 Host,
# 413 body, 429 login throttle) and FastAPI's (422 validation, 400 unreadable body). JSON for
# /api/ and JSON clients ({"error", "detail"}, or FastAPI's {"detail"}), an HTML page otherwise.
ERROR_RESPONSE: dict[str, Any] = {
    "description": "Client error: what is wrong and what to do",
    "content": {
        "application/json": {"schema": {
            "type": "object", "required": ["detail"],
            "properties": {"error": {"type": "string"}, "detail": {}}}},
        "text/html": {"schema": {"type": "string"}},
    },
}


def document_errors(app: FastAPI) -> None:
    """Put the 4XX answer in every operation of the OpenAPI schema (FastAPI's "extending
    OpenAPI" hook): without it a client (or schemathesis) reads a 404 for an unknown run as a
    response the API never promised."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        schema = plain()  # built once and cached by FastAPI; setdefault keeps this idempotent
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.setdefault("responses", {}).setdefault("4XX", ERROR_RESPONSE)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
