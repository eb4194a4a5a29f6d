"""Security: token login, signed cookie, CSRF on every state change, headers, bounds, escaping."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from modescope.app.main import create_app
from modescope.app.security import SESSION_COOKIE
from modescope.app.settings import Settings
from tests.app.conftest import free_port
from tests.conftest import modescope_cmd, run_cli

TOKEN = "correct-horse-battery-staple-42"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def csrf_of(html: str) -> str:
    match = (re.search(r'name="csrf_token" value="([^"]+)"', html)
             or re.search(r'<meta name="csrf-token" content="([^"]+)"', html))
    assert match, "page has no csrf field"
    return match.group(1)


@pytest.fixture(scope="module")
def guarded(demo_workspace: Path) -> Iterator[TestClient]:
    app = create_app(Settings(workspace=demo_workspace, token=SecretStr(TOKEN)))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture(scope="module")
def open_client(demo_workspace: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=demo_workspace)),
                    base_url="http://127.0.0.1") as client:
        yield client


def login(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    res = client.post("/login", data={"token": TOKEN, "next": "/", "csrf_token": token},
                      follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/"


def mutating_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every POST/PUT/PATCH/DELETE route in the app's OpenAPI schema (other engineers' routes
    included), path parameters filled with a plausible value."""
    out = []
    for path, ops in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method in sorted(m.upper() for m in ops if m.upper() in UNSAFE):
            out.append((method, re.sub(r"\{[^}]+\}", "1", path)))
    return out


def test_serving_off_loopback_without_a_token_refuses_to_start(demo_workspace: Path) -> None:
    res = run_cli("serve", "-w", demo_workspace, "--host", "0.0.0.0", "--port",
                  str(free_port()), env={"MODESCOPE_TOKEN": ""}, timeout=60)
    assert res.code == 2
    assert "refusing to serve on 0.0.0.0 without a token" in res.err
    assert "MODESCOPE_TOKEN" in res.err and "--token-file" in res.err
    assert "Traceback" not in res.err


