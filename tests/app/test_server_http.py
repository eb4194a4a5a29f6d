"""The first server through HTTP: health, the overview page, thumbnails by id, errors."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from PIL import Image

from modescope.app.main import create_app
from modescope.app.settings import Settings
from tests.app.conftest import Server
from tests.conftest import run_cli
from tests.images import picture, save


def test_health_and_overview_counts(server: Server, demo_workspace: Path) -> None:
    health = httpx.get(server.url + "/health").json()
    assert health == {"status": "ok", "version": health["version"],
                      "workspace": str(demo_workspace), "catalog": True}
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<span class="n">297</span> images' in page.text
    assert '<span class="n">59</span> held out' in page.text  # never trained on
    assert '<span class="n">3</span> exact duplicates' in page.text


def test_thumbnails_are_served_by_id_and_match_the_catalog(server: Server,
                                                           demo_workspace: Path) -> None:
    data = httpx.get(server.url + "/api/overview").json()
    assert data["counts"]["ok"] == 297 and data["pages"] == 5 and len(data["images"]) == 60
    conn = sqlite3.connect(demo_workspace / "catalog.sqlite")
    for item in data["images"][:5]:
        res = httpx.get(item["url"])
        assert res.status_code == 200 and res.headers["content-type"] == "image/png"
        (file,) = conn.execute("SELECT file FROM images WHERE id = ?", (item["id"],)).fetchone()
        assert res.content == (demo_workspace / file).read_bytes()
        assert Image.open(io.BytesIO(res.content)).size == (64, 64)


def test_grid_pages_differ_and_cover_every_image(server: Server) -> None:
    seen: list[int] = []
    for page in range(1, 6):
        seen += [i["id"] for i in
                 httpx.get(server.url + f"/api/overview?page={page}").json()["images"]]
    assert len(seen) == len(set(seen)) == 297
    html = httpx.get(server.url + "/?page=2").text
    assert "page 2 of 5" in html and 'href="?page=3"' in html and 'href="?page=1"' in html


def test_unknown_ids_and_paths_are_404_not_files(server: Server) -> None:
    for url in ("/images/train/999999.png", "/images/train/..%2F..%2Fcatalog.sqlite.png",
                "/images/train/%2Fetc%2Fpasswd.png"):
        res = httpx.get(server.url + url)
        assert res.status_code in (404, 422), url
        assert b"SQLite" not in res.content and b"root:" not in res.content
    res = httpx.get(server.url + "/images/train/999999.png",
                    headers={"accept": "application/json"})
    assert res.json() == {"error": "Not found", "detail": "no training image with id 999999"}
    assert "no training image" in httpx.get(server.url + "/images/train/999999.png").text


def test_rejected_files_are_listed_with_reasons_and_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    save(picture(), folder / "ok.png")
    (folder / "<img src=x onerror=alert(1)>.jpg").write_bytes(b"")
    (folder / "words.png").write_text("hello")
    ws = tmp_path / "ws"
    assert run_cli("ingest", folder, "-w", ws).code == 0
    with TestClient(create_app(Settings(workspace=ws))) as client:
        html = client.get("/").text
        assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in html and "<img src=x" not in html
        assert "empty file: 0 bytes" in html and "not an image" in html
        assert client.get("/api/overview").json()["rejected_by_reason"] == {
            "empty file": 1, "not an image": 1}


def test_a_workspace_not_ingested_yet_says_what_to_do(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(workspace=tmp_path / "none"))) as client:
        res = client.get("/")
        assert res.status_code == 503 and "modescope ingest" in res.text
        assert client.get("/health").json()["catalog"] is False


def test_serve_refuses_a_missing_workspace_in_one_line(tmp_path: Path) -> None:
    res = run_cli("serve", "-w", tmp_path / "none", "--port", "1")
    assert res.code == 2 and res.err.startswith("modescope: error:")
    assert "Traceback" not in res.err


def test_the_web_process_never_imports_tensorflow(demo_workspace: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from modescope.app.main import create_app\n"
        "from modescope.app.settings import Settings\n"
        f"with TestClient(create_app(Settings(workspace={str(demo_workspace)!r}))) as c:\n"
        "    assert c.get('/').status_code == 200\n"
        "    assert c.get('/api/overview').status_code == 200\n"
        "bad = [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
