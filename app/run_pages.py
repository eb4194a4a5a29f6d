"""What the run pages ask for, gathered off the event loop: one call per route.

Blocking reads run in worker threads; an analysis that is not stored yet is computed in the
analyses' child process and awaited for at most ``RunsSide.analysis_wait_s``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool

from modescope.app import fidelity_view
from modescope.app.analyses import Analysis, AnalysisUnavailable, current_versions
from modescope.app.fidelity_view import NeverReached
from modescope.app.lineage import analyses_side, lineage_between
from modescope.app.resources import package_dir
from modescope.app.runs_state import RunsSide
from modescope.app.runs_view import RunSummary
from modescope.app.samples_view import SampleDetail, SamplesPage
from modescope.core.errors import InputError, NotFound
from modescope.core.lineage import lineage_words
from modescope.core.workspace import Workspace
from modescope.indexer.analyses.registry import AnalysisSpec, analyses, get_analysis
from modescope.indexer.run_compare import MEASURES, summary
from modescope.indexer.run_summary import run_summary

COMPARE_GRID = 24  # samples shown per run on the compare page


async def analysis(side: RunsSide, run: str, kind: str,
                   versions: dict[str, str | None] | None = None
                   ) -> tuple[Analysis | None, str | None]:
    """The fresh analysis, or while it is computed off the event loop: the last one, marked
    (stale-while-revalidate: a flag burst must not make every page wait for k-means), or, when
    there is none yet, the fresh one after at most ``analysis_wait_s``."""
    analyses = side.analyses
    try:
        found, note = await run_in_threadpool(analyses.fresh_or_last, run, kind, versions)
        if found is not None:
            return found, note
        fut = await run_in_threadpool(analyses.submit, run, kind, versions)
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)),
                                      side.analysis_wait_s), None
    except AnalysisUnavailable as exc:
        return None, exc.detail
    except TimeoutError:
        return None, f"the {kind} analysis is still being computed: reload in a moment"


async def fresh_analysis(side: RunsSide, run: str, kind: str) -> Analysis:
    """The fresh analysis, waiting for it if need be (the JSON twins)."""
    return await asyncio.wrap_future(await run_in_threadpool(side.analyses.submit, run, kind))


async def samples_page(side: RunsSide, run: str, sort: str, seed: int,
                       page: int) -> SamplesPage:
    mem: Analysis | None = None
    modes: Analysis | None = None
    note = None
    if sort == "copied":
        mem, note = await analysis(side, run, "memorisation")
    elif sort == "mode":
        modes, note = await analysis(side, run, "modes")
    else:  # no computation for plain browsing: show verdicts once they exist
        mem = await run_in_threadpool(side.analyses.cached, run, "memorisation")
    return await run_in_threadpool(
        lambda: side.samples.page(run, sort=sort, seed=seed, page=page,
                                  page_size=side.page_size, memorisation=mem, modes=modes,
                                  note=note))


async def sample_detail(side: RunsSide, run: str, n: int) -> SampleDetail:
    def at_once() -> SampleDetail | None:
        """The common case in one worker-thread hop: both analyses stored (fresh or last)."""
        versions = current_versions(side.ws, run)
        (mem, note1), (modes, note2) = (side.analyses.fresh_or_last(run, kind, versions)
                                        for kind in ("memorisation", "modes"))
        if mem is None or modes is None:
            return None
        return side.samples.detail(run, n, memorisation=mem, modes=modes, note=note1 or note2)

    if (done := await run_in_threadpool(at_once)) is not None:
        return done
    versions = await run_in_threadpool(current_versions, side.ws, run)  # once for both
    mem, note1 = await analysis(side, run, "memorisation", versions)
    modes, note2 = await analysis(side, run, "modes", versions)
    return await run_in_threadpool(
        lambda: side.samples.detail(run, n, memorisation=mem, modes=modes,
                                    note=note1 or note2))


@dataclass(frozen=True)
class CompareSide:
    summary: RunSummary
    modes: Analysis | None
    memorisation: Analysis | None
    note: str | None
    samples: list[int]
    found: dict[str, Analysis | None]  # every analysis a compare measure reads
    reading: dict[str, Any] | None  # the run's summary in words (indexer/run_summary.py)


async def _compare_side(side: RunsSide, run: str) -> CompareSide:
    about = await run_in_threadpool(side.runs.summary, run)  # NotFound for no such run
    versions = await run_in_threadpool(current_versions, side.ws, run)
    found: dict[str, Analysis | None] = {}
    notes: list[str] = []
    for kind in dict.fromkeys(["modes", "memorisation", *READS, *(m.analysis for m in MEASURES)]):
        found[kind], note = await analysis(side, run, kind, versions)
        notes += [note] if note else []
    samples = (await run_in_threadpool(side.runs.sample_numbers, run))[:COMPARE_GRID]
    reading = await run_in_threadpool(_reading, found, side.ws, run)
    return CompareSide(about, found["modes"], found["memorisation"],
                       notes[0] if notes else None, samples, found, reading)


READS = ("modes", "prdc", "memorisation")  # the analyses the run's summary reads


def _reading(found: dict[str, Analysis | None], ws: Workspace, run: str
             ) -> dict[str, Any] | None:
    modes, prdc, memorisation = (found.get(kind) for kind in READS)
    out = run_summary(*(a.result if a is not None else None
                        for a in (modes, prdc, memorisation)))
    caveat = size_caveat(ws, run)
    return {**out, "caveat": caveat} if out is not None and caveat else out


def size_caveat(ws: Workspace, run: str) -> str | None:
    """What to keep in mind when a run's samples are smaller than the training images: the
    analyses compare them upscaled with sharper images, so fidelity and coverage read low."""
    folder = ws.run(run)
    if not folder.config_path.is_file() or not ws.config_path.is_file():
        return None
    size, stored = folder.read_config().size, ws.read_config().image_size
    if size >= stored:
        return None
    return (f"the run's samples are {size} px and the training images {stored} px: every "
            f"analysis compares the samples, upscaled, with sharper images, so fidelity and "
            f"coverage read lower than at equal sizes (train at {stored} px, or ingest into a "
            f"{size}-px workspace, to measure like with like)")


async def reading(side: RunsSide, run: str, has_samples: bool) -> dict[str, Any] | None:
    """The run page's summary from the stored analyses, never waited for (the page must not
    wait on three analyses); missing or stale ones are computed in the background."""
    def stored() -> dict[str, Analysis | None]:
        versions = current_versions(side.ws, run)
        return {kind: side.analyses.fresh_or_last(run, kind, versions)[0] for kind in READS}

    if not has_samples:
        return None
    found = await run_in_threadpool(stored)
    for kind, a in found.items():
        if a is None:
            await run_in_threadpool(side.analyses.revalidate, run, kind)
    return await run_in_threadpool(_reading, found, side.ws, run)


@dataclass(frozen=True)
class Comparison:
    """Did curation help? The measures' rows and sentence, and the lineage between the two."""

    summary: dict[str, Any]
    lineage: dict[str, Any] | None
    lineage_words: str | None


