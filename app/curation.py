"""The training-set analyses behind /dataset (registered dataset analyses: outliers,
duplicates, train-modes, suggest), computed once and kept in memory.

Each is keyed by the inputs it declares (indexer/analyses/registry.py) and its version: the
training index by its meta.json (mtime and count), so a new `modescope index` run makes it
stale and the next page recomputes; the flags (suggestions) by the flag version. One lock per
analysis: two requests share one computation. Each result records how long it took (shown on
the page and in the JSON), so the cost is visible, not guessed.

The computation runs in a child process of its own (app/child.py: started on first use, stopped
with the server, never outliving it), as the run analyses' does: computed in a thread of the
server it held the GIL for seconds after every flag (the suggestions follow the flags), and
every page request waited behind it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from modescope.app.analyses import AnalysisUnavailable
from modescope.app.child import Child, ChildStopped
from modescope.app.store import FlagStore
from modescope.core.errors import ModescopeError
from modescope.core.workspace import Workspace
from modescope.indexer.analyses.duplicates import DuplicatesResult
from modescope.indexer.analyses.outliers import OutliersResult
from modescope.indexer.analyses.registry import calc_analysis, get_analysis
from modescope.indexer.analyses.suggest import SuggestResult
from modescope.indexer.analyses.train_modes import TrainModesResult
from modescope.indexer.store import IndexStore

logger = logging.getLogger(__name__)
V = TypeVar("V")


@dataclass(frozen=True)
class Outliers:
    ranked: list[int]  # most unusual first
    score: dict[int, float]  # mean percentile of the outlier scores (indexer/outlier_scores.py)
    suggested: set[int]  # at least the threshold
    threshold: float
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
    kept: int  # reviewed and kept: the model's known good examples, never suggested
    seconds: float


class Computing(ModescopeError):
    """The analysis is still running in the background; the page says so and reloads."""

    status = 202
    title = "Still computing"


class _Job:
    def __init__(self, key: Any) -> None:
        self.key = key
        self.done = threading.Event()
        self.value: Any = None
        self.error: AnalysisUnavailable | None = None
        self.started = time.monotonic()


def _in_child(root: str, analysis: str, params: dict[str, Any]) -> Any:
    """In the curation child: the registered dataset analysis's typed result."""
    return calc_analysis(analysis, Workspace(Path(root)), **params)


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
        self._child = Child("curation")

    def close(self) -> None:
        """Stop the child process (a computation waiting on it fails; the server is stopping)."""
        self._child.close()

    def index_key(self) -> tuple[int, int] | None:
        """(meta.json mtime_ns, indexed count) of the training index; None when not indexed."""
        store = IndexStore(self.workspace, "train")
        try:
            mtime = store.meta_path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        meta = store.read_meta() or {}
        return mtime, int(meta.get("count", 0))

    def _key(self, analysis: str, params: dict[str, Any]) -> tuple[Any, ...]:
        """What the analysis's result depends on: its version, its declared inputs, params."""
        spec = get_analysis(analysis)
        return (spec.code, self._require_index() if spec.inputs.train else None,
                self.flags.version() if spec.inputs.flags else None,
                tuple(sorted(params.items())))

    def _analysis(self, name: str, analysis: str, convert: Callable[[Any], V],
                  wait_s: float | None = None, **params: Any) -> V:
        """The view ``convert`` makes of a registered dataset analysis, cached as ``name`` (the
        key of its cost)."""
        def compute() -> V:
            try:
                result = self._child.call(_in_child, str(self.workspace.root), analysis, params)
            except ChildStopped as exc:  # killed, out of memory: the next request starts one
                raise AnalysisUnavailable(f"the {get_analysis(analysis).title} could not be "
                                          f"computed: {exc.detail}") from None
            return convert(result)
        return self._cached(name, analysis, self._key(analysis, params), compute, wait_s)

    def _cached(self, name: str, analysis: str, key: Any, compute: Callable[[], Any],
                wait_s: float | None = None) -> Any:
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] == key:
                return hit[1]
            job = self._jobs.get(name)
            if job is None or job.key != key:
                job = _Job(key)
                self._jobs[name] = job
                threading.Thread(target=self._run, args=(name, analysis, job, compute),
                                 daemon=True, name=f"curation-{name}").start()
        if not job.done.wait(self.wait_s if wait_s is None else wait_s):
            raise Computing(f"computing the {get_analysis(analysis).title} (started "
                            f"{time.monotonic() - job.started:.0f} s ago); this page reloads "
                            "until they are ready")
        if job.error is not None:
            raise job.error
        return job.value

    def _run(self, name: str, analysis: str, job: _Job, compute: Callable[[], Any]) -> None:
        started = time.perf_counter()
        try:
            job.value = _with_seconds(compute(), time.perf_counter() - started)
        except (ModescopeError, ValueError) as exc:
            job.error = AnalysisUnavailable(str(exc))
        except Exception as exc:  # noqa: BLE001  (shown to the user, logged in full)
            logger.exception("curation analysis %s failed", name)
            job.error = AnalysisUnavailable(
                f"the {get_analysis(analysis).title} could not be computed: {exc}")
        with self._lock:
            if job.error is None:
                self._cache[name] = (job.key, job.value)
            if self._jobs.get(name) is job:
                del self._jobs[name]
        job.done.set()

    def _require_index(self) -> tuple[int, int]:
        key = self.index_key()
        if key is None:
            raise AnalysisUnavailable("the training images are not indexed yet; run `modescope "
                                      f"index --workspace {self.workspace.root}`")
        return key

    def outliers(self, wait_s: float | None = None) -> Outliers:
        def convert(res: OutliersResult) -> Outliers:
            return Outliers([r.id for r in res.ranked], {r.id: r.score for r in res.ranked},
                            {r.id for r in res.ranked if r.suggested}, res.unusual, 0.0)
        return self._analysis("outliers", "outliers", convert, wait_s)

    def duplicates(self) -> Duplicates:
        def convert(res: DuplicatesResult) -> Duplicates:
            groups = sorted((list(g.ids) for g in res.groups), key=lambda g: (-len(g), g[0]))
            exact = {i for g in res.groups for i in g.exact_duplicates}
            group_of = {i: n for n, g in enumerate(groups) for i in g}
            return Duplicates(groups, exact, res.threshold, 0.0, group_of)
        return self._analysis("duplicates", "duplicates", convert)

    def modes(self) -> Modes:
        """The training set's mode bins (indexer/analyses/train_modes.py)."""
        def convert(res: TrainModesResult) -> Modes:
            return Modes(res.k, [list(m) for m in res.members], res.bin_of, 0.0)
        return self._analysis("modes", "train-modes", convert)

    def suggestions(self, top: int = 60) -> Suggestions:
        def convert(res: SuggestResult) -> Suggestions:
            return Suggestions(res.method, [s.id for s in res.suggestions],
                               {s.id: s.score for s in res.suggestions}, res.flagged, res.kept,
                               0.0)
        # the kept ids are a parameter: part of the cache key, and the child's input
        return self._analysis("suggest", "suggest", convert, top=top,
                              kept=frozenset(self.flags.kept_ids()))

    def costs(self) -> dict[str, float]:
        """Seconds each cached analysis took to compute (only those computed so far)."""
        return {name: round(value.seconds, 3) for name, (_, value) in self._cache.items()}


def _with_seconds(value: Any, seconds: float) -> Any:
    from dataclasses import replace

    return replace(value, seconds=seconds)
