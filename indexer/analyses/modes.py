"""Modes (NDB, indexer/ndb.py): which modes of the curated training set a run dropped or
over-produced; scored at each checkpoint too (NDB/K, JS, dropped and over-produced bins)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modescope.core.errors import InputError
from modescope.indexer.analyses.registry import (
    INCLUDE_FLAGGED,
    AnalysisSpec,
    Checkpoint,
    Cli,
    Inputs,
    Option,
    Samples,
    Scorer,
    TrainingSet,
)
from modescope.indexer.analyses.results import JsonRecord
from modescope.indexer.ndb_stats import NDBPower, power_sentence

if TYPE_CHECKING:
    from modescope.core.workspace import Workspace

LAYERS = "block1+block5, PCA-whitened"


@dataclass(frozen=True)
class ModeBin(JsonRecord):
    bin: int
    train_count: int
    gen_count: int
    train_share: float
    gen_share: float
    z: float
    p_value: float
    verdict: str  # "dropped", "over-produced" or "ok"
    train_examples: tuple[int, ...]  # training ids closest to the bin's centre
    generated_examples: tuple[int, ...]  # sample numbers closest to the bin's centre


@dataclass(frozen=True)
class ModesResult(JsonRecord):
    run: str
    layers: str
    weights: str
    trained: bool
    warning: str | None
    k: int
    alpha: float
    n_train: int
    n_gen: int
    ndb: int
    ndb_over_k: float
    js: float
    ndb_over_k_ci95: tuple[float, float]  # Clopper-Pearson, for the expected NDB/K
    power: NDBPower  # how small a loss the per-bin test can see (indexer/ndb_stats.py)
    dropped: tuple[int, ...]
    over_produced: tuple[int, ...]
    bins: tuple[ModeBin, ...]
    warnings: tuple[str, ...]
    train_bin_of: dict[int, int]  # training id -> bin
    generated_bin_of: dict[int, int]  # sample number -> bin


def compute(ws: Workspace, run: str, *, k: int | None = None, alpha: float = 0.05,
            seed: int = 0, include_flagged: bool = False, examples: int = 6) -> ModesResult:
    import numpy as np

    from modescope.indexer import ndb
    from modescope.indexer.inputs import header, run_vectors

    tids, tv, tmeta, gids, gv = run_vectors(ws, run, include_flagged)
    bins = ndb.ModeBins(tv, k=k, seed=seed)
    tc, tb, centroids = bins.train, bins.train_bins, bins.centroids
    gc, gb = bins.generated_bins(gv)
    result = ndb.ndb_from_bins(tb, gb, bins.k, alpha=alpha).as_json()
    for b in result["bins"]:
        i = b["bin"]
        for name, ids, vecs, of in (("train_examples", tids, tc, tb),
                                    ("generated_examples", gids, gc, gb)):
            members = np.flatnonzero(of == i)
            closest = members[np.argsort(-(vecs[members] @ centroids[i]))][:examples]
            b[name] = [int(ids[j]) for j in closest]
    result["train_bin_of"] = dict(zip(tids.tolist(), tb.tolist(), strict=True))
    result["generated_bin_of"] = dict(zip(gids.tolist(), gb.tolist(), strict=True))
    return ModesResult.from_json({"run": run, "layers": LAYERS, **header(tmeta), **result})


def prepare_checkpoint(training: TrainingSet) -> Scorer:
    """Bins fitted once on the curated training set (default K, seed 0): every checkpoint of a
    run, and every run of a workspace, is scored against the same bins."""
    from modescope.indexer import ndb

    bins = ndb.ModeBins(training.vecs)

    def score(samples: Samples) -> dict[str, Any]:
        r = bins.score(samples.features)
        return {"ndb_over_k": round(r.ndb_over_k, 4), "ndb": r.ndb, "k": r.k,
                "js": round(r.js, 5),
                "dropped": len([b for b in r.bins if b.verdict == "dropped"]),
                "over_produced": len([b for b in r.bins if b.verdict == "over-produced"])}

    return score


def power_words(r: ModesResult) -> str:
    """The power of the per-bin test in words (the CLI line and the page)."""
    return power_sentence(r.power, r.n_gen)


def lines(r: ModesResult, _: Mapping[str, Any]) -> list[str]:
    lo, hi = r.ndb_over_k_ci95
    return [
        f"run {r.run}: NDB/K = {r.ndb_over_k:.3f} (95% interval {lo:.3f}-{hi:.3f}), "
        f"JS = {r.js:.4f}, K = {r.k}, {r.n_train} training vs {r.n_gen} samples",
        f"dropped bins: {list(r.dropped) or 'none'}",
        f"over-produced bins: {list(r.over_produced) or 'none'}",
        f"power: {power_words(r)}",
    ]


def _alpha(value: float) -> float:
    if not 0 < value < 1:
        raise InputError("--alpha must be between 0 and 1")
    return value


ANALYSIS = AnalysisSpec(
    name="modes", title="modes", version=2, rank=10, compute=compute, result_type=ModesResult,
    inputs=Inputs(train=True, generated=True, flags=True, run=True),
    cli=Cli(help="NDB: which modes of the training data the run dropped or over-produced.",
            label="modes (NDB)", lines=lines, options=(
                Option("k", int | None, None, "Bins [default: training images / 40, 2..100].",
                       flags=("--k",)),
                Option("alpha", float, 0.05, "Significance level of each bin's test.",
                       parse=_alpha),
                Option("seed", int, 0, "k-means seed."),
                INCLUDE_FLAGGED)),
    checkpoint=Checkpoint(prepare=prepare_checkpoint, timer="ndb"),
)
