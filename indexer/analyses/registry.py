"""The analyses registry (after stylegan2-ada's ``metrics/metric_main.py``: ``register_metric``,
``calc_metric``): the cache, the pipeline, ``modescope inspect``, checkpoint scoring and the
pages all iterate over it, so adding an analysis is adding one module to this package.

Each module of ``modescope.indexer.analyses`` that defines ``ANALYSIS = AnalysisSpec(...)`` is
registered the first time the registry is asked (never at import). A spec declares:

- ``name``: the CLI command, the cache file ``runs/<RUN>/inspection/<name>.json`` (run
  analyses), the pipeline step ``inspect <name>``;
- ``inputs``: which indexes it reads (the training index, a run's generated index), whether it
  reads the flags (the curated set) and whether it needs a run. The cache's ``versions`` record
  holds one hash per declared input and ``code`` = ``<name>@<version>``;
- ``version``: bumped when the method changes, so old caches are recomputed;
- ``compute(ws, run, **params)`` returning ``result_type`` (a frozen dataclass with a JSON
  form, results.py);
- optionally ``cli`` (its ``modescope inspect`` options and text lines) and ``checkpoint``
  (a score of a generator's samples at each checkpoint, a metrics.jsonl row's keys).
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from modescope.core.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from modescope.core.workspace import Workspace

R = TypeVar("R")


@dataclass(frozen=True)
class Inputs:
    """What an analysis reads; each one read is a key of its cache's ``versions``."""

    train: bool = True  # the training index (index/train)
    generated: bool = False  # the run's generated index (index/generated:<run>)
    flags: bool = False  # the flagged ids: a flag changes the result (the curated set)
    run: bool = False  # it judges one run (``--run``; cached in the run's folder)

    def __post_init__(self) -> None:
        if self.generated and not self.run:
            raise ValueError("an analysis of a run's generated index needs run=True")

    def keys(self) -> tuple[str, ...]:
        """The ``versions`` keys of the indexes and flags read, in the cache's order."""
        wanted = {"train": self.train, "generated": self.generated, "flags": self.flags}
        return tuple(k for k, on in wanted.items() if on)


@dataclass(frozen=True)
class Option:
    """One ``modescope inspect NAME`` option: a keyword of ``compute`` (or, with
    ``display_only``, only of the text lines)."""

    name: str  # the keyword; the flag is --name-with-dashes unless ``flags`` says otherwise
    type: Any  # its annotation: int, float, bool, int | None, str | None, ...
    default: Any
    help: str
    flags: tuple[str, ...] = ()
    parse: Callable[[Any], Any] | None = None  # check or convert the value (InputError)
    display_only: bool = False  # e.g. --top: how many lines to print


INCLUDE_FLAGGED = Option(
    "include_flagged", bool, False,
    "Keep flagged training images in the reference set (default: the curated set).")


@dataclass(frozen=True)
class Cli(Generic[R]):
    """How ``modescope inspect NAME`` shows the analysis: its help, options and text lines
    (``--json`` prints the result's JSON form)."""

    help: str
    options: tuple[Option, ...] = ()
    lines: Callable[[R, Mapping[str, Any]], list[str]] | None = None  # (result, options)
    label: str | None = None  # in ``modescope inspect --help`` (default: the name)


@dataclass
class TrainingSet:
    """What every checkpoint scorer shares, loaded once per training job: the curated,
    indexed training images and their descriptors."""

    ws: Workspace
    size: int  # the workspace's image size: samples are scored at it
    ids: np.ndarray
    vecs: dict[str, np.ndarray]  # "block1", "block5"
    meta: dict[str, Any]  # the training index's meta.json


@dataclass
class Samples:
    """A generator's samples at one checkpoint, with their descriptors (in memory only)."""

    images: np.ndarray  # uint8 (N, S, S, 3) at the training size
    features: dict[str, np.ndarray]
    ids: np.ndarray  # 0..N-1


Scorer = Callable[[Samples], dict[str, Any]]


@dataclass(frozen=True)
class Checkpoint:
    """Per-checkpoint scoring: ``prepare(training)`` once per training job, then the scorer at
    every scored checkpoint; its keys go into the metrics.jsonl row (docs/experiments.md)."""

    prepare: Callable[[TrainingSet], Scorer]
    timer: str  # its seconds' key in the row's "seconds"


@dataclass(frozen=True)
class AnalysisSpec(Generic[R]):
    name: str
    title: str  # what "computing the ..." messages call its result
    inputs: Inputs
    version: int
    compute: Callable[..., R]  # compute(ws, run, **params) -> result
    result_type: type[R]
    cli: Cli[R] | None = None
    checkpoint: Checkpoint | None = None
    rank: int = 100  # listing order (CLI help, pipeline steps, a metrics row's keys)

    @property
    def code(self) -> str:
        """The ``code`` entry of its cache's ``versions``."""
        return f"{self.name}@{self.version}"


_registry: dict[str, AnalysisSpec[Any]] = {}
_lock = threading.RLock()
_discovered = False


def _discover() -> None:
    """Register every module of this package that defines ``ANALYSIS`` (once, on first use)."""
    global _discovered
    with _lock:
        if _discovered:
            return
        _discovered = True
        package = importlib.import_module(__package__ or "modescope.indexer.analyses")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            spec = getattr(module, "ANALYSIS", None)
            if isinstance(spec, AnalysisSpec) and spec.name not in _registry:
                _registry[spec.name] = spec


def register_analysis(spec: AnalysisSpec[R]) -> AnalysisSpec[R]:
    """Add an analysis in this process only (tests add toys): worker processes (the web app's
    analysis child, the pipeline, training) find the modules of this package, so a real
    analysis is a module with ``ANALYSIS``, not a call to this."""
    _discover()
    with _lock:
        if spec.name in _registry:
            raise ValueError(f"an analysis named {spec.name!r} is registered already")
        _registry[spec.name] = spec
    return spec


def unregister_analysis(name: str) -> None:
    with _lock:
        _registry.pop(name, None)


def analyses(*, run: bool | None = None) -> list[AnalysisSpec[Any]]:
    """Every registered analysis in listing order; ``run`` keeps only run (or dataset) ones."""
    _discover()
    with _lock:
        found = list(_registry.values())
    return sorted((s for s in found if run is None or s.inputs.run == run),
                  key=lambda s: (s.rank, s.name))


def get_analysis(name: str) -> AnalysisSpec[Any]:
    _discover()
    with _lock:
        spec = _registry.get(name)
    if spec is None:
        raise ValueError(f"unknown analysis {name!r}; known: "
                         f"{', '.join(s.name for s in analyses())}")
    return spec


def checkpoint_analyses() -> list[AnalysisSpec[Any]]:
    """The analyses that score a generator at each checkpoint, in listing order."""
    return [s for s in analyses() if s.checkpoint is not None]


def calc_analysis(name: str, ws: Workspace, run: str | None = None, **params: Any) -> Any:
    """Compute one analysis (stored vectors only, no TensorFlow): its typed result."""
    spec = get_analysis(name)
    if spec.inputs.run and run is None:
        raise InputError(f"the {name} analysis judges a run: give --run")
    if not spec.inputs.run and run is not None:
        raise ValueError(f"the {name} analysis reads no run")
    return spec.compute(ws, run, **params)

