"""User-controlled text (file names, labels, flag notes) is shown escaped on every page."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.app.dataset_fixtures import client_for, csrf
from tests.conftest import run_cli

XSS_LABEL = "<img src=x onerror=alert(1)>"
XSS_FILE = "<script>alert(1)<script>.png"  # '/' cannot be part of a file name
XSS_NOTE = "<script>alert('note')</script>"


@pytest.fixture(scope="module")
def xss_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("xss") / "data"
    (data / XSS_LABEL).mkdir(parents=True)
    Image.new("RGB", (80, 80), (200, 30, 30)).save(data / XSS_LABEL / XSS_FILE)
    Image.new("RGB", (80, 80), (30, 200, 30)).save(data / XSS_LABEL / "green.png")
    (data / XSS_LABEL / "<b onclick=alert(2)>broken.png").write_bytes(b"not an image")
    ws = data.parent / "ws"
    res = run_cli("ingest", data, "--workspace", ws)
    assert res.code == 0, res.err
    return ws


def test_file_names_labels_and_notes_are_escaped(xss_workspace: Path) -> None:
    with client_for(xss_workspace) as client:
        ids = [img["id"] for img in client.get("/api/overview").json()["images"]]
        assert len(ids) == 2
        res = client.post("/dataset/flag", data={
            "csrf_token": csrf(client), "ids": [str(i) for i in ids], "reason": "other",
            "note": XSS_NOTE, "back": "/dataset"}, follow_redirects=False)
        assert res.status_code == 303
        pages = ["/", "/dataset", "/dataset?view=flagged", res.headers["location"],
                 *[f"/dataset/images/{i}" for i in ids]]
        for path in pages:
            html = client.get(path).text
            assert "<script>alert" not in html and "<img src=x" not in html, path
            assert "<b onclick" not in html, path
        overview = client.get("/").text
        assert "&lt;b onclick=alert(2)&gt;broken.png" in overview  # the rejected file, escaped
        detail = client.get(f"/dataset/images/{ids[0]}").text
        assert "&lt;img src=x onerror=alert(1)&gt;" in detail
        assert "&lt;script&gt;alert(&#39;note&#39;)&lt;/script&gt;" in detail
        assert "&lt;script&gt;alert(1)&lt;script&gt;.png" in client.get(
            f"/dataset/images/{min(ids)}").text + client.get(
            f"/dataset/images/{max(ids)}").text
        # the JSON twins carry the raw text (JSON is not HTML), as application/json
        api = client.get("/api/dataset?view=flagged")
        assert api.headers["content-type"] == "application/json"
        assert {i["flag"]["note"] for i in api.json()["images"]} == {XSS_NOTE}


def test_autoescape_is_on_and_done_messages_cannot_be_forged(xss_workspace: Path) -> None:
    with client_for(xss_workspace) as client:
        env = client.app.state.templates.env  # type: ignore[attr-defined]
        assert env.autoescape("dataset.html") is True
        forged = client.get("/dataset?done=Your+session+expired,+call+0800-SCAM").text
        assert "call 0800" not in forged and "Done:" not in forged
        assert "Done: flagged 2 as noisy." in client.get("/dataset?done=flagged+2+as+noisy").text
