"""Several server processes on one workspace (``modescope serve --workers N``): one session
secret for all, one job runner, one login throttle; and the per-process caches that made one
process fast enough (reused catalog connections, the flags version) never serve stale data."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from modescope.app.analyses import current_versions
from modescope.app.jobs import OWNER_RETRY_S, JobRunner
from modescope.app.main import create_app
from modescope.app.security import LoginThrottle, TooManyAttempts
from modescope.app.settings import Settings
from modescope.core.catalog import Catalog
from modescope.core.workspace import Workspace
from tests.app.conftest import Server


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def ok_ids(ws: Path, n: int) -> list[int]:
    with Catalog.reading(ws / "catalog.sqlite") as catalog:
        return [r.id for r in catalog.images("ok", limit=n)]


def test_a_session_made_by_one_process_is_good_in_another(runs_ws: Path) -> None:
    """What `--workers N` relies on: apps built with the same session secret accept each
    other's cookies and CSRF tokens; apps without one (the old per-process key) do not."""
    secret = SecretStr("s" * 64)
    first = create_app(Settings(workspace=runs_ws, session_secret=secret))
    second = create_app(Settings(workspace=runs_ws, session_secret=secret))
    stranger = create_app(Settings(workspace=runs_ws))
    image = ok_ids(runs_ws, 1)[0]
    with TestClient(first) as a, TestClient(second) as b, TestClient(stranger) as c:
        token = csrf_of(a.get("/dataset").text)
        for client in (b, c):
            client.cookies.update(a.cookies)
        res = b.post("/api/dataset/flag", json={"ids": [image], "reason": "noisy"},
                     headers={"X-CSRF-Token": token})
        assert res.status_code == 200, res.text
        assert res.json()["changed"] == [image]
        res = c.post("/api/dataset/unflag", json={"ids": [image]},
                     headers={"X-CSRF-Token": token})
        assert res.status_code == 403  # a cookie signed with another key is no session


def test_only_one_process_runs_jobs_and_another_takes_over(runs_ws: Path) -> None:
    ws = Workspace(runs_ws)
    first, second = JobRunner(ws), JobRunner(ws)
    first.start()
    second.start()
    try:
        assert first.owner and not second.owner
        # a job added through the process that does not run jobs is run by the one that does
        job = second.submit("pipeline", "owner-test", {},
                            [sys.executable, "-c", "print('ran')"])
        deadline = time.monotonic() + 30
        while second.db.get(job.id).status in ("queued", "running"):
            assert time.monotonic() < deadline, second.db.get(job.id)
            time.sleep(0.1)
        done = second.db.get(job.id)
        assert done.status == "finished" and done.exit_code == 0
        assert "ran" in (runs_ws / done.log).read_text()
        first.stop()  # the owner goes away: the other takes the lock within a retry period
        deadline = time.monotonic() + OWNER_RETRY_S * 3 + 5
        while not second.owner:
            assert time.monotonic() < deadline, "the second runner never took over"
            time.sleep(0.1)
        job = second.submit("pipeline", "owner-test-2", {}, [sys.executable, "-c", "pass"])
        deadline = time.monotonic() + 30
        while second.db.get(job.id).status in ("queued", "running"):
            assert time.monotonic() < deadline, second.db.get(job.id)
            time.sleep(0.1)
        assert second.db.get(job.id).status == "finished"
    finally:
        first.stop()
        second.stop()


def test_login_failures_are_counted_across_processes_and_restarts(tmp_path: Path) -> None:
    db = tmp_path / "app.sqlite"
    one, other = LoginThrottle(limit=3, path=db), LoginThrottle(limit=3, path=db)
    for throttle in (one, other, one):
        throttle.check("10.0.0.7")
        throttle.failed("10.0.0.7")
    with pytest.raises(TooManyAttempts, match="3 wrong tokens from 10.0.0.7"):
        other.check("10.0.0.7")
    LoginThrottle(limit=3, path=db).check("10.0.0.8")  # per client: another address may try
    with pytest.raises(TooManyAttempts):  # a restarted server still counts them
        LoginThrottle(limit=3, path=db).check("10.0.0.7")
    LoginThrottle(limit=3, window_s=0.0, path=db).check("10.0.0.7")  # the window has passed


def test_flags_version_follows_every_commit(runs_ws: Path) -> None:
    ws = Workspace(runs_ws)
    before = current_versions(ws, "imported")["flags"]
    assert current_versions(ws, "imported")["flags"] == before  # cached, same answer
    image = ok_ids(runs_ws, 1)[0]
    writer = Catalog.open(ws.catalog_path)  # another connection, as the CLI or another server
    try:
        writer.flag([image], "noisy")
        flagged = current_versions(ws, "imported")["flags"]
        assert flagged != before
        writer.unflag([image])
        assert current_versions(ws, "imported")["flags"] == before
        writer.flag([image], "other")
    finally:
        writer.close()
    assert current_versions(ws, "imported")["flags"] == flagged  # the same set, the same hash


