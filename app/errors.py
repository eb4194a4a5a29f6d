"""One handler for the one family of errors (modescope.core.errors): an HTML page, or JSON.

Any ``ModescopeError`` that reaches a route's edge, whichever room raised it, answers its class's
``status``: ``{"error": title, "detail": message}`` for /api/ and JSON clients, error.html for
browsers. A 401 on a page a browser GETs is the login page instead (a redirect back after it).
``install_error_handler`` registers it once; ``document_errors`` promises the 4XX answer in the
OpenAPI schema.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from modescope.core.errors import ModescopeError


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or (
        "application/json" in accept and "text/html" not in accept
    )


def error_json(exc: ModescopeError) -> JSONResponse:
    """The JSON answer: ``{"error": title, "detail": message}`` with the class's status."""
    return JSONResponse({"error": exc.title, "detail": exc.detail}, status_code=exc.status)


def render_error(request: Request, templates: Jinja2Templates, exc: ModescopeError) -> Response:
    if exc.status == 401:  # not logged in: a browser's GET goes to the login page and back
        if request.method == "GET" and not wants_json(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return error_json(exc)
    if wants_json(request):
        return error_json(exc)
    return templates.TemplateResponse(
        request, "error.html", {"title": exc.title, "detail": exc.detail},
        status_code=exc.status,
    )


def install_error_handler(app: FastAPI, templates: Jinja2Templates) -> None:
    """Answer every error of the family that a route or a dependency raises."""

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ModescopeError)
        return render_error(request, templates, exc)

    app.add_exception_handler(ModescopeError, on_error)


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
