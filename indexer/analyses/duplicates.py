"""Near-duplicates (indexer/curation.py): groups of near-duplicate training images, merged with
the exact duplicates ingest found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modescope.indexer.analyses.registry import AnalysisSpec, Cli, Inputs, Option
from modescope.indexer.analyses.results import JsonRecord

if TYPE_CHECKING:
    from modescope.core.workspace import Workspace


@dataclass(frozen=True)
class DuplicateGroup(JsonRecord):
    group: int
    ids: tuple[int, ...]
    exact_duplicates: tuple[int, ...]  # members ingest found to be byte-identical copies
    min_similarity: float


@dataclass(frozen=True)
class DuplicatesResult(JsonRecord):
    weights: str
    trained: bool
    warning: str | None
    rule: dict[str, Any]  # the adaptive rule's limits, or the given minimum similarity
    threshold: float
    groups: tuple[DuplicateGroup, ...]
    near_pairs: int
    exact_pairs: int


def compute(ws: Workspace, run: None, *, threshold: float | None = None) -> DuplicatesResult:
    from modescope.core.catalog import Catalog
    from modescope.indexer import curation
    from modescope.indexer.inputs import header, load_vectors

    ids, vecs, meta = load_vectors(ws, "train")
    with Catalog.reading(ws.catalog_path) as catalog:
        exact = catalog.exact_duplicate_pairs()
    found = curation.near_duplicates(vecs, ids, exact, threshold)
    return DuplicatesResult.from_json({**header(meta), **found})


def lines(r: DuplicatesResult, _: Mapping[str, Any]) -> list[str]:
    return [
        f"{len(r.groups)} duplicate groups (cosine > {r.threshold:.6f}; "
        f"{r.exact_pairs} exact duplicates from ingest):",
        *[f"  {list(g.ids)}" for g in r.groups],
    ]


ANALYSIS = AnalysisSpec(
    name="duplicates", title="duplicate groups", version=1, rank=40, compute=compute,
    result_type=DuplicatesResult, inputs=Inputs(train=True),
    cli=Cli(help="Groups of near-duplicate training images, with ingest's exact duplicates.",
            lines=lines, options=(
                Option("threshold", float | None, None,
                       "Cosine similarity (both layers) above which images are near-duplicates "
                       "[default: adaptive, see docs/inspection.md]."),)),
)
