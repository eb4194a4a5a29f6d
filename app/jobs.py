"""Jobs: training and pipeline runs as worker processes; the ``jobs`` table is the truth.

- ``<workspace>/app.sqlite`` (WAL) holds the table; one connection behind one lock writes it.
- Workers are started with an argument list (never a shell) in a new session, output to
  ``runs/<RUN>/job-<id>.log``; so a cancel reaches the whole process group and nothing runs
  inside the server process (no TensorFlow import in the web process).
- A background thread (``JobRunner``, started in the lifespan) launches queued jobs -- one
  training job and one pipeline job at a time, the rest wait -- and polls them. Only the
  server process holding ``locks/job-runner.lock`` does so (``modescope serve --workers N``
  starts N processes; the others only add and cancel jobs in the table, and take over the
  lock if its holder dies).
- Cancel = SIGTERM to the process group (the trainer checkpoints and exits), SIGKILL after
  ``KILL_AFTER_S``. On start, a job marked running whose process is gone is ``interrupted``; a
  training job can be resumed (``modescope train --resume RUN``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modescope.core.errors import Conflict, InputError, NotFound, WorkspaceError
from modescope.core.files import tail
from modescope.core.process import pid_alive
from modescope.core.workspace import Workspace

log = logging.getLogger(__name__)

KILL_AFTER_S = 30.0
POLL_S = 0.5
OWNER_RETRY_S = 2.0  # how often a process without the runner lock tries to take it over
KINDS = ("train", "pipeline", "retrain")
# what a job occupies while it runs: one training and one pipeline at a time; a retrain (train,
# then the pipeline's steps) takes both
LANES = {"train": {"train"}, "pipeline": {"pipeline"}, "retrain": {"train", "pipeline"}}
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('train', 'pipeline', 'retrain')),
    run         TEXT NOT NULL,
    params      TEXT NOT NULL,
    argv        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'failed',
                                                'cancelled', 'interrupted')),
    pid         INTEGER,
    exit_code   INTEGER,
    cancel_at   REAL,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    log         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, id);
"""


