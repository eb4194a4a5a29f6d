"""A stopped server leaves no process behind: not its analysis child (spawned to compute a
run's analyses, app/child.py), not multiprocessing's resource tracker, not a `--workers`
process. Before, four of six servers stopped with `kill PID` left the ~200 MB child running,
re-parented to init: uvicorn re-raises SIGTERM after the app's shutdown, and the process died
before the pool had told its idle worker to exit.

Each test starts a real `modescope serve`, has it compute an analysis (the JSON twin waits
for it), stops it with SIGTERM or SIGKILL while the child computes or after it is done, and
checks that every process the server had started is gone within a few seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from modescope.cli.data import STOP_GRACE_S
from modescope.core.workspace import Workspace
from tests.app.conftest import Server

GONE_S = 5.0  # how long the processes a stopped server started may take to go
STOP_S = 30.0  # SIGTERM: requests in flight get `serve`'s grace period, then the shutdown


def _spawned(proc: psutil.Process) -> list[psutil.Process]:
    """``proc``'s children started by multiprocessing's spawn (not its resource tracker)."""
    out = []
    for child in proc.children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


def _analysis_children(server: psutil.Process, workers: int) -> list[psutil.Process]:
    if workers == 1:
        return _spawned(server)
    return [c for w in _spawned(server) for c in _spawned(w)]


def _kill_all(server: Server, proc: psutil.Process, started: list[psutil.Process]) -> None:
    """Whatever a test's outcome, nothing it started is left running."""
    for p in [*started, *(proc.children(recursive=True) if proc.is_running() else [])]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()


def _compute_and_stop(ws: Path, sig: signal.Signals, during: bool, workers: int = 1) -> None:
    cache = Workspace(ws).run("imported").inspection_path("modes")
    assert not cache.exists()
    server = Server(ws, workers=workers, start_s=60)
    proc = psutil.Process(server.proc.pid)
    answers: list[int | str] = []

    def ask() -> None:  # the JSON twin waits for the computation
        try:
            answers.append(httpx.get(server.url + "/api/runs/imported/modes",
                                     timeout=300).status_code)
        except httpx.HTTPError as exc:  # the server stopped under it
            answers.append(type(exc).__name__)

    asking = threading.Thread(target=ask)
    asking.start()
    started: list[psutil.Process] = []
    try:
        if during:
            deadline = time.monotonic() + 60
            while not _analysis_children(proc, workers):
                assert time.monotonic() < deadline, "no analysis child started"
                time.sleep(0.02)
        else:
            asking.join(timeout=300)
            assert answers == [200] and cache.is_file()
            time.sleep(1.0)  # the child idles
        children = _analysis_children(proc, workers)
        assert len(children) == 1, children
        started = proc.children(recursive=True)
        assert children[0] in started
        proc.send_signal(sig)
        server.proc.wait(timeout=STOP_S)
        # a worker whose supervisor was killed stops itself like a SIGTERM'd server: requests
        # in flight (ours) get the grace period first
        grace = STOP_GRACE_S if workers > 1 and sig == signal.SIGKILL else 0
        _, alive = psutil.wait_procs(started, timeout=GONE_S + grace)
        assert not alive, [" ".join(p.cmdline())[:120] for p in alive]
        # (stopped mid-computation, the analysis may still finish inside the grace period that
        # requests in flight get, and write its cache: timing decides, so it is not asserted)
    finally:  # whatever the outcome, nothing of this test's is left running
        _kill_all(server, proc, started)
        asking.join(timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
@pytest.mark.parametrize("during", [True, False], ids=["computing", "idle"])
def test_a_stopped_server_leaves_no_process_behind(runs_ws: Path, sig: signal.Signals,
                                                   during: bool) -> None:
    _compute_and_stop(runs_ws, sig, during)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_a_stopped_multi_process_server_leaves_no_process_behind(runs_ws: Path,
                                                                 sig: signal.Signals) -> None:
    """`serve --workers 2`: uvicorn's supervisor stops its workers with SIGTERM; killed
    outright, it left them (and their analysis children) running: each now stops itself when
    its parent goes."""
    _compute_and_stop(runs_ws, sig, during=True, workers=2)


def test_dataset_analyses_compute_in_a_child_that_stops_with_the_server(runs_ws: Path) -> None:
    """The outliers behind /dataset?view=outliers are computed in a child process (in a thread
    of the server they held the GIL and stalled every page), and it goes with the server."""
    server = Server(runs_ws, start_s=60)
    proc = psutil.Process(server.proc.pid)
    started: list[psutil.Process] = []
    try:
        r = httpx.get(server.url + "/api/dataset", params={"view": "outliers"}, timeout=300)
        assert r.status_code == 200 and r.json()["images"], r.text[:300]
        children = _spawned(proc)
        assert len(children) == 1, children  # the curation child (no run analysis asked)
        started = proc.children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=STOP_S)
        _, alive = psutil.wait_procs(started, timeout=GONE_S)
        assert not alive, [" ".join(p.cmdline())[:120] for p in alive]
    finally:
        _kill_all(server, proc, started)


def test_the_analysis_child_outlives_the_thread_that_asked_for_it() -> None:
    """PR_SET_PDEATHSIG fires when the *thread* that spawned the child ends: the child must
    not be spawned by a request's thread (anyio retires idle ones), or it dies under the
    server. It is spawned by the analyses' own thread, which lives until close()."""
    from modescope.app.child import Child

    child = Child("test")
    try:
        pids: list[int] = []
        asker = threading.Thread(target=lambda: pids.append(child.call(os.getpid)))
        asker.start()
        asker.join(timeout=120)
        assert len(pids) == 1 and child.pid == pids[0]
        time.sleep(0.5)  # a parent-death signal would have come by now
        assert psutil.pid_exists(pids[0]) and child.call(os.getpid) == pids[0]
    finally:
        child.close()
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == "zombie"


def test_a_child_killed_during_a_call_is_an_error_and_the_next_call_starts_another() -> None:
    from modescope.app.child import Child, ChildStopped

    child = Child("test")
    try:
        first = child.call(os.getpid)
        failed: list[BaseException] = []

        def sleep() -> None:
            try:
                child.call(time.sleep, 60)
            except ChildStopped as exc:
                failed.append(exc)

        sleeper = threading.Thread(target=sleep)
        sleeper.start()
        time.sleep(0.5)
        psutil.Process(first).kill()
        sleeper.join(timeout=10)
        assert len(failed) == 1 and "stopped unexpectedly" in str(failed[0])
        assert child.call(os.getpid) != first
        with pytest.raises(ZeroDivisionError) as raised:  # the child's exceptions come back
            child.call(divmod, 1, 0)
        assert "raised in the test process" in raised.value.__notes__[0]
    finally:
        child.close()



def test_a_process_watching_its_parent_exits_when_the_parent_is_killed(tmp_path: Path) -> None:
    """The portable half (no PR_SET_PDEATHSIG): the watcher sees os.getppid() change."""
    pid_file = tmp_path / "grandchild.pid"
    grandchild = ("import os, sys, time; from modescope.app.child import die_with_parent; "
                  "die_with_parent(os.getppid()); "
                  f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys, time; "
                               f"subprocess.Popen([sys.executable, '-c', {grandchild!r}]); "
                               "time.sleep(120)"])
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the grandchild did not start"
            time.sleep(0.05)
        orphan = psutil.Process(int(pid_file.read_text()))
    finally:
        parent.kill()
        parent.wait()
    _, alive = psutil.wait_procs([orphan], timeout=GONE_S)
    assert not alive