def test_empty_token_file_and_short_token_are_refused(demo_workspace: Path,
                                                      tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    res = run_cli("serve", "-w", demo_workspace, "--host", "0.0.0.0", "--token-file", empty)
    assert res.code == 2 and "is empty" in res.err
    short = tmp_path / "short"
    short.write_text("abc\n")
    res = run_cli("serve", "-w", demo_workspace, "--host", "0.0.0.0", "--token-file", short)
    assert res.code == 2 and "shorter than 16 characters" in res.err


@pytest.mark.slow  # starts a server
def test_off_loopback_with_a_token_file_serves_and_asks_for_login(demo_workspace: Path,
                                                                  tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    proc = subprocess.Popen(
        [*modescope_cmd(), "serve", "-w", str(demo_workspace), "--host", "0.0.0.0",
         "--port", str(port), "--token-file", str(token_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read()  # type: ignore[union-attr]
            subprocess.run(["sleep", "0.1"], check=True)
        with httpx.Client(base_url=url) as client:
            page = client.get("/")
            assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F"
            form = client.get("/login")
            res = client.post("/login", data={"token": TOKEN, "csrf_token": csrf_of(form.text)})
            assert res.status_code == 303
            assert client.get("/").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_pages_redirect_to_login_and_api_answers_401(guarded: TestClient) -> None:
    guarded.cookies.clear()
    page = guarded.get("/?page=2", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F%3Fpage%3D2"
    api = guarded.get("/api/overview")
    assert api.status_code == 401 and api.json()["error"] == "Login required"
    thumb = guarded.get("/images/train/1.png", follow_redirects=False)
    assert thumb.status_code == 303 and thumb.headers["location"].startswith("/login")


def test_unauthenticated_state_changes_are_refused_even_with_a_csrf_token(
        guarded: TestClient) -> None:
    guarded.cookies.clear()
    token = csrf_of(guarded.get("/login").text)
    routes = [r for r in mutating_routes(guarded) if r[1] != "/login"]
    assert routes, "the app has state-changing routes"
    for method, path in routes:
        res = guarded.request(method, path, headers={"X-CSRF-Token": token})
        assert res.status_code == 401, (method, path, res.status_code)


def test_wrong_token_is_refused_and_login_sets_a_signed_httponly_strict_cookie(
        guarded: TestClient) -> None:
    guarded.cookies.clear()
    token = csrf_of(guarded.get("/login").text)
    bad = guarded.post("/login", data={"token": TOKEN + "x", "csrf_token": token})
    assert bad.status_code == 401 and "not this server&#39;s token" in bad.text
    res = guarded.post("/login", data={"token": TOKEN, "next": "/dataset",
                                       "csrf_token": token}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/dataset"
    cookie = res.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    value = guarded.cookies[SESSION_COOKIE]
    assert guarded.get("/api/overview").status_code == 200
    # a forged cookie (payload changed, signature kept) is no login at all
    payload, _, sig = value.partition(".")
    guarded.cookies.set(SESSION_COOKIE, payload[:-4] + "AAA=" + "." + sig)
    assert guarded.get("/api/overview").status_code == 401
    guarded.cookies.set(SESSION_COOKIE, value)
    assert guarded.get("/api/overview").status_code == 200


def test_login_does_not_redirect_off_site(guarded: TestClient) -> None:
    guarded.cookies.clear()
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        token = csrf_of(guarded.get("/login").text)
        res = guarded.post("/login", data={"token": TOKEN, "next": target, "csrf_token": token},
                           follow_redirects=False)
        assert res.headers["location"] == "/", target


def test_every_mutating_route_rejects_a_missing_or_wrong_csrf_token(guarded: TestClient,
                                                                    open_client: TestClient
                                                                    ) -> None:
    guarded.cookies.clear()
    login(guarded)
    for client in (guarded, open_client):
        csrf_of(client.get("/login").text)  # the session now has a token
        for method, path in mutating_routes(client):
            res = client.request(method, path)
            assert res.status_code == 403, (method, path, res.status_code)
            res = client.request(method, path, data={"csrf_token": "forged"})
            assert res.status_code == 403, (method, path, res.status_code)
            res = client.request(method, path, headers={"X-CSRF-Token": "forged"})
            assert res.status_code == 403, (method, path, res.status_code)
    # and the same session's token is accepted (logout answers 303)
    token = csrf_of(guarded.get("/login").text)
    assert guarded.post("/logout", data={"csrf_token": token},
                        follow_redirects=False).status_code == 303
    assert guarded.get("/api/overview").status_code == 401


def test_security_headers_on_pages_errors_and_static(open_client: TestClient) -> None:
    for path in ("/", "/api/overview", "/nope", "/static/style.css", "/login", "/docs"):
        res = open_client.get(path)
        csp = res.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp, path
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.headers["referrer-policy"] == "same-origin"


def test_templates_have_no_inline_script_or_style() -> None:
    root = Path(__file__).resolve().parents[2] / "templates"
    for tpl in root.glob("*.html"):
        text = tpl.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), tpl.name
        assert " style=" not in text and "<style" not in text, tpl.name
        assert not re.search(r"\son[a-z]+=", text), tpl.name


def test_oversize_bodies_get_413_declared_or_streamed(open_client: TestClient) -> None:
    big = b"x" * ((1 << 20) + 1)
    res = open_client.post("/logout", content=big,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert res.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"csrf_token=" + b"y" * 100_000

    res = open_client.post("/logout", content=chunks(),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert res.status_code == 413


@pytest.mark.parametrize("path", [
    "/images/train/..%2F..%2Fcatalog.sqlite.png", "/images/train/../../etc/passwd",
    "/images/train/%2e%2e%2fcatalog.sqlite.png", "/images/train/abc.png",
    "/images/train/-1.png", "/dataset/images/abc", "/dataset/images/..%2Fcatalog.sqlite",
    "/static/..%2F..%2Fpyproject.toml", "/static/../app/security.py",
])
def test_path_traversal_on_id_routes_gives_404_or_422(open_client: TestClient,
                                                      path: str) -> None:
    res = open_client.get(path)
    assert res.status_code in (404, 422), (path, res.status_code)
    assert b"SQLite format" not in res.content and b"[project]" not in res.content
    assert b"def require_csrf" not in res.content


def test_open_mode_answers_loopback_host_names_only(demo_workspace: Path,
                                                    open_client: TestClient,
                                                    guarded: TestClient) -> None:
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000", "LOCALHOST:1"):
        assert open_client.get("/health", headers={"host": host}).status_code == 200, host
    for host in ("rebind.evil.example", "rebind.evil.example:8000", "127.0.0.1.evil.example",
                 "", "[::2]:80"):
        res = open_client.get("/api/overview", headers={"host": host})
        assert res.status_code == 400, host
        assert "loopback names only" in res.json()["detail"]
    # with a token the cookie is the guard: any name (a LAN address, a host name) is answered
    guarded.cookies.clear()
    assert guarded.get("/login", headers={"host": "modescope.lan:8000"}).status_code == 200


def test_wrong_tokens_are_throttled_per_client(demo_workspace: Path) -> None:
    app = create_app(Settings(workspace=demo_workspace, token=SecretStr(TOKEN)))
    # failures are kept in the workspace (shared by server processes, kept over restarts), and
    # other tests log in wrongly too: this test's client has an address of its own
    with TestClient(app, base_url="http://127.0.0.1", client=("198.51.100.7", 50000)) as client:
        token = csrf_of(client.get("/login").text)
        for _ in range(10):
            res = client.post("/login", data={"token": "guess-guess-guess", "csrf_token": token})
            assert res.status_code == 401
        res = client.post("/login", data={"token": TOKEN, "csrf_token": token})
        assert res.status_code == 429 and "wrong tokens from" in res.text
        app.state.login_throttle.window_s = 0.0  # the window has passed
        res = client.post("/login", data={"token": TOKEN, "csrf_token": token},
                          follow_redirects=False)
        assert res.status_code == 303


def test_the_api_schema_is_behind_the_login(demo_workspace: Path) -> None:
    app = create_app(Settings(workspace=demo_workspace, token=SecretStr(TOKEN)))
    with TestClient(app, base_url="http://127.0.0.1", client=("198.51.100.9", 50000)) as client:
        res = client.get("/openapi.json", headers={"accept": "application/json"})
        assert res.status_code == 401 and "paths" not in res.text
        res = client.get("/openapi.json", follow_redirects=False)
        assert res.status_code == 303 and res.headers["location"].startswith("/login")
        login(client)
        schema = client.get("/openapi.json").json()
        assert "/api/dataset/flag" in schema["paths"] and "/openapi.json" not in schema["paths"]
        assert 'src="/static/docs.js"' in client.get("/docs").text