class JobConflict(Conflict):
    """A run already has a job, or its state does not allow the one asked for."""

    title = "Job refused"


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    run: str
    params: dict[str, Any]
    argv: list[str]
    status: str
    pid: int | None
    exit_code: int | None
    cancel_at: float | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    log: str

    @property
    def resumable(self) -> bool:
        return self.kind in ("train", "retrain") and self.status in ("interrupted", "cancelled",
                                                                     "failed")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class JobStore:
    """The jobs table; every write goes through one connection under one lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=10000")
        with self.conn:
            self.conn.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """A table made before the retrain kind: SQLite cannot change a CHECK, so the table
        is copied into the new one, in one transaction."""
        row = self.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs'").fetchone()
        if row is None or "'retrain'" in row["sql"]:
            return
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            row = self.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs'"
                                    ).fetchone()
            if "'retrain'" in row["sql"]:  # another server process migrated it meanwhile
                return
            self.conn.execute("DROP INDEX IF EXISTS jobs_status")
            self.conn.execute("ALTER TABLE jobs RENAME TO jobs_before_retrain")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute("INSERT INTO jobs SELECT * FROM jobs_before_retrain")
            self.conn.execute("DROP TABLE jobs_before_retrain")

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    @staticmethod
    def _job(r: sqlite3.Row) -> Job:
        return Job(r["id"], r["kind"], r["run"], json.loads(r["params"]), json.loads(r["argv"]),
                   r["status"], r["pid"], r["exit_code"], r["cancel_at"], r["created_at"],
                   r["started_at"], r["finished_at"], r["log"])

    def add(self, kind: str, run: str, params: dict[str, Any], argv: list[str],
            log_path: str) -> Job:
        with self._lock, self.conn:
            active = self.conn.execute(
                "SELECT id, kind FROM jobs WHERE run = ? AND status IN ('queued', 'running')",
                (run,)).fetchone()
            if active is not None:
                raise JobConflict(f"run {run} already has {active['kind']} job "
                                  f"#{active['id']} queued or running; wait or cancel it")
            cur = self.conn.execute(
                "INSERT INTO jobs (kind, run, params, argv, status, created_at, log) "
                "VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                (kind, run, json.dumps(params), json.dumps(argv), now(), log_path))
            job_id = int(cur.lastrowid or 0)
        return self.get(job_id)

    def get(self, job_id: int) -> Job:
        with self._lock:
            r = self.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if r is None:
            raise NotFound(f"no job #{job_id}")
        return self._job(r)

    def list(self, statuses: tuple[str, ...] | None = None, limit: int = 200) -> list[Job]:
        with self._lock:
            if statuses:
                marks = ",".join("?" * len(statuses))
                rows = self.conn.execute(
                    f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY id", statuses)
            else:
                rows = self.conn.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))
            return [self._job(r) for r in rows]

    def claim(self, job_id: int) -> bool:
        """Move a queued job to running; False if another server took it first."""
        with self._lock, self.conn:
            cur = self.conn.execute("UPDATE jobs SET status = 'running', started_at = ? "
                                    "WHERE id = ? AND status = 'queued'", (now(), job_id))
        return cur.rowcount == 1

    def update(self, job_id: int, **values: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._lock, self.conn:
            self.conn.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*values.values(), job_id))


class JobRunner:
    """Launches queued jobs and watches running ones from one background thread."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.store: JobStore | None = None
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner = ExitStack()  # holds locks/job-runner.lock while this process runs jobs
        self.owner = False  # whether this process launches and watches the jobs

    @property
    def db(self) -> JobStore:
        if self.store is None:
            self.store = JobStore(self.ws.app_db_path)
        return self.store

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if not self.ws.root.is_dir():
            return  # no workspace yet: the pages say so; nothing to run
        if self._take_ownership():
            self.recover()  # before the first page: a dead job never shows as running
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
        self._thread.start()

    def _take_ownership(self) -> bool:
        try:
            self._owner.enter_context(self.ws.lock("job-runner"))
        except (WorkspaceError, OSError):
            return False  # another server process runs the jobs
        self.owner = True
        return True

    def stop(self) -> None:
        """Stop watching; workers keep running and are adopted by the next server."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.store is not None:
            self.store.close()
            self.store = None
        self._owner.close()
        self.owner = False

    def recover(self) -> None:
        """Jobs marked running whose process is gone were interrupted (server or machine died)."""
        for job in self.db.list(("running",)):
            if not pid_alive(job.pid, job.run):
                self.db.update(job.id, status="interrupted", finished_at=now())
                log.info("job %s (%s %s) was interrupted", job.id, job.kind, job.run)

    def _loop(self) -> None:
        while not self.owner:  # another process runs the jobs until it exits
            if self._stop.wait(OWNER_RETRY_S):
                return
            if self._take_ownership():
                self.recover()
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the watcher must outlive one bad poll
                log.exception("job watcher")
            self._wake.wait(POLL_S)
            self._wake.clear()

    def tick(self) -> None:
        running = self.db.list(("running",))
        for job in running:
            self._poll(job)
        busy = set().union(*(LANES[j.kind] for j in self.db.list(("running",))))
        for job in self.db.list(("queued",)):
            if not LANES[job.kind] & busy:
                self._launch(job)
                busy |= LANES[job.kind]

    def _launch(self, job: Job) -> None:
        if not self.db.claim(job.id):
            return
        log_path = self.ws.resolve(job.log)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            out.write(f"[job {job.id}] {' '.join(job.argv)}\n".encode())
            out.flush()
            try:
                proc = subprocess.Popen(job.argv, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        cwd=self.ws.root, env={**os.environ,
                                                               "PYTHONUNBUFFERED": "1"})
            except OSError as exc:
                out.write(f"[job {job.id}] could not start: {exc}\n".encode())
                self.db.update(job.id, status="failed", finished_at=now())
                return
        self._procs[job.id] = proc
        self.db.update(job.id, pid=proc.pid)

    def _poll(self, job: Job) -> None:
        proc = self._procs.get(job.id)
        if proc is not None:
            code = proc.poll()
            alive = code is None
        else:  # adopted from an earlier server: no exit code, only whether it lives
            code, alive = None, pid_alive(job.pid, job.run)
        if alive:
            if job.cancel_at is not None and time.time() - job.cancel_at > KILL_AFTER_S:
                self._signal(job, signal.SIGKILL)
            return
        self._procs.pop(job.id, None)
        if job.cancel_at is not None:
            status = "cancelled"
        elif code is not None:
            status = "finished" if code == 0 else "failed"
        else:
            status = self._status_from_run(job)
        self.db.update(job.id, status=status, exit_code=code, finished_at=now())

    def _status_from_run(self, job: Job) -> str:
        if job.kind == "train":  # a retrain's status is its last step's, not its training's
            progress = self.ws.run(job.run).progress() or {}
            if progress.get("status") in ("finished", "cancelled", "failed"):
                return str(progress["status"])
        return "interrupted"

    def _signal(self, job: Job, sig: signal.Signals) -> None:
        if not job.pid or not pid_alive(job.pid, job.run):
            return
        try:
            os.killpg(job.pid, sig)
        except ProcessLookupError:
            pass

    # -- requests from the pages ---------------------------------------------------------

    def submit(self, kind: str, run: str, params: dict[str, Any], argv: list[str]) -> Job:
        folder = self.ws.run(run)
        job = self.db.add(kind, run, params, argv, "")
        self.db.update(job.id, log=self.ws.relative(folder.job_log_path(job.id)))
        self._wake.set()
        return self.db.get(job.id)

    def cancel(self, job_id: int) -> Job:
        job = self.db.get(job_id)
        if job.status == "queued":
            self.db.update(job.id, status="cancelled", finished_at=now())
        elif job.status == "running":
            if job.cancel_at is None:
                self.db.update(job.id, cancel_at=time.time())
            self._signal(job, signal.SIGTERM)
            self._wake.set()
        else:
            raise InputError(f"job #{job_id} is {job.status}; only queued or running jobs "
                             "can be cancelled")
        return self.db.get(job_id)

    def jobs(self) -> list[Job]:
        return self.db.list()

    def log_tail(self, job: Job, lines: int = 20) -> str:
        return tail(self.ws.resolve(job.log), lines)
