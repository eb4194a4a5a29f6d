"""Login with the server's token, and logout. Both forms carry the session's CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from modescope.app import security

router = APIRouter()


def _login_page(request: Request, next_url: str, error: str | None, status: int) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, "login.html",
        {"title": "Log in", "next": security.safe_next(next_url), "error": error,
         "open": not security.token_required(request.app.state.settings)},
        status_code=status,
    )


@router.get("/login", response_class=HTMLResponse, name="login_page")
def login_page(request: Request, next: str = Query("/", max_length=2000)) -> Response:
    return _login_page(request, next, None, 200)


@router.post("/login", name="login", status_code=303, response_class=RedirectResponse)
def login(request: Request, token: str = Form(..., max_length=1000),
          next: str = Form("/", max_length=2000)) -> Response:
    throttle: security.LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else "unknown"
    throttle.check(client)
    if not security.check_token(request.app.state.settings, token):
        throttle.failed(client)
        return _login_page(request, next, "That token is not this server's token.", 401)
    security.log_in(request)
    return RedirectResponse(security.safe_next(next), status_code=303)


@router.post("/logout", name="logout", status_code=303, response_class=RedirectResponse)
def logout(request: Request) -> Response:
    security.log_out(request)
    return RedirectResponse("/login", status_code=303)
