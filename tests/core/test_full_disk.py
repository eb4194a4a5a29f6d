"""A full disk during ingest: a clear error, a consistent catalog, and a rerun that finishes.

The workspace lives on a 1.5 MB tmpfs (root can mount one; elsewhere the test is skipped and
says why). 300 demo files need about 3 MB of normalised PNGs, so the disk fills mid-ingest.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_mid_ingest_is_one_clear_error_and_the_rerun_finishes(
        demo_small: Path, demo_workspace: Path, small_disk: Path) -> None:
    ws = small_disk / "ws"
    res = run_cli("ingest", demo_small, "-w", ws)
    assert res.code == 4, (res.code, res.err[-2000:])
    assert "disk is full" in res.err and "free space" in res.err
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) <= 3

    conn = sqlite3.connect(ws / "catalog.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    ok_files = [f for (f,) in conn.execute("SELECT file FROM images WHERE status = 'ok'")]
    conn.close()
    assert 0 < len(ok_files) < 290  # some were committed, the disk stopped the rest
    assert all((ws / f).is_file() for f in ok_files)  # no row points at a missing image
    assert not list(ws.rglob("*.tmp"))  # no half-written temp files left behind

    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    again = run_cli("ingest", demo_small, "-w", ws, "--json")
    assert again.code == 0, again.err
    report = again.json()
    assert report["unchanged"] >= len(ok_files)  # committed work was kept, not redone
    conn = sqlite3.connect(ws / "catalog.sqlite")
    after = dict(conn.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall())
    reference = sqlite3.connect(demo_workspace / "catalog.sqlite")
    expected = dict(reference.execute(
        "SELECT status, count(*) FROM images GROUP BY status").fetchall())
    assert after == expected  # the same result as one ingest on a roomy disk
