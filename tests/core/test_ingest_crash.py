"""kill -9 in the middle of an ingest, rerun: complete, no doubled rows, no half-written PNG."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import modescope_cmd, run_cli

pytestmark = pytest.mark.slow  # kills and reruns an ingest of the demo set


def committed(ws: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{ws / 'catalog.sqlite'}?mode=ro", uri=True, timeout=5)
        return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_then_rerun_is_clean(demo_small: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    proc = subprocess.Popen(
        [*modescope_cmd(), "ingest", str(demo_small), "-w", str(ws), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while committed(ws) < 64 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "ingest finished before it could be killed; use more files"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = committed(ws)
    assert 0 < partial < 300

    res = run_cli("ingest", demo_small, "-w", ws, "--json")
    assert res.code == 0, res.err
    report = res.json()
    assert report["unchanged"] == partial

    conn = sqlite3.connect(ws / "catalog.sqlite")
    paths = [r[0] for r in conn.execute("SELECT path FROM images")]
    assert len(paths) == len(set(paths)) == 300  # every file once
    files = [r[0] for r in conn.execute("SELECT file FROM images WHERE status = 'ok'")]
    on_disk = sorted((ws / "images" / "train").rglob("*"))
    assert not [p for p in on_disk if p.name.endswith(".tmp")]
    pngs = [p for p in on_disk if p.is_file()]
    assert sorted(ws / f for f in files) == pngs
    for png in pngs:
        with Image.open(png) as img:
            img.load()  # raises on a half-written file
            assert img.size == (64, 64)

    clean = tmp_path / "clean"
    assert run_cli("ingest", demo_small, "-w", clean).code == 0
    other = sqlite3.connect(clean / "catalog.sqlite")
    query = "SELECT path, status, sha256 FROM images ORDER BY path"
    assert conn.execute(query).fetchall() == other.execute(query).fetchall()
