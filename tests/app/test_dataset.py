"""/dataset: paginated views, flag/unflag (form and JSON), the image page, cached analyses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modescope.app.store import FlagStore
from modescope.core.catalog import Catalog
from modescope.core.workspace import Workspace
from modescope.indexer import ndb
from tests.app.dataset_fixtures import client_for, csrf
from tests.conftest import run_cli


@pytest.fixture
def client(dataset_ws: Path) -> Iterator[TestClient]:
    with client_for(dataset_ws) as c:
        yield c


def ids_on(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="ids" value="(\d+)" form="curate"', html)]


def test_all_view_paginates_and_never_renders_the_whole_set(client: TestClient) -> None:
    first = client.get("/dataset")
    assert first.status_code == 200
    ids = ids_on(first.text)
    assert len(ids) == 60 and ids == sorted(ids)
    assert "page 1 of 5" in first.text
    data = client.get("/api/dataset?view=all&page=5").json()
    assert data["total"] == 297 and data["pages"] == 5 and len(data["images"]) == 297 - 240
    assert all(img["outlier_score"] is not None for img in data["images"])
    seen = set(ids)
    for page in range(2, 6):
        seen |= {i["id"] for i in client.get(f"/api/dataset?page={page}").json()["images"]}
    with Catalog.reading(Workspace(client.app.state.settings.workspace).catalog_path) as cat:  # type: ignore[attr-defined]
        assert seen == {i for i, _, _ in cat.ok_files()}
    assert client.get("/api/dataset?page=99").json()["page"] == 5  # clamped, not empty


def test_flag_two_from_the_grid_form_then_unflag_one(client: TestClient) -> None:
    token = csrf(client)
    res = client.post("/dataset/flag", data={
        "csrf_token": token, "ids": ["3", "7"], "reason": "noisy", "note": "blurry",
        "back": "/dataset?view=all&page=1&done=old"}, follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"] == "/dataset?view=all&page=1&done=flagged+2+as+noisy"
    page = client.get(res.headers["location"]).text
    assert "Done: flagged 2 as noisy." in page
    assert page.count("flagged: noisy") == 2
    flagged = client.get("/api/dataset?view=flagged").json()
    assert sorted(i["id"] for i in flagged["images"]) == [3, 7]
    assert (flagged["counts"]["ok"], flagged["counts"]["flagged"]) == (297, 2)
    assert {i["flag"]["note"] for i in flagged["images"]} == {"blurry"}
    res = client.post("/dataset/unflag", data={"csrf_token": token, "ids": ["7"],
                                               "back": "/dataset?view=flagged"})
    assert res.status_code == 200 and "Done: unflagged 1." in res.text
    assert [i["id"] for i in client.get("/api/dataset?view=flagged").json()["images"]] == [3]
    # the CLI and the trainer read the same flags
    res = run_cli("export", "-w", client.app.state.settings.workspace, "--format", "json")  # type: ignore[attr-defined]
    ws = Workspace(client.app.state.settings.workspace)  # type: ignore[attr-defined]
    with Catalog.reading(ws.catalog_path) as cat:
        curated = len(cat.curated())  # ok, neither flagged nor held out
    assert 3 not in {r["id"] for r in res.json()["images"]} and res.json()["count"] == curated


def test_bad_flag_requests_say_what_is_wrong(client: TestClient) -> None:
    token = csrf(client)
    res = client.post("/dataset/flag", data={"csrf_token": token, "reason": "noisy"})
    assert res.status_code == 400 and "no image selected" in res.text
    res = client.post("/dataset/flag", data={"csrf_token": token, "ids": ["1"],
                                             "reason": "ugly"})
    assert res.status_code == 422
    res = client.post("/api/dataset/flag", json={"ids": [1, 999999], "reason": "duplicate"},
                      headers={"X-CSRF-Token": token})
    assert res.status_code == 200
    assert res.json() == {"changed": [1], "not_training": [999999], "flagged_total": 1}
    res = client.post("/api/dataset/flag", json={"ids": [2], "note": "x" * 501},
                      headers={"X-CSRF-Token": token})
    assert res.status_code == 422
    res = client.post("/dataset/flag", data={"csrf_token": token, "ids": ["1"],
                                             "back": "https://evil.example/"},
                      follow_redirects=False)
    assert res.headers["location"].startswith("/?done=")


def test_outlier_view_is_the_inspect_ranking(client: TestClient) -> None:
    ws = client.app.state.settings.workspace  # type: ignore[attr-defined]
    cli = run_cli("inspect", "outliers", "-w", ws, "--json").json()
    data = client.get("/api/dataset?view=outliers").json()
    assert [i["id"] for i in data["images"]] == [r["id"] for r in cli["ranked"][:60]]
    scores = [i["outlier_score"] for i in data["images"]]
    assert scores == sorted(scores, reverse=True)
    assert [i["unusual"] for i in data["images"]] == [r["suggested"] for r in cli["ranked"][:60]]


def test_duplicate_view_is_the_inspect_grouping(client: TestClient) -> None:
    ws = client.app.state.settings.workspace  # type: ignore[attr-defined]
    cli = run_cli("inspect", "duplicates", "-w", ws, "--json").json()
    data = client.get("/api/dataset?view=duplicates").json()
    assert data["total"] == len(cli["groups"]) > 0
    groups = [g for p in range(1, data["pages"] + 1) for g in client.get(
        f"/api/dataset?view=duplicates&page={p}").json()["groups"]]
    assert sorted(sorted(i["id"] for i in g) for g in groups) == sorted(
        sorted(g["ids"]) for g in cli["groups"])
    sizes = [len(g) for g in groups]
    assert sizes == sorted(sizes, reverse=True)
    html = client.get("/dataset?view=duplicates").text
    assert html.count('aria-label="duplicate group"') == len(data["groups"])


def test_mode_view_partitions_the_indexed_images(client: TestClient) -> None:
    data = client.get("/api/dataset?view=modes").json()
    assert len(data["modes"]) == ndb.default_k(297)
    assert sum(n for _, n in data["modes"]) == 297
    members: list[int] = []
    for b, n in data["modes"]:
        got = client.get(f"/api/dataset?view=modes&mode={b}").json()
        assert got["mode"] == b and got["total"] == n
        ids = [i["id"] for i in got["images"]]
        for page in range(2, got["pages"] + 1):
            ids += [i["id"] for i in client.get(
                f"/api/dataset?view=modes&mode={b}&page={page}").json()["images"]]
        members += ids
        detail = client.get(f"/api/dataset/images/{ids[0]}").json()
        assert detail["mode"] == b and detail["mode_size"] == n
    assert len(members) == len(set(members)) == 297


def test_suggestions_follow_the_flags_and_match_the_cli(client: TestClient) -> None:
    assert "flag a few images first" in client.get("/dataset?view=suggest").text
    token = csrf(client)
    client.post("/api/dataset/flag", json={"ids": [5, 6]}, headers={"X-CSRF-Token": token})
    ws = client.app.state.settings.workspace  # type: ignore[attr-defined]
    cli = run_cli("inspect", "suggest", "-w", ws, "--json", "--top", "60").json()
    data = client.get("/api/dataset?view=suggest").json()
    assert [i["id"] for i in data["images"]] == [s["id"] for s in cli["suggestions"]]
    assert data["method"] == cli["method"]
    assert not {5, 6} & {i["id"] for i in data["images"]}
    # a third flag changes the flags version: suggestions are recomputed without it
    top = data["images"][0]["id"]
    client.post("/api/dataset/flag", json={"ids": [top]}, headers={"X-CSRF-Token": token})
    again = client.get("/api/dataset?view=suggest").json()
    assert top not in {i["id"] for i in again["images"]}


def test_kept_images_are_learned_as_good_never_suggested_again_and_counted(
        client: TestClient) -> None:
    token = csrf(client)
    flagged = [5, 6, 7, 8, 9]  # enough flags for the model
    client.post("/api/dataset/flag", json={"ids": flagged}, headers={"X-CSRF-Token": token})
    first = client.get("/api/dataset?view=suggest").json()
    assert first["method"] == "logistic regression"
    assert first["review"] == {"flagged": 5, "kept": 0, "reviewed": 5}
    top3 = [i["id"] for i in first["images"][:3]]
    # the user reviews the three first suggestions and keeps them, through the page's form
    res = client.post("/dataset/keep", data={"csrf_token": token, "ids": [str(i) for i in top3],
                                             "back": "/dataset?view=suggest"})
    assert res.status_code == 200 and "Done: kept 3." in res.text
    assert "learned from 5 flagged and 3 kept: 8 reviewed" in res.text
    assert 'formaction="/dataset/keep"' in res.text
    again = client.get("/api/dataset?view=suggest").json()
    assert again["review"] == {"flagged": 5, "kept": 3, "reviewed": 8}
    assert not set(top3) & {i["id"] for i in again["images"]}
    # the CLI reads the same kept images: its suggestions are the page's
    ws = client.app.state.settings.workspace  # type: ignore[attr-defined]
    cli = run_cli("inspect", "suggest", "-w", ws, "--json", "--top", "60").json()
    assert cli["kept"] == 3
    assert [s["id"] for s in cli["suggestions"]] == [i["id"] for i in again["images"]]
    # keeping a flagged image takes its flag off; flagging a kept one takes it off the kept
    out = client.post("/api/dataset/keep", json={"ids": [5, 10**6]},
                      headers={"X-CSRF-Token": token}).json()
    assert out == {"changed": [5], "not_training": [10**6], "flagged_total": 4}
    client.post("/api/dataset/flag", json={"ids": [top3[0]]}, headers={"X-CSRF-Token": token})
    with Catalog.reading(Workspace(ws).catalog_path) as catalog:
        assert catalog.kept_ids() == {5, *top3[1:]}
        assert catalog.flagged_ids() == {6, 7, 8, 9, top3[0]}
    assert client.post("/api/dataset/keep", json={"ids": [1]}).status_code == 403  # no CSRF


def test_analyses_are_cached_until_the_index_changes(client: TestClient) -> None:
    curation = client.app.state.dataset.curation  # type: ignore[attr-defined]
    client.get("/dataset?view=outliers")
    first = curation.outliers()
    client.get("/dataset?view=outliers&page=2")
    assert curation.outliers() is first
    assert client.get("/api/dataset").json()["analysis_seconds"]["outliers"] > 0
    meta = Path(client.app.state.settings.workspace) / "index" / "train" / "meta.json"  # type: ignore[attr-defined]
    st = meta.stat()
    os.utime(meta, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert curation.outliers() is not first


def test_training_image_page_shows_facts_and_flags_from_its_form(client: TestClient) -> None:
    page = client.get("/dataset/images/10")
    assert page.status_code == 200
    html = page.text
    for fact in ("Label", "Outlier score", "rank", "Mode", "not flagged", "SHA-256"):
        assert fact in html, fact
    token = csrf(client)
    res = client.post("/dataset/flag", data={"csrf_token": token, "ids": ["10"],
                                             "reason": "off-topic", "back": "/dataset/images/10"},
                      follow_redirects=False)
    assert res.headers["location"] == "/dataset/images/10?done=flagged+1+as+off-topic"
    html = client.get(res.headers["location"]).text
    assert "flagged: off-topic" in html and "Unflag" in html
    assert client.get("/api/dataset/images/10").json()["image"]["flag"]["reason"] == "off-topic"
    assert client.get("/dataset/images/999999").status_code == 404
    assert client.get("/api/dataset/images/999999").json()["error"] == "Not found"


def test_not_indexed_workspace_shows_how_to_index_not_an_error(demo_workspace: Path) -> None:
    with client_for(demo_workspace) as c:
        assert len(ids_on(c.get("/dataset").text)) == 60
        for view in ("modes", "outliers", "duplicates"):
            res = c.get(f"/dataset?view={view}")
            assert res.status_code == 200
            assert "not indexed yet" in res.text and "modescope index" in res.text
        assert "not indexed" in c.get("/dataset/images/1").text


def test_one_writer_under_concurrent_flagging(dataset_ws: Path) -> None:
    store = FlagStore(Workspace(dataset_ws))
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(20):
                ids = [offset * 20 + n + 1]
                store.flag(ids, "noisy")
                if n % 2:
                    store.unflag(ids)
        except BaseException as exc:  # noqa: BLE001  (collected for the assertion)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Catalog.reading(Workspace(dataset_ws).catalog_path) as catalog:
        ok = {i for i, _, _ in catalog.ok_files()}
    expected = {o * 20 + n + 1 for o in range(8) for n in range(0, 20, 2)} & ok
    assert len(expected) >= 75 and store.flagged_ids() == expected


def test_the_web_process_never_imports_tensorflow(dataset_ws: Path) -> None:
    script = f"""