async def compare(side: RunsSide, a: str, b: str) -> tuple[CompareSide, CompareSide]:
    """Two different runs, side by side."""
    if a == b:
        raise InputError("compare needs two different runs: pick another for a or b")
    return await _compare_side(side, a), await _compare_side(side, b)


async def comparison(side: RunsSide, a: CompareSide, b: CompareSide) -> Comparison:
    """What changed from ``a`` to ``b`` (``b`` after curation), measure by measure."""
    sa, sb = (analyses_side(s.summary.name, s.found) for s in (a, b))
    found = await run_in_threadpool(summary, sa, sb)  # Fisher's test: scipy, off the loop
    lineage = await run_in_threadpool(lineage_between, side.ws, a.summary.name, b.summary.name)
    return Comparison(found, lineage, lineage_words(lineage) if lineage else None)


def run_analysis(name: str) -> AnalysisSpec[Any]:
    """A registered analysis of runs, by the name in a URL, or a 404."""
    try:
        spec = get_analysis(name)
    except ValueError as exc:  # not a registered analysis
        raise NotFound(str(exc)) from None
    if not spec.inputs.run:
        raise NotFound(f"{name} is an analysis of the training set, not of a run: see /dataset")
    return spec


def run_analysis_links(run: str) -> list[tuple[str, str]]:
    """(href, title) of every registered run analysis's page."""
    return [(f"/runs/{run}/analyses/{spec.name}", spec.title)
            for spec in analyses(run=True)]


def analysis_template(spec: AnalysisSpec[Any]) -> str:
    """``analysis-<name>.html`` when the analysis brings its own page, else the plain one
    that shows its summary lines."""
    own = f"analysis-{spec.name}.html"
    return own if (package_dir("templates") / own).is_file() else "analysis.html"


def summary_lines(spec: AnalysisSpec[Any], found: Analysis | None) -> list[str]:
    """The analysis's own words for its result (what ``modescope inspect NAME`` prints)."""
    if found is None or spec.cli is None or spec.cli.lines is None:
        return []
    defaults = {option.name: option.default for option in spec.cli.options}
    return spec.cli.lines(found.value, defaults)


@dataclass(frozen=True)
class NeverReachedPage:
    view: NeverReached | None
    computed_at: str | None
    note: str | None


async def never_reached(side: RunsSide, run: str, layer: str, *,
                        wait: bool = False) -> NeverReachedPage:
    """The prdc analysis's never-reached training images of one layer, grouped by the modes
    analysis's bins (one group when modes is not available). ``wait``: the fresh analyses (the
    JSON twin), else the page's stale-while-revalidate ones."""
    if wait:
        found: Analysis | None = await fresh_analysis(side, run, "prdc")
        note = None
    else:
        found, note = await analysis(side, run, "prdc")
    if found is None:
        return NeverReachedPage(None, None, note)
    try:
        modes = (await fresh_analysis(side, run, "modes") if wait
                 else (await analysis(side, run, "modes"))[0])
    except AnalysisUnavailable:
        modes = None
    bins = modes.value.train_bin_of if modes is not None else None
    return NeverReachedPage(fidelity_view.never_reached(found.value, bins, layer),
                            found.computed_at, note)


async def reached_by_bin(side: RunsSide, run: str) -> dict[int, float]:
    """The modes page's per-bin share of reached training images, once prdc is stored (never
    waited for: the modes page must not wait on a second analysis)."""
    found = await run_in_threadpool(side.analyses.last, run, "prdc")
    modes = await run_in_threadpool(side.analyses.last, run, "modes")
    if found is None or modes is None:
        if found is None:
            await run_in_threadpool(side.analyses.revalidate, run, "prdc")
        return {}
    return fidelity_view.reached_share_by_bin(found.value, modes.value.train_bin_of)
