"""Who may use the app and how: token login, a signed session cookie, CSRF, headers, body bounds.

- On a loopback host without a token the app is open (``require_auth`` is a no-op); any other
  host needs a token (``Settings.check_exposure``), and a token, once set, is always required.
- The session is Starlette's ``SessionMiddleware`` cookie: JSON signed with itsdangerous
  (timestamped HMAC), HttpOnly, SameSite=Strict. It holds the CSRF token and, after login,
  ``auth``. Its key is derived from the token, so changing the token logs everyone out.
- ``require_csrf`` guards every POST/PUT/PATCH/DELETE: form field ``csrf_token`` or header
  ``X-CSRF-Token`` must equal the session's token (the login form included).
- Open (no token), only loopback Host headers are answered (DNS-rebinding defence).
- Every response carries a CSP without inline script or style, nosniff, same-origin referrer
  and no framing; request bodies over ``Settings.max_body_bytes`` get 413.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modescope.app.errors import document_errors, error_json
from modescope.app.settings import Settings
from modescope.core.errors import InputError, ModescopeError
from modescope.core.workspace import Workspace

SESSION_COOKIE = "modescope_session"
SESSION_MAX_AGE = 14 * 24 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_PATHS = frozenset({"/login", "/health"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


class LoginRequired(ModescopeError):
    """Not logged in: a browser's GET is sent to the login page (app/errors.py), others 401."""

    status = 401
    title = "Login required"


class CsrfRejected(ModescopeError):
    status = 403
    title = "Request refused"


class BodyTooLarge(ModescopeError):
    status = 413
    title = "Request too large"


class HostRejected(InputError):
    title = "Host not allowed"


def token_required(settings: Settings) -> bool:
    return settings.token is not None


