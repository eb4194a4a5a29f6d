"""A real ``modescope serve`` process on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import modescope_cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``modescope serve`` (this environment's, unless ``command`` names another) on a free
    port, answering /health before the constructor returns. Its output goes to a file, not a
    pipe: a pipe nobody reads fills up, and one inherited by a process the server leaves behind
    never ends."""

    def __init__(self, workspace: Path, workers: int = 1, start_s: float = 30,
                 command: list[str] | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile("w+")
        weakref.finalize(self, self.log.close)
        self.proc = subprocess.Popen(
            [*(command or modescope_cmd()), "serve", "-w", str(workspace), "--port",
             str(self.port), "--workers", str(workers)],
            stdout=self.log, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd,
        )
        deadline = time.monotonic() + start_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError(f"server did not answer /health within {start_s:g} s: {self.output()}")

    def output(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> int:
        """SIGTERM, wait, and return the exit code: uvicorn shuts the app down, then re-raises
        the signal (-SIGTERM; 0 from ``--workers N``'s supervisor). Processes the server started
        and left running are killed, with a warning that names them."""
        try:
            started = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            started = []
        self.proc.terminate()
        code = self.proc.wait(timeout=30)
        _, alive = psutil.wait_procs(started, timeout=5)
        if alive:
            warnings.warn(f"modescope serve exited leaving {len(alive)} processes running: "
                          + "; ".join(" ".join(p.cmdline())[:120] for p in alive), stacklevel=2)
            for p in alive:
                p.kill()
        return code


@pytest.fixture(scope="module")
def server(demo_workspace: Path) -> Iterator[Server]:
    srv = Server(demo_workspace)
    yield srv
    srv.stop()
