"""A run's generated samples: the sorted, paginated gallery and one sample beside its neighbours."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from modescope.app.analyses import Analysis
from modescope.app.neighbours import IndexCache, TrainNeighbour, sample_neighbours
from modescope.app.runs_view import RunsView
from modescope.core.errors import InputError, NotFound
from modescope.indexer.analyses.memorisation import MemorisationResult, SampleRow
from modescope.indexer.analyses.modes import ModesResult

SORTS = ("number", "copied", "mode", "random")


@dataclass(frozen=True)
class SampleCard:
    n: int
    p_value: float | None  # the memorisation verdict's calibrated p (low: copy-like)
    verdict: str | None
    mode: int | None


@dataclass(frozen=True)
class SamplesPage:
    run: str
    sort: str
    seed: int
    page: int
    pages: int
    total: int
    cards: list[SampleCard]
    note: str | None


@dataclass(frozen=True)
class SampleDetail:
    run: str
    n: int
    neighbours: dict[str, list[TrainNeighbour]]
    weights: str
    trained: bool
    warning: str | None
    memorisation: dict[str, Any] | None  # this sample's row of the memorisation result
    calibration: dict[str, Any] | None  # what the verdict was calibrated on (reference, levels)
    mode: dict[str, Any] | None  # this sample's bin of the modes result
    prev_n: int | None
    next_n: int | None
    analysis_note: str | None


class _Lookups:
    """Each sample's memorisation row, by sample number, built once per parsed result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[int, tuple[object, dict[int, SampleRow]]] = {}

    def rows(self, result: MemorisationResult) -> dict[int, SampleRow]:
        key = id(result)
        with self._lock:
            hit = self._built.get(key)
            if hit is not None and hit[0] is result:
                return hit[1]
        table = {row.sample: row for row in result.samples}
        with self._lock:
            if len(self._built) > 64:
                self._built.clear()
            self._built[key] = (result, table)
        return table


class SamplesView:
    def __init__(self, runs: RunsView, indexes: IndexCache) -> None:
        self.runs = runs
        self.indexes = indexes
        self.lookups = _Lookups()

    def page(self, run: str, *, sort: str, seed: int, page: int, page_size: int,
             memorisation: Analysis | None, modes: Analysis | None,
             note: str | None = None) -> SamplesPage:
        if sort not in SORTS:
            raise InputError(f"sort {sort!r}: use one of {', '.join(SORTS)}")
        numbers = self.runs.sample_numbers(run)
        if not numbers:
            self.runs.run(run)
        mem = self.lookups.rows(memorisation.value) if memorisation else {}
        bins: dict[int, int] = modes.value.generated_bin_of if modes else {}
        if sort == "copied" and mem:
            numbers.sort(key=lambda n: (mem[n].p_value if n in mem else math.inf, n))
        elif sort == "mode" and bins:
            numbers.sort(key=lambda n: (bins.get(n, 1 << 30), n))
        elif sort == "random":
            order = np.random.default_rng(seed).permutation(len(numbers))
            numbers = [numbers[i] for i in order.tolist()]
        pages = max(1, math.ceil(len(numbers) / page_size))
        page = min(max(1, page), pages)
        chosen = numbers[(page - 1) * page_size: page * page_size]
        cards = [SampleCard(n, mem[n].p_value if n in mem else None,
                            mem[n].verdict if n in mem else None, bins.get(n))
                 for n in chosen]
        return SamplesPage(run, sort, seed, page, pages, len(numbers), cards, note)

    def detail(self, run: str, n: int, *, memorisation: Analysis | None,
               modes: Analysis | None, note: str | None = None) -> SampleDetail:
        numbers = self.runs.sample_numbers(run)
        if n not in numbers:
            self.runs.run(run)
            raise NotFound(f"run {run} has no sample {n}")
        found, meta = sample_neighbours(self.runs.ws, self.indexes, run, n)
        mem_row = self.lookups.rows(memorisation.value).get(n) if memorisation else None
        mode = None
        if modes is not None:
            m: ModesResult = modes.value
            b = m.generated_bin_of.get(n)
            if b is not None:
                mode = m.bins[b].as_json()
        at = numbers.index(n)
        return SampleDetail(
            run=run, n=n, neighbours=found, weights=meta["weights"], trained=meta["trained"],
            warning=meta.get("warning"), memorisation=mem_row.as_json() if mem_row else None,
            calibration=_calibration(memorisation.value) if memorisation else None,
            mode=mode, prev_n=numbers[at - 1] if at > 0 else None,
            next_n=numbers[at + 1] if at + 1 < len(numbers) else None, analysis_note=note)


def _calibration(r: MemorisationResult) -> dict[str, Any]:
    return {"reference": r.reference, "n_reference": r.n_reference,
            "copy_level": r.copy_level, "close_level": r.close_level,
            "copy_possible": r.copy_possible, "twin_ratio": r.twin_ratio,
            "pixel_twin": r.pixel_twin, "twin_rule": r.twin_rule,
            "pixel_gate_rule": r.pixel_gate_rule}
