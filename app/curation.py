"""The training-set analyses behind /dataset, computed once and kept in memory.

Outlier scores, near-duplicate groups and mode bins depend only on the training index, so they
are keyed by its meta.json (mtime and count): a new `modescope index` run makes them stale and
the next page recomputes. Suggestions also depend on the flags, so their key adds the flag
version. One lock per analysis: two requests share one computation. Each result records how long
it took (shown on the page and in the JSON), so the cost is visible, not guessed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modescope.app.analyses import AnalysisUnavailable as NotReady  # one error, both analyses
from modescope.app.store import FlagStore
from modescope.core.errors import ModescopeError
from modescope.core.workspace import Workspace
from modescope.indexer import ndb
from modescope.indexer.inspect import (
    inspect_duplicates,
    inspect_outliers,
    inspect_suggest,
    load_vectors,
)
from modescope.indexer.store import IndexStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outliers:
    ranked: list[int]  # most unusual first
    score: dict[int, float]  # robust z (larger of block1 / block5)
    suggested: set[int]  # over the z threshold
    z_threshold: float
    seconds: float


@dataclass(frozen=True)
class Duplicates:
    groups: list[list[int]]  # each group's ids (ok and exact-duplicate rows), biggest first
    exact: set[int]
    threshold: float
    seconds: float
    group_of: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Modes:
    k: int
    members: list[list[int]]  # per bin: ok ids, closest to the bin's centre first
    bin_of: dict[int, int]
    seconds: float


@dataclass(frozen=True)
class Suggestions:
    method: str
    ids: list[int]
    score: dict[int, float]
    flagged: int
    seconds: float


class Computing(ModescopeError):
    """The analysis is still running in the background; the page says so and reloads."""

    status = 202
    title = "Still computing"


LABELS = {"outliers": "outlier scores", "duplicates": "duplicate groups", "modes": "mode bins",
          "suggest": "suggestions"}


class _Job:
    def __init__(self, key: Any) -> None:
        self.key = key
        self.done = threading.Event()
        self.value: Any = None
        self.error: NotReady | None = None
        self.started = time.monotonic()


class Curation:
    """Each analysis runs at most once per key, in a background thread; a request waits up to
    ``wait_s`` for it and otherwise gets ``Computing`` (so 100k images never hold a page for
    minutes), and the next request picks up the result."""

    def __init__(self, workspace: Workspace, flags: FlagStore, wait_s: float = 10.0) -> None:
        self.workspace = workspace
        self.flags = flags
        self.wait_s = wait_s
        self._cache: dict[str, tuple[Any, Any]] = {}
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def index_key(self) -> tuple[int, int] | None:
        """(meta.json mtime_ns, indexed count) of the training index; None when not indexed."""
        store = IndexStore(self.workspace, "train")
        try:
            mtime = store.meta_path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        meta = store.read_meta() or {}
        return mtime, int(meta.get("count", 0))

    def _cached(self, name: str, key: Any, compute: Callable[[], Any],
                wait_s: float | None = None) -> Any:
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] == key:
                return hit[1]
            job = self._jobs.get(name)
            if job is None or job.key != key:
                job = _Job(key)
                self._jobs[name] = job
                threading.Thread(target=self._run, args=(name, job, compute), daemon=True,
                                 name=f"curation-{name}").start()
        if not job.done.wait(self.wait_s if wait_s is None else wait_s):
            raise Computing(f"computing the {LABELS[name]} (started "
                            f"{time.monotonic() - job.started:.0f} s ago); this page reloads "
                            "until they are ready")
        if job.error is not None:
            raise job.error
        return job.value

    def _run(self, name: str, job: _Job, compute: Callable[[], Any]) -> None:
        started = time.perf_counter()
        try:
            job.value = _with_seconds(compute(), time.perf_counter() - started)
        except (ModescopeError, ValueError) as exc:
            job.error = NotReady(str(exc))
        except Exception as exc:  # noqa: BLE001  (shown to the user, logged in full)
            logger.exception("curation analysis %s failed", name)
            job.error = NotReady(f"the {LABELS[name]} could not be computed: {exc}")
        with self._lock:
            if job.error is None:
                self._cache[name] = (job.key, job.value)
            if self._jobs.get(name) is job:
                del self._jobs[name]
        job.done.set()

    def _require_index(self) -> tuple[int, int]:
        key = self.index_key()
        if key is None:
            raise NotReady(f"the training images are not indexed yet; run `modescope index "
                           f"--workspace {self.workspace.root}`")
        return key

    def outliers(self, wait_s: float | None = None) -> Outliers:
        def compute() -> Outliers:
            res = inspect_outliers(self.workspace)
            ranked = [r["id"] for r in res["ranked"]]
            return Outliers(ranked, {r["id"]: r["score"] for r in res["ranked"]},
                            {r["id"] for r in res["ranked"] if r["suggested"]},
                            res["z_threshold"], 0.0)
        return self._cached("outliers", self._require_index(), compute, wait_s)

    def duplicates(self) -> Duplicates:
        def compute() -> Duplicates:
            res = inspect_duplicates(self.workspace)
            groups = sorted((g["ids"] for g in res["groups"]), key=lambda g: (-len(g), g[0]))
            exact = {i for g in res["groups"] for i in g["exact_duplicates"]}
            group_of = {i: n for n, g in enumerate(groups) for i in g}
            return Duplicates(groups, exact, res["threshold"], 0.0, group_of)
        return self._cached("duplicates", self._require_index(), compute)

    def modes(self) -> Modes:
        """k-means bins of the training descriptors, as `inspect modes` makes them (PCA-whitened
        block1+block5, K = n/40 clamped to 2..100, seed 0), over every indexed training image."""
        def compute() -> Modes:
            ids, vecs, _ = load_vectors(self.workspace, "train")
            if len(ids) < 8:
                raise ValueError(f"only {len(ids)} training images are indexed; modes need 8")
            white = ndb.whitener(ndb.combined(vecs["block1"], vecs["block5"]), seed=0)
            x = white(ndb.combined(vecs["block1"], vecs["block5"]))
            k = ndb.default_k(len(ids))
            centroids = ndb.kmeans_bins(x, k, seed=0)
            bins = ndb.assign(x, centroids)
            members = []
            for b in range(k):
                rows = np.flatnonzero(bins == b)
                rows = rows[np.argsort(-(x[rows] @ centroids[b]), kind="stable")]
                members.append([int(ids[r]) for r in rows])
            bin_of = {int(i): int(b) for i, b in zip(ids.tolist(), bins.tolist(), strict=True)}
            return Modes(k, members, bin_of, 0.0)
        return self._cached("modes", self._require_index(), compute)

    def suggestions(self, top: int = 60) -> Suggestions:
        key = (self._require_index(), self.flags.version(), top)

        def compute() -> Suggestions:
            res = inspect_suggest(self.workspace, top=top)
            ids = [s["id"] for s in res["suggestions"]]
            return Suggestions(res["method"], ids,
                               {s["id"]: s["score"] for s in res["suggestions"]},
                               res["flagged"], 0.0)
        return self._cached("suggest", key, compute)

    def costs(self) -> dict[str, float]:
        """Seconds each cached analysis took to compute (only those computed so far)."""
        return {name: round(value.seconds, 3) for name, (_, value) in self._cache.items()}


def _with_seconds(value: Any, seconds: float) -> Any:
    from dataclasses import replace

    return replace(value, seconds=seconds)
