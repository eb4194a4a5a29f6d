"""Faults: kill -9 the server in the middle of a flag burst; every acknowledged flag survives.

A client posts flags one id at a time through the JSON API (as the page's script does) and
records each 200. The server process is killed with SIGKILL while the burst runs, started
again on the same workspace, and asked for its flagged list: every acknowledged flag is there.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import Server

pytestmark = pytest.mark.slow  # starts and kills servers


def _session(url: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=10)
    html = client.get("/dataset").text
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, "no CSRF token on /dataset"
    return client, m.group(1)


def test_kill_9_mid_flag_burst_loses_no_acknowledged_flag(demo_workspace: Path,
                                                           tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(demo_workspace, ws)
    conn = sqlite3.connect(ws / "catalog.sqlite")
    ids = [i for (i,) in conn.execute("SELECT id FROM images WHERE status = 'ok' ORDER BY id")]
    conn.close()
    server = Server(ws)
    client, token = _session(server.url)
    acked: list[int] = []
    failures: list[str] = []

    def burst() -> None:
        for image_id in ids:
            try:
                r = client.post("/api/dataset/flag", json={"ids": [image_id], "reason": "noisy"},
                                headers={"X-CSRF-Token": token})
            except httpx.HTTPError as exc:  # the kill: the request in flight is not acknowledged
                failures.append(type(exc).__name__)
                return
            if r.status_code == 200:
                acked.append(image_id)
            else:
                failures.append(f"{r.status_code} {r.text[:100]}")
                return

    thread = threading.Thread(target=burst)
    thread.start()
    deadline = time.monotonic() + 30
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.proc.kill()  # SIGKILL: no shutdown handler runs
    server.proc.wait(timeout=10)
    thread.join(timeout=30)
    assert len(acked) >= 40, (len(acked), failures)
    assert len(acked) < len(ids), "the burst ended before the kill: nothing was tested"

    again = Server(ws)
    try:
        client2, _ = _session(again.url)
        flagged = set()
        page = 1
        while True:
            data = client2.get("/api/dataset", params={"view": "flagged", "page": page}).json()
            flagged |= {item["id"] for item in data["images"]}
            if page >= data["pages"]:
                break
            page += 1
    finally:
        again.stop()
    missing = set(acked) - flagged
    assert not missing, f"{len(missing)} acknowledged flags lost after kill -9"
    conn = sqlite3.connect(ws / "catalog.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
