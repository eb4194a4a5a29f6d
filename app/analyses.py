"""A run's analyses (NDB modes, memorisation), cached as JSON beside the run.

``runs/<RUN>/inspection/{modes,memorisation}.json`` = ``{"versions": ..., "computed_at": ...,
"result": <indexer.inspect output>}``. ``versions`` names what the result came from: a hash of
the training index's and the run's index's meta.json, of the flagged ids (the curated set) and
of the indexer's code.
When any of them changes the cache is stale and the next page that needs it recomputes it, in a
child process (one at a time; two requests for the same analysis share one computation), never
on the event loop or under the server's GIL. The pipeline job writes the same files through
``store_analysis``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modescope.app.errors import AppError
from modescope.app.store import flags_version
from modescope.core.errors import ModescopeError
from modescope.core.files import atomic_write_bytes
from modescope.core.workspace import Workspace
from modescope.indexer.store import IndexStore

KINDS = ("modes", "memorisation")


class AnalysisUnavailable(AppError):
    status = 409
    title = "Analysis not possible yet"


@dataclass(frozen=True)
class Analysis:
    kind: str
    result: dict[str, Any]
    versions: dict[str, str]
    computed_at: str


_meta_cache: dict[Path, tuple[tuple[int, int, int], str]] = {}


def _meta_hash(ws: Workspace, source: str) -> str | None:
    """A hash of an index's meta.json, re-read only when the file changes (it is replaced
    atomically, so a new version is a new inode)."""
    path = IndexStore(ws, source).meta_path
    try:
        st = path.stat()
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        hit = _meta_cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        return None
    _meta_cache[path] = (key, digest)
    return digest


@functools.cache
def code_version() -> str:
    """A hash of the analysis code itself: a new modescope recomputes old caches."""
    from modescope import indexer

    digest = hashlib.sha256()
    for path in sorted(Path(indexer.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def current_versions(ws: Workspace, run: str) -> dict[str, str | None]:
    """What an analysis of ``run`` depends on right now (data, curated set, code)."""
    return {"train": _meta_hash(ws, "train"), "generated": _meta_hash(ws, f"generated:{run}"),
            "flags": flags_version(ws), "code": code_version()}


def cache_path(ws: Workspace, run: str, kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown analysis {kind!r}")
    return ws.run(run).inspection_path(kind)


def compute(ws: Workspace, run: str, kind: str) -> dict[str, Any]:
    """Run one analysis with indexer/inspect.py (no TensorFlow: stored vectors only)."""
    from modescope.indexer.inspect import inspect_memorisation, inspect_modes

    try:
        if kind == "modes":
            return inspect_modes(ws, run)
        return inspect_memorisation(ws, run)
    except (ModescopeError, ValueError, OSError) as exc:  # OSError: an image file is gone
        raise AnalysisUnavailable(f"{kind} of run {run}: {exc}") from None


def store_analysis(ws: Workspace, run: str, kind: str) -> Analysis:
    """Compute and write one analysis (the versions are read before, so a change during the
    computation leaves the file stale rather than wrongly fresh)."""
    versions = current_versions(ws, run)
    if versions["train"] is None or versions["generated"] is None:
        missing = "the training images" if versions["train"] is None else f"run {run}'s samples"
        raise AnalysisUnavailable(f"{missing} are not indexed yet; run `modescope index` "
                                  f"(and `modescope index --source generated:{run}`) first")
    result = compute(ws, run, kind)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    record = {"versions": versions, "computed_at": stamp, "result": result}
    atomic_write_bytes(cache_path(ws, run, kind), json.dumps(record).encode())
    return Analysis(kind, result, {k: str(v) for k, v in versions.items()}, stamp)


def _store_in_child(root: str, run: str, kind: str) -> Analysis:
    return store_analysis(Workspace(Path(root)), run, kind)


class Analyses:
    """Cached analyses of runs, parsed once per file version, computed off the event loop.

    The computation itself runs in a child process (one, started on first use and kept): in a
    thread of the server it held the GIL for long stretches (the pixel check, k-means set-up),
    and every page waiting behind it showed that as latency (docs/reliability.md)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")
        self._child: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], Future[Analysis]] = {}
        self._parsed: dict[Path, tuple[int, dict[str, Any]]] = {}
        self._started: dict[tuple[str, str], float] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._child is not None:
            self._child.shutdown(wait=False, cancel_futures=True)

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        with self._lock:
            hit = self._parsed.get(path)
        if hit and hit[0] == mtime:
            return hit[1]
        try:
            record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # unreadable cache: recompute
        with self._lock:
            self._parsed[path] = (mtime, record)
        return record

    def cached(self, run: str, kind: str, versions: dict[str, str | None] | None = None
               ) -> Analysis | None:
        """The stored analysis if it is still fresh, else None."""
        record = self._read(cache_path(self.ws, run, kind))
        if record is None:
            return None
        versions = versions or current_versions(self.ws, run)
        if record.get("versions") != versions:
            return None
        return Analysis(kind, record["result"], record["versions"], record["computed_at"])

    REVALIDATE_S = 15.0  # during a flag burst: at most one recomputation per analysis this often

    def revalidate(self, run: str, kind: str) -> None:
        """Start a fresh computation in the background unless one runs or one started less
        than REVALIDATE_S ago (a burst of flags must not keep a core busy with k-means)."""
        key = (run, kind)
        now = time.monotonic()
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None and not pending.done():
                return
            if now - self._started.get(key, -1e9) < self.REVALIDATE_S:
                return
            self._started[key] = now
            self._pending[key] = self._pool.submit(self._compute, run, kind)

    def last(self, run: str, kind: str) -> Analysis | None:
        """The stored analysis whatever it was computed from (shown, marked, while a fresh one
        is computed)."""
        record = self._read(cache_path(self.ws, run, kind))
        if record is None or "result" not in record:
            return None
        return Analysis(kind, record["result"], record.get("versions", {}),
                        record.get("computed_at", ""))

    STALE_NOTE = ("shown as computed before the latest change to the flags or indexes; a "
                  "fresh one is being computed: reload in a moment")

    def fresh_or_last(self, run: str, kind: str, versions: dict[str, str | None] | None = None
                      ) -> tuple[Analysis | None, str | None]:
        """Without waiting: the fresh analysis, or the last one with a note (and a fresh one
        started in the background), or (None, None) when there has never been one."""
        fresh = self.cached(run, kind, versions)
        if fresh is not None:
            return fresh, None
        old = self.last(run, kind)
        if old is None:
            return None, None
        self.revalidate(run, kind)
        return old, self.STALE_NOTE

    def submit(self, run: str, kind: str,
               versions: dict[str, str | None] | None = None) -> Future[Analysis]:
        """A future for the fresh analysis: the cache, or one shared computation."""
        done: Future[Analysis] = Future()
        hit = self.cached(run, kind, versions)
        if hit is not None:
            done.set_result(hit)
            return done
        key = (run, kind)
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None and not pending.done():
                return pending
            fut = self._pool.submit(self._compute, run, kind)
            self._pending[key] = fut
        return fut

    def _compute(self, run: str, kind: str) -> Analysis:
        hit = self.cached(run, kind)  # another process (the pipeline) may have written it
        if hit is not None:
            return hit
        if self._child is None:  # only _pool's one thread gets here: no race
            # spawn, not fork: this process has threads (fork would copy held locks)
            self._child = ProcessPoolExecutor(max_workers=1,
                                              mp_context=multiprocessing.get_context("spawn"))
        try:
            return self._child.submit(_store_in_child, str(self.ws.root), run, kind).result()
        except BrokenProcessPool:  # the child died (killed, out of memory): start another
            self._child = None
            raise AnalysisUnavailable(f"the {kind} computation of run {run} stopped "
                                      "unexpectedly; reload to try again") from None
