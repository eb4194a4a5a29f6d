"""One worker child process that never outlives the server that started it.

The server computes analyses in a spawned child (app/analyses.py). ``ProcessPoolExecutor`` did
that before and left its child behind whenever the server stopped: uvicorn answers SIGTERM by
shutting the app down and then re-raising the signal, so the process dies before the pool's
manager thread has told its idle worker to exit; that worker holds both ends of its own call
queue, so it waited on it forever, re-parented to init (with multiprocessing's resource
tracker beside it). SIGKILL of the server left it too.

``Child`` owns the process and closes the gap from both sides:

- the server side: ``close()`` (the app's lifespan shutdown) terminates the child and joins
  it, killing it if it does not exit in time;
- the child side, for when the server dies without a shutdown (SIGKILL, a crash): on Linux the
  kernel sends it SIGKILL when its parent goes (``PR_SET_PDEATHSIG``), and on every platform a
  thread in the child waits on the pipe multiprocessing keeps open from the parent (its
  ``parent_process().sentinel``) and checks ``os.getppid()``, and exits when either says the
  parent is gone; an idle child also sees end-of-file on its request pipe.

``PR_SET_PDEATHSIG`` fires when the *thread* that spawned the child ends, not the process, so
the child is always spawned by ``Child``'s own thread, which lives until ``close()``: a request
thread (anyio's idle threads exit after a few seconds) would have the child killed under it.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from modescope.core.errors import ModescopeError

T = TypeVar("T")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_S = 1.0  # how often the child's watcher checks os.getppid()
STOP_S = 5.0  # how long close() waits for a terminated child before killing it


class ChildStopped(ModescopeError):
    """The child process died (killed, out of memory) or was closed before it answered."""

    status = 503
    title = "A worker process stopped"


def die_with_parent(parent_pid: int, on_exit: Callable[[], None] | None = None) -> None:
    """In a child process: stop when the process ``parent_pid`` is gone. ``on_exit`` (default:
    ``os._exit(1)``, at once, whatever the main thread is doing) runs in a daemon thread."""
    if os.getppid() != parent_pid:  # the parent went before we got here
        (on_exit or _exit_now)()
        return
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None
    threading.Thread(target=_watch, args=(parent_pid, sentinel, on_exit or _exit_now),
                     name="parent-watch", daemon=True).start()


def _exit_now() -> None:
    os._exit(1)


def _watch(parent_pid: int, sentinel: int | None, on_exit: Callable[[], None]) -> None:
    while True:
        if sentinel is not None:
            if wait([sentinel], timeout=WATCH_S):  # end of file: the parent's end is closed
                break
        else:
            time.sleep(WATCH_S)
        if os.getppid() != parent_pid:  # re-parented: the parent is gone
            break
    on_exit()


def _child_main(conn: Connection, parent_pid: int) -> None:
    """The child: answer ``(fn, args)`` requests one at a time until the pipe ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server; it stops us
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    die_with_parent(parent_pid)  # after prctl: a parent gone in between is seen here
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):  # the server closed its end, or is gone
            return
        try:
            reply: tuple[bool, Any, str] = (True, fn(*args), "")
        except Exception as exc:  # noqa: BLE001  (every failure goes back to the caller)
            reply = (False, exc, traceback.format_exc())
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
        except Exception:  # noqa: BLE001  (an unpicklable result or exception)
            conn.send((False, RuntimeError("the reply could not be pickled"),
                       traceback.format_exc()))


class Child:
    """A spawned worker process, started on first use and kept; ``call`` runs a picklable
    module-level function there and returns its result (or raises its exception)."""

    def __init__(self, name: str) -> None:
        self.name = name
        # the one thread that spawns the child and talks to it (see the module docstring)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise ChildStopped(f"the {self.name} process is closed")
        ok, value, remote = self._thread.submit(self._roundtrip, fn, args).result()
        if ok:
            return value
        value.add_note(f"raised in the {self.name} process:\n{remote}")
        raise value

    def _roundtrip(self, fn: Callable[..., Any], args: tuple[Any, ...]
                   ) -> tuple[bool, Any, str]:
        conn = self._conn
        if conn is None or self._proc is None or not self._proc.is_alive():
            conn = self._start()  # first use, or the child was found dead while idle
        try:
            conn.send((fn, args))
            reply: tuple[bool, Any, str] = conn.recv()
            return reply
        except (EOFError, OSError):
            self._discard()
            raise ChildStopped(f"the {self.name} process stopped unexpectedly") from None

    def _start(self) -> Connection:
        self._discard()
        with self._lock:
            if self._closed:
                raise ChildStopped(f"the {self.name} process is closed")
            # spawn, not fork: the server has threads (fork would copy held locks)
            ctx = multiprocessing.get_context("spawn")
            ours, theirs = ctx.Pipe(duplex=True)
            # daemon: an interpreter exiting without close() terminates it rather than
            # waiting for it (the analyses start no processes of their own)
            proc = ctx.Process(target=_child_main, args=(theirs, os.getpid()),
                               name=self.name, daemon=True)
            proc.start()
            theirs.close()  # only the child holds its end: its death is end-of-file here
            self._proc, self._conn = proc, ours
        return ours

    def _discard(self) -> None:
        with self._lock:
            proc, conn = self._proc, self._conn
            self._proc = self._conn = None
        _stop(proc, conn)

    def close(self) -> None:
        """Terminate the child and wait for it (killed after STOP_S); later calls fail."""
        with self._lock:
            self._closed = True
        self._discard()  # a call blocked on the pipe sees end-of-file and fails
        self._thread.shutdown(wait=False, cancel_futures=True)


def _stop(proc: BaseProcess | None, conn: Connection | None) -> None:
    if proc is not None:
        if proc.is_alive():
            proc.terminate()
            proc.join(STOP_S)
            if proc.is_alive():
                proc.kill()
                proc.join(STOP_S)
        else:
            proc.join(0)
    if conn is not None:
        conn.close()