def test_reused_read_connections_see_commits_and_replaced_files(runs_ws: Path) -> None:
    path = runs_ws / "catalog.sqlite"
    image = ok_ids(runs_ws, 1)[0]
    with Catalog.reused(path) as catalog:
        assert image not in catalog.flagged_ids()
        first_conn = catalog.conn
    writer = Catalog.open(path)
    try:
        writer.flag([image], "noisy")
    finally:
        writer.close()
    with Catalog.reused(path) as catalog:
        assert catalog.conn is first_conn  # the same connection, reused
        assert image in catalog.flagged_ids()  # and it sees the commit at once
    with pytest.raises(RuntimeError), Catalog.reused(path) as catalog:
        raise RuntimeError("a read that fails")
    with Catalog.reused(path) as catalog:
        assert catalog.conn is not first_conn  # the failed read's connection was dropped
        second_conn = catalog.conn
    shutil.copy(path, runs_ws / "other.sqlite")
    os.replace(runs_ws / "other.sqlite", path)  # a new file (inode) under the same name
    with Catalog.reused(path) as catalog:
        assert catalog.conn is not second_conn
        assert image in catalog.flagged_ids()


def test_serve_with_two_processes_end_to_end(runs_ws: Path) -> None:
    """`modescope serve --workers 2`: many fresh connections (the kernel hands each to either
    process) all accept one session; one process holds the job-runner lock; SIGTERM stops all."""
    server = Server(runs_ws, workers=2, start_s=60)
    url = server.url
    try:
        children = set(map(int, subprocess.run(
            ["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()))
        with httpx.Client(base_url=url) as first:
            token = csrf_of(first.get("/dataset").text)
            cookies = dict(first.cookies)
        ids = ok_ids(runs_ws, 24)
        for image in ids:  # a new connection each time
            with httpx.Client(base_url=url, cookies=cookies) as client:
                res = client.post("/api/dataset/flag", json={"ids": [image], "reason": "noisy"},
                                  headers={"X-CSRF-Token": token})
                assert res.status_code == 200, res.text
        with Catalog.reading(runs_ws / "catalog.sqlite") as catalog:
            assert set(ids) <= catalog.flagged_ids()
        holder = int((runs_ws / "locks" / "job-runner.lock").read_text())
        assert holder in children, (holder, children)  # one worker process runs the jobs
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=30)
    assert server.proc.returncode == 0


def test_an_analysis_computed_in_a_child_survives_the_child_dying(runs_ws: Path) -> None:
    """Analyses run in a child process (a computation in a server thread held the GIL for
    ~0.5 s and stalled every page). A child killed during a computation is a clear error, and
    the next try works; one found dead while idle is replaced without an error."""
    import multiprocessing

    from modescope.app.analyses import Analyses, AnalysisUnavailable, cache_path

    ws = Workspace(runs_ws)
    analyses = Analyses(ws)
    before = {p.pid for p in multiprocessing.active_children()}

    def child() -> multiprocessing.process.BaseProcess:
        children = [p for p in multiprocessing.active_children() if p.pid not in before]
        assert len(children) == 1  # computed there, not in this process
        return children[0]

    try:
        modes = analyses.submit("imported", "modes").result(timeout=120)
        assert modes.result["k"] > 0 and cache_path(ws, "imported", "modes").is_file()
        first = child()
        assert first.pid is not None
        os.kill(first.pid, signal.SIGSTOP)  # it cannot answer: the request below is pending
        pending = analyses.submit("imported", "memorisation")
        with pytest.raises(TimeoutError):
            pending.result(timeout=1)
        os.kill(first.pid, signal.SIGKILL)  # killed during the computation
        with pytest.raises(AnalysisUnavailable, match="stopped unexpectedly"):
            pending.result(timeout=60)
        again = analyses.submit("imported", "memorisation").result(timeout=120)
        assert again.result["n_samples"] == 120
        assert cache_path(ws, "imported", "memorisation").is_file()
        second = child()
        assert second.pid not in (None, first.pid)
        os.kill(second.pid, signal.SIGKILL)  # type: ignore[arg-type]  (killed while idle)
        second.join(timeout=10)
        cache_path(ws, "imported", "modes").unlink()
        assert analyses.submit("imported", "modes").result(timeout=120).result == modes.result
        assert child().pid not in (first.pid, second.pid)
    finally:
        analyses.close()
    assert not [p for p in multiprocessing.active_children() if p.pid not in before]
