"""Outliers (indexer/curation.py): training images far from all others on either layer (noise,
off-topic), ranked by a robust z-score of their k-nearest-neighbour distance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modescope.indexer.analyses.registry import AnalysisSpec, Cli, Inputs, Option
from modescope.indexer.analyses.results import JsonRecord

if TYPE_CHECKING:
    from modescope.core.workspace import Workspace


@dataclass(frozen=True)
class LayerThreshold(JsonRecord):
    median: float
    mad: float
    suggested_threshold: float


@dataclass(frozen=True)
class OutlierRow(JsonRecord):
    id: int
    score: float  # robust z: the larger of the two layers'
    block1: float  # mean cosine distance to the k nearest others
    block5: float
    z_block1: float
    z_block5: float
    suggested: bool  # over the z threshold


@dataclass(frozen=True)
class OutliersResult(JsonRecord):
    weights: str
    trained: bool
    warning: str | None
    k: int
    z_threshold: float
    thresholds: dict[str, LayerThreshold]
    suggested: int
    ranked: tuple[OutlierRow, ...]  # most unusual first


def compute(ws: Workspace, run: None, *, k: int | None = None,
            z: float | None = None) -> OutliersResult:
    from modescope.indexer import curation
    from modescope.indexer.inputs import header, load_vectors

    ids, vecs, meta = load_vectors(ws, "train")
    found = curation.outliers(vecs, ids, k=curation.OUTLIER_K if k is None else k,
                              z_threshold=curation.OUTLIER_Z if z is None else z)
    return OutliersResult.from_json({**header(meta), **found})


def lines(r: OutliersResult, o: Mapping[str, Any]) -> list[str]:
    return [
        f"{r.suggested} training images lie over median + {o['z']} MAD on a layer:",
        *[f"  #{row.id}: robust z {row.score:.2f} (block1 {row.z_block1:.2f}, "
          f"block5 {row.z_block5:.2f})" for row in r.ranked[:o["top"]]],
    ]


ANALYSIS = AnalysisSpec(
    name="outliers", title="outlier scores", version=1, rank=30, compute=compute,
    result_type=OutliersResult, inputs=Inputs(train=True),
    cli=Cli(help="Training images far from all others on either layer (noise, off-topic).",
            lines=lines, options=(
                Option("k", int, 10, "Neighbours in the distance score.", flags=("--k",)),
                Option("z", float, 3.0, "Robust z (median + z MAD) to suggest."),
                Option("top", int, 20, "How many to print.", display_only=True))),
)
