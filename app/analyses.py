"""A run's analyses (every registered analysis of a run: NDB modes, memorisation, ...), cached
as JSON beside the run.

``runs/<RUN>/inspection/<NAME>.json`` = ``{"versions": ..., "computed_at": ..., "result": <the
result's JSON form>}``. ``versions`` names what the result came from, one entry per input the
analysis declares (indexer/analyses/registry.py): a hash of the training index's and the run's
index's meta.json, of the flagged ids (the curated set), and ``code``, the analysis's name and
version. When any of them changes the cache is stale and the next page that needs it recomputes
it, in a child process (one at a time; two requests for the same analysis share one
computation), never on the event loop or under the server's GIL. The pipeline job writes the
same files through ``store_analysis``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modescope.app.child import Child, ChildStopped
from modescope.app.store import flags_version
from modescope.core.errors import Conflict, ModescopeError
from modescope.core.workspace import Workspace
from modescope.indexer.analyses.registry import AnalysisSpec, analyses, calc_analysis, get_analysis
from modescope.indexer.store import IndexStore


class AnalysisUnavailable(Conflict):
    title = "Analysis not possible yet"


@dataclass(frozen=True)
class Analysis:
    """One stored analysis of a run: the typed result (``value``, for the views) and its JSON
    form (``result``, as stored: for the JSON twins)."""

    kind: str
    value: Any
    versions: dict[str, str]
    computed_at: str
    result: dict[str, Any]


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


def run_analysis(kind: str) -> AnalysisSpec[Any]:
    """The registered analysis of a run named ``kind`` (ValueError if there is none)."""
    spec = get_analysis(kind)
    if not spec.inputs.run:
        raise ValueError(f"{kind!r} is not an analysis of a run")
    return spec


def run_kinds() -> list[str]:
    """The names of every registered analysis of a run, in listing order."""
    return [s.name for s in analyses(run=True)]


def current_versions(ws: Workspace, run: str, kind: str | None = None
                     ) -> dict[str, str | None]:
    """What an analysis of ``run`` depends on right now: with ``kind``, that analysis's cache
    ``versions`` (its declared inputs and ``code``); without, every input (data, curated set),
    which ``versions_for`` narrows to one analysis."""
    inputs: dict[str, str | None] = {
        "train": _meta_hash(ws, "train"), "generated": _meta_hash(ws, f"generated:{run}"),
        "flags": flags_version(ws)}
    return inputs if kind is None else versions_for(run_analysis(kind), inputs)


def versions_for(spec: AnalysisSpec[Any], current: dict[str, str | None]
                 ) -> dict[str, str | None]:
    """One analysis's cache ``versions`` out of ``current_versions``."""
    return {**{k: current[k] for k in spec.inputs.keys()}, "code": spec.code}


def cache_path(ws: Workspace, run: str, kind: str) -> Path:
    return ws.run(run).inspection_path(run_analysis(kind).name)


def compute(ws: Workspace, run: str, kind: str) -> Any:
    """Run one analysis (no TensorFlow: stored vectors only): its typed result."""
    try:
        return calc_analysis(run_analysis(kind).name, ws, run)
    except (ModescopeError, ValueError, OSError) as exc:  # OSError: an image file is gone
        raise AnalysisUnavailable(f"{kind} of run {run}: {exc}") from None


def store_analysis(ws: Workspace, run: str, kind: str) -> Analysis:
    """Compute and write one analysis (the versions are read before, so a change during the
    computation leaves the file stale rather than wrongly fresh)."""
    versions = current_versions(ws, run, kind)
    unindexed = {k for k in ("train", "generated") if k in versions and versions[k] is None}
    if unindexed:
        missing = "the training images" if "train" in unindexed else f"run {run}'s samples"
        raise AnalysisUnavailable(f"{missing} are not indexed yet; run `modescope index` "
                                  f"(and `modescope index --source generated:{run}`) first")
    value = compute(ws, run, kind)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    result = value.as_json()
    ws.run(run).write_inspection(kind, {"versions": versions, "computed_at": stamp,
                                        "result": result})
    return Analysis(kind, value, {k: str(v) for k, v in versions.items()}, stamp, result)


def _store_in_child(root: str, run: str, kind: str) -> Analysis:
    return store_analysis(Workspace(Path(root)), run, kind)


class Analyses:
    """Cached analyses of runs, parsed once per file version, computed off the event loop.

    The computation itself runs in a child process (one, started on first use and kept, and
    stopped with the server: app/child.py): in a thread of the server it held the GIL for long
    stretches (the pixel check, k-means set-up), and every page waiting behind it showed that
    as latency (docs/reliability.md)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")
        self._child = Child("analysis")
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], Future[Analysis]] = {}
        self._parsed: dict[Path, tuple[int, Analysis]] = {}
        self._started: dict[tuple[str, str], float] = {}

    def close(self) -> None:
        """Stop the child (terminated and joined: a computation in progress is abandoned)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._child.close()

    def _read(self, run: str, kind: str) -> Analysis | None:
        """The stored analysis, parsed into its typed result once per file version; None when
        there is none or it cannot be read (an old or broken file: recompute)."""
        path = cache_path(self.ws, run, kind)
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        with self._lock:
            hit = self._parsed.get(path)
        if hit and hit[0] == mtime:
            return hit[1]
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            value = run_analysis(kind).result_type.from_json(record["result"])
            found = Analysis(kind, value, record.get("versions", {}),
                             record.get("computed_at", ""), record["result"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        with self._lock:
            self._parsed[path] = (mtime, found)
        return found

    def stored(self, run: str, kind: str, versions: dict[str, str | None] | None = None
               ) -> tuple[Analysis | None, bool]:
        """(the stored analysis whatever it was computed from, whether it is fresh)."""
        found = self._read(run, kind)
        if found is None:
            return None, False
        current = versions or current_versions(self.ws, run)
        return found, found.versions == versions_for(run_analysis(kind), current)

    def cached(self, run: str, kind: str, versions: dict[str, str | None] | None = None
               ) -> Analysis | None:
        """The stored analysis if it is still fresh, else None."""
        found, fresh = self.stored(run, kind, versions)
        return found if fresh else None

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
        return self._read(run, kind)

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
        try:
            return self._child.call(_store_in_child, str(self.ws.root), run, kind)
        except ChildStopped:  # the child died (killed, out of memory): the next call starts one
            raise AnalysisUnavailable(f"the {kind} computation of run {run} stopped "
                                      "unexpectedly; reload to try again") from None
