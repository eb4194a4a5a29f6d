"""Login with the server's token, and logout. Both forms carry the session's CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from modescope.app import security
from modescope.app.deps import LoginThrottleDep, RenderDep, SettingsDep

router = APIRouter(tags=["login"])
routers = (router,)


def _login_page(render: RenderDep, settings: SettingsDep, next_url: str, error: str | None,
                status: int) -> Response:
    return render("login.html",
                  {"title": "Log in", "next": security.safe_next(next_url), "error": error,
                   "open": not security.token_required(settings)},
                  status_code=status)


@router.get("/login", response_class=HTMLResponse, name="login_page")
def login_page(render: RenderDep, settings: SettingsDep,
               next: str = Query("/", max_length=2000)) -> Response:
    return _login_page(render, settings, next, None, 200)


@router.post("/login", name="login", status_code=303, response_class=RedirectResponse)
def login(request: Request, render: RenderDep, settings: SettingsDep,
          throttle: LoginThrottleDep, token: str = Form(..., max_length=1000),
          next: str = Form("/", max_length=2000)) -> Response:
    client = request.client.host if request.client else "unknown"
    throttle.check(client)
    if not security.check_token(settings, token):
        throttle.failed(client)
        return _login_page(render, settings, next, "That token is not this server's token.", 401)
    security.log_in(request)
    return RedirectResponse(security.safe_next(next), status_code=303)


@router.post("/logout", name="logout", status_code=303, response_class=RedirectResponse)
def logout(request: Request) -> Response:
    security.log_out(request)
    return RedirectResponse("/login", status_code=303)
