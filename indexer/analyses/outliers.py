"""Outliers (indexer/outlier_scores.py): training images that do not fit the set (noise,
off-topic), ranked by the mean percentile of their k-NN distances on both layers and, where the
images sit in labelled subfolders, of how far they are from their own label and how many of
their neighbours carry another label; each image's score pooled with its block1 neighbours'."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modescope.core.errors import InputError
from modescope.indexer.analyses.registry import AnalysisSpec, Cli, Inputs, Option
from modescope.indexer.analyses.results import JsonRecord

if TYPE_CHECKING:
    from modescope.core.workspace import Workspace


@dataclass(frozen=True)
class OutlierRow(JsonRecord):
    id: int
    score: float  # own score pooled with its block1 neighbours' (``pool``), in (0, 1]
    own: float  # weighted mean of its own percentiles, in (0, 1]
    label: str | None  # the label it was judged against (None: no labels)
    scores: dict[str, float]  # raw: far_block1 ... (cosine distance), mismatch_* (a share)
    percentiles: dict[str, float]  # each raw score's percentile among the training images
    suggested: bool  # score >= unusual


@dataclass(frozen=True)
class OutliersResult(JsonRecord):
    weights: str
    trained: bool
    warning: str | None
    k: int
    label_k: int
    block1_weight: float
    pool: float  # share of the score taken from the block1 neighbours' own scores
    unusual: float
    labels: int  # labels used (0: none, only the k-NN distance)
    weights_of: dict[str, float]  # each score's weight in the mean
    suggested: int
    ranked: tuple[OutlierRow, ...]  # most unusual first
    exact: bool  # the k-NN graph searched exactly (False: approximately, a large set)


def _share(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise InputError("--block1-weight, --pool and --unusual are shares, between 0 and 1")
    return value


def compute(ws: Workspace, run: None, *, k: int | None = None, label_k: int | None = None,
            block1_weight: float | None = None, unusual: float | None = None,
            pool: float | None = None, use_labels: bool = True) -> OutliersResult:
    from modescope.core.catalog import Catalog
    from modescope.indexer import outlier_scores as os_
    from modescope.indexer.inputs import header, load_vectors

    ids, vecs, meta = load_vectors(ws, "train")
    labels = None
    if use_labels:
        with Catalog.reading(ws.catalog_path) as catalog:
            label_of = {r.id: r.label for r in catalog.images("ok", limit=10**9)}
        labels = [label_of.get(int(i)) for i in ids.tolist()]
    found = os_.outliers(
        vecs, ids, labels, k=os_.OUTLIER_K if k is None else k,
        label_k=os_.LABEL_K if label_k is None else label_k,
        block1_weight=os_.BLOCK1_WEIGHT if block1_weight is None else block1_weight,
        unusual=os_.UNUSUAL if unusual is None else unusual,
        pool=os_.POOL if pool is None else pool)
    found["weights_of"] = found.pop("weights")
    return OutliersResult.from_json({**header(meta), **found})


def lines(r: OutliersResult, o: Mapping[str, Any]) -> list[str]:
    basis = (f"{r.labels} labels" if r.labels else "no labels: k-NN distance only")
    return [
        f"{r.suggested} training images score at least {r.unusual:g} (mean percentile; "
        f"{basis}):",
        *[f"  #{row.id}: {row.score:.3f}" + (f" ({row.label})" if row.label else "")
          for row in r.ranked[:o["top"]]],
    ]


ANALYSIS = AnalysisSpec(
    name="outliers", title="outlier scores", version=4, rank=30, compute=compute,
    result_type=OutliersResult, inputs=Inputs(train=True),
    cli=Cli(help="Training images that do not fit the set (noise, off-topic): far from the "
                 "others, from their own label, or among another label's images.",
            lines=lines, options=(
                Option("k", int, 10, "Neighbours in the distance scores.", flags=("--k",)),
                Option("label_k", int, 20, "Neighbours whose labels are compared."),
                Option("block1_weight", float, 0.0,
                       "Share of block1 in the distance scores (the rest: block5).",
                       parse=_share),
                Option("pool", float, 0.5,
                       "Share of each score taken from its --k nearest images on block1 "
                       "(strays of one kind keep each other company; 0: its own only).",
                       parse=_share),
                Option("unusual", float, 0.8,
                       "Mean percentile from which an image is suggested as unusual.",
                       parse=_share),
                Option("use_labels", bool, True,
                       "Use the subfolder labels (--no-use-labels: distances only)."),
                Option("top", int, 20, "How many to print.", display_only=True))),
)