import sys
from fastapi.testclient import TestClient
from modescope.app.main import create_app
from modescope.app.settings import Settings
with TestClient(create_app(Settings(workspace={str(dataset_ws)!r})),
                base_url="http://127.0.0.1") as c:
    for path in ["/", "/dataset", "/dataset?view=modes", "/dataset?view=outliers",
                 "/dataset?view=duplicates", "/dataset?view=flagged", "/dataset/images/3",
                 "/export/curated.csv", "/api/dataset?view=modes"]:
        assert c.get(path).status_code == 200, path
    import re
    t = re.search(r'csrf-token" content="([^"]+)', c.get("/dataset").text).group(1)
    assert c.post("/api/dataset/flag", json={{"ids": [1, 2]}},
                  headers={{"X-CSRF-Token": t}}).status_code == 200
    assert c.get("/dataset?view=suggest").status_code == 200
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_thumbnails_have_strong_etags_and_pinned_urls_are_immutable(client: TestClient) -> None:
    url = client.get("/api/dataset").json()["images"][0]["url"]
    assert "?v=" in url
    pinned = client.get(url)
    assert pinned.status_code == 200 and pinned.headers["content-type"] == "image/png"
    tag = pinned.headers["etag"]
    assert tag.startswith('"') and not tag.startswith("W/") and len(tag) == 66
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    bare = client.get(url.split("?")[0])
    assert bare.headers["etag"] == tag and bare.headers["cache-control"] == "no-cache"
    again = client.get(url.split("?")[0], headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    stale = client.get(url.split("?")[0] + "?v=0000000000000000")
    assert stale.headers["cache-control"] == "no-cache"  # a wrong version is never pinned


def test_a_slow_analysis_shows_computing_and_the_page_reloads_until_ready(
        dataset_ws: Path) -> None:
    import time

    with client_for(dataset_ws, analysis_wait_s=0) as c:
        first = c.get("/dataset?view=modes")
        assert first.status_code == 200
        assert "computing the mode bins" in first.text
        assert '<meta http-equiv="refresh" content="3">' in first.text
        deadline = time.monotonic() + 60
        while "computing the mode bins" in (page := c.get("/dataset?view=modes").text):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert 'http-equiv="refresh"' not in page and len(ids_on(page)) > 0


def test_overview_counts_the_flags_and_links_to_them(client: TestClient) -> None:
    token = csrf(client)
    client.post("/api/dataset/flag", json={"ids": [1, 2, 3]}, headers={"X-CSRF-Token": token})
    assert client.get("/api/overview").json()["counts"]["flagged"] == 3
    html = client.get("/").text
    assert re.search(r'href="/dataset\?view=flagged"><span class="n">3</span>', html)


def test_image_page_nearest_images_are_the_brute_force_cosine_nearest(
        client: TestClient) -> None:
    import numpy as np

    from modescope.indexer.inputs import load_vectors

    ids, vecs, _ = load_vectors(Workspace(client.app.state.settings.workspace), "train")  # type: ignore[attr-defined]
    for image_id in (int(ids[0]), int(ids[150])):
        data = client.get(f"/api/dataset/images/{image_id}").json()
        for layer in ("block5", "block1"):
            v = vecs[layer] / np.linalg.norm(vecs[layer], axis=1, keepdims=True)
            sims = v @ v[int(np.flatnonzero(ids == image_id)[0])]
            order = [int(ids[j]) for j in np.argsort(-sims, kind="stable")
                     if ids[j] != image_id][:12]
            got = data["nearest"][layer]
            assert [t["id"] for t in got][:3] == order[:3], layer
            expect = {int(i): float(s) for i, s in zip(ids, sims, strict=True)}
            assert all(abs(t["score"] - expect[t["id"]]) < 1e-4 for t in got)
            assert [t["score"] for t in got] == sorted((t["score"] for t in got), reverse=True)
    html = client.get(f"/dataset/images/{int(ids[0])}").text
    assert html.count('class="tile') >= 24 and "Most similar training images" in html


def test_held_out_images_are_shown_marked_and_counted_apart_from_the_curated_set(
        client: TestClient) -> None:
    ws = Workspace(client.app.state.settings.workspace)  # type: ignore[attr-defined]
    with Catalog.reading(ws.catalog_path) as cat:
        held = sorted(cat.held_out_ids())
        curated = len(cat.curated())
        flagged_training = cat.flagged_ids() - set(held)
        assert held and curated + len(held) + len(flagged_training) == cat.counts()["ok"]
    data = client.get("/api/dataset?view=all&page=1").json()
    assert data["counts"]["held_out"] == len(held) and data["counts"]["curated"] == curated
    shown = [i for p in range(1, data["pages"] + 1)
             for i in client.get(f"/api/dataset?page={p}").json()["images"]]
    assert sorted(i["id"] for i in shown if i["held_out"]) == held
    html = client.get("/dataset").text
    assert f"{len(held)} held out" in html and f"curated set (trained on) {curated}" in html
    page = client.get(f"/dataset/images/{held[0]}").text
    assert f"Held-out image #{held[0]}" in page and "never trained on or exported" in page
    assert client.get(f"/api/dataset/images/{held[0]}").json()["image"]["held_out"] is True