def session_key(settings: Settings) -> str:
    """With a token: derived from it (sessions survive restarts, die with the token).
    Without one (loopback only): the configured session secret (one for all of a server's
    worker processes), else random per process."""
    if settings.token is None:
        if settings.session_secret is not None:
            return settings.session_secret.get_secret_value()
        return secrets.token_hex(32)
    raw = settings.token.get_secret_value().encode()
    return hmac.new(raw, b"modescope session key v1", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use); a Jinja global for forms."""
    session: dict[str, Any] = request.session
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def is_authenticated(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return not token_required(settings) or request.session.get("auth") is True


def check_token(settings: Settings, given: str) -> bool:
    if settings.token is None:
        return True
    expected = settings.token.get_secret_value().encode()
    return hmac.compare_digest(expected, given.encode())


class TooManyAttempts(ModescopeError):
    status = 429
    title = "Too many attempts"


class LoginThrottle:
    """At most ``limit`` wrong tokens per client address per ``window_s``: a weak token chosen
    by hand (16 characters of a word) still cannot be guessed at network speed.

    With ``path`` (the workspace's app.sqlite) the failures are kept there, so every worker
    process of ``modescope serve --workers N`` counts the same failures and a restart does
    not reset them; without it (no workspace yet) they are kept in memory."""

    def __init__(self, limit: int = 10, window_s: float = 60.0, clients: int = 10_000,
                 path: Path | None = None) -> None:
        self.limit, self.window_s, self.clients = limit, window_s, clients
        self.path = path
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        assert self.path is not None
        conn = sqlite3.connect(self.path, timeout=10)
        conn.execute("CREATE TABLE IF NOT EXISTS login_failures (client TEXT NOT NULL, "
                     "at REAL NOT NULL)")
        return conn

    def _recent(self, client: str, now: float) -> list[float]:
        if self.path is None:
            with self._lock:
                recent = [t for t in self._failures.get(client, [])
                          if now - t < self.window_s]
                self._failures[client] = recent
            return recent
        with closing(self._db()) as conn, conn:
            rows = conn.execute("SELECT at FROM login_failures WHERE client = ? AND at > ? "
                                "ORDER BY at", (client, now - self.window_s)).fetchall()
        return [at for (at,) in rows]

    def check(self, client: str) -> None:
        now = time.time()
        recent = self._recent(client, now)
        if len(recent) >= self.limit:
            wait = self.window_s - (now - recent[0])
            raise TooManyAttempts(f"{len(recent)} wrong tokens from {client} in the last "
                                  f"{self.window_s:.0f} s; wait {wait:.0f} s and try again")

    def failed(self, client: str) -> None:
        now = time.time()
        if self.path is None:
            with self._lock:
                if len(self._failures) >= self.clients and client not in self._failures:
                    self._failures.clear()
                self._failures.setdefault(client, []).append(now)
            return
        with closing(self._db()) as conn, conn:
            # forget what no window can count any more, so the table stays small
            conn.execute("DELETE FROM login_failures WHERE at < ?", (now - 3600,))
            conn.execute("INSERT INTO login_failures (client, at) VALUES (?, ?)",
                         (client, now))


def log_in(request: Request) -> None:
    """Mark the session authenticated and give it a fresh CSRF token (no fixation)."""
    request.session.clear()
    request.session["auth"] = True
    csrf_token(request)


def log_out(request: Request) -> None:
    request.session.clear()


def safe_next(target: str | None) -> str:
    """Only same-site paths: '/x' yes; '//evil', 'http://evil', '/\\evil' no."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


async def require_auth(request: Request) -> None:
    """A FastAPI dependency: a logged-in session, unless the app is open (loopback, no token)."""
    if request.url.path in PUBLIC_PATHS or is_authenticated(request):
        return
    raise LoginRequired("log in with the server's token at /login")


async def require_csrf(request: Request) -> None:
    """A FastAPI dependency: state changes carry the session's CSRF token."""
    if request.method not in UNSAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    expected = request.session.get("csrf")
    if not given or not isinstance(expected, str) or not hmac.compare_digest(
            given.encode(), expected.encode()):
        raise CsrfRejected(
            "the form's security token is missing or stale; reload the page and try again"
        )


class SecurityHeaders:
    """Pure ASGI: adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Starlette's TestClient sends Host: testserver; a browser only sends it if the user's own
# resolver maps that single-label name, which a remote DNS-rebinding page cannot arrange.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "testserver"})


def host_name(host_header: str) -> str:
    """'[::1]:8000' -> '::1', 'localhost:8000' -> 'localhost' (lower case)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostCheck:
    """Pure ASGI, only when the app is open (loopback, no token): refuse requests whose Host is
    not a loopback name. Without it a web page could DNS-rebind its own domain to 127.0.0.1 and
    then read pages and post forms (its own session, its own CSRF token) as same-origin."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(raw) not in self.allowed:
                response = error_json(HostRejected(
                    f"this server answers on loopback names only, not {raw!r}; "
                    "open it as http://127.0.0.1:PORT, or serve with a token"))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Pure ASGI: 413 for a declared Content-Length over the bound, and for a streamed body
    that grows past it (counted as it is read)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        seen = 0
        over = False

        async def counting_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise BodyTooLarge(self._detail)
            return message

        async def guarded_send(message: Message) -> None:
            # a body parser may turn BodyTooLarge into its own 400: answer 413 instead
            if over:
                if message["type"] == "http.response.start":
                    await self._too_large(scope, receive, send)
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            await self._too_large(scope, receive, send)

    @property
    def _detail(self) -> str:
        return f"request body over {self.max_bytes} bytes"

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_json(BodyTooLarge(self._detail))(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Middleware (outermost last) and the login throttle; called once by ``create_app``."""
    settings.check_exposure()
    document_errors(app)  # every route can answer this layer's 401/403/413/400 and its own 4xx
    ws = Workspace(settings.workspace)
    shared = ws.app_db_path if ws.root.is_dir() else None
    app.state.login_throttle = LoginThrottle(path=shared)
    app.add_middleware(SessionMiddleware, secret_key=session_key(settings),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE,
                       same_site="strict", https_only=settings.secure_cookies)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if not token_required(settings):
        app.add_middleware(HostCheck, allowed=LOOPBACK_NAMES | {settings.host.lower()})
    app.add_middleware(SecurityHeaders)
