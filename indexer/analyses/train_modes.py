"""Mode bins of the training set alone (the /dataset "modes" view): k-means bins of the
descriptors as ``inspect modes`` makes them (PCA-whitened block1+block5, K = n/40 clamped to
2..100, seed 0), over every indexed training image, members closest to the centre first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modescope.indexer.analyses.registry import AnalysisSpec, Inputs
from modescope.indexer.analyses.results import JsonRecord

if TYPE_CHECKING:
    from modescope.core.workspace import Workspace

MIN_IMAGES = 8


@dataclass(frozen=True)
class TrainModesResult(JsonRecord):
    k: int
    members: tuple[tuple[int, ...], ...]  # per bin: training ids, closest to the centre first
    bin_of: dict[int, int]  # training id -> bin


def compute(ws: Workspace, run: None) -> TrainModesResult:
    import numpy as np

    from modescope.indexer import ndb
    from modescope.indexer.inputs import load_vectors

    ids, vecs, _ = load_vectors(ws, "train")
    if len(ids) < MIN_IMAGES:
        raise ValueError(f"only {len(ids)} training images are indexed; modes need "
                         f"{MIN_IMAGES}")
    fitted = ndb.ModeBins(vecs, seed=0)
    x, k, centroids, bins = fitted.train, fitted.k, fitted.centroids, fitted.train_bins
    members = []
    for b in range(k):
        rows = np.flatnonzero(bins == b)
        rows = rows[np.argsort(-(x[rows] @ centroids[b]), kind="stable")]
        members.append(tuple(int(ids[r]) for r in rows))
    bin_of = dict(zip(ids.tolist(), bins.tolist(), strict=True))
    return TrainModesResult(k, tuple(members), bin_of)


ANALYSIS = AnalysisSpec(
    name="train-modes", title="mode bins", version=1, rank=60, compute=compute,
    result_type=TrainModesResult, inputs=Inputs(train=True),
)
