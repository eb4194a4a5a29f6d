"""Training-set curation aids: near-duplicate groups and "more like these" (outliers:
indexer/outlier_scores.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modescope.indexer.ndb import combined

OUTLIER_K = 10
# near-duplicates: closer than this share of the median nearest-neighbour distance on *both*
# layers (planted near-duplicates of the demo data reach 0.61; docs/inspection.md)
NEAR_DUP_RATIO = 0.65
MIN_FLAGS_FOR_MODEL = 5
SUGGEST_C = 0.01
MAX_NEGATIVES = 3000


def knn_distance(vectors: np.ndarray, k: int = OUTLIER_K, rows: np.ndarray | None = None
                 ) -> np.ndarray:
    """Mean cosine distance of each vector (or of the vectors at ``rows``) to its k nearest
    other vectors: from the shared graph (indexer/graph.py) when this process has it or all
    rows are asked, else by searching only ``rows``."""
    from modescope.indexer import graph

    k = min(k, len(vectors) - 1)
    if k < 1:
        raise ValueError("outliers need at least 2 training images")
    g = graph.cached(vectors)
    if g is not None and g.k >= k:
        sims = g.sims[:, :k] if rows is None else g.sims[rows, :k]
    elif rows is None:
        sims = graph.self_knn(vectors, k).sims
    else:
        sims = graph.nearest_others(vectors, k, rows).sims
    return 1.0 - sims.astype(np.float64).mean(axis=1)


def median_nn_distance(vectors: np.ndarray, sample: int = 2000, seed: int = 0) -> float:
    """Median distance to the nearest other vector, from a seeded sample of queries."""
    rows = np.arange(len(vectors))
    if len(rows) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(rows, sample, replace=False))
    return float(np.median(knn_distance(vectors, 1, rows)))


@dataclass
class _UnionFind:
    parent: dict[int, int]

    def find(self, a: int) -> int:
        while self.parent.setdefault(a, a) != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicates(train: dict[str, np.ndarray], ids: np.ndarray,
                    exact: list[tuple[int, int]] | None = None,
                    threshold: float | None = None,
                    ratio: float = NEAR_DUP_RATIO) -> dict[str, Any]:
    """Groups of near-duplicate training images, merged with the exact duplicates ingest found
    (pairs of duplicate id, ok id).

    By default a pair is near-duplicate when, on each layer, its cosine distance is under
    ``ratio`` times that layer's median nearest-neighbour distance: the rule adapts to how
    spread out the descriptors are (trained or untrained weights). Candidates are block1's pairs
    within its limit, read from the shared k-NN graph (indexer/graph.py, exact); each is checked
    on block5. With ``threshold`` the rule is simply: combined cosine similarity above it (one
    range search on both layers combined).
    """
    from modescope.indexer import graph

    limits: dict[str, float] = {}
    pairs: dict[tuple[int, int], float] = {}
    uf = _UnionFind({})
    if threshold is None:
        b1, b5 = train["block1"], train["block5"]
        g1 = graph.self_knn(b1, min(graph.GRAPH_K, len(b1) - 1)) if len(ids) >= 2 else None
        for layer in ("block1", "block5"):
            limits[layer] = ratio * median_nn_distance(train[layer])
        radius = 1.0 - (limits["block1"] + limits["block5"]) / 2
        if g1 is not None:
            # a pair within both limits is within block1's: its pairs, from the shared graph,
            # checked on block5; a pair's similarity is the combined one, the mean of both
            near = graph.pairs_within(b1, 1.0 - limits["block1"], g1)
            for (i, j), s1 in sorted(near.items()):
                s5 = float(b5[i] @ b5[j])
                if 1.0 - s5 > limits["block5"]:
                    continue
                a, b = int(ids[i]), int(ids[j])
                uf.union(a, b)
                pairs[(min(a, b), max(a, b))] = (s1 + s5) / 2
    else:
        import faiss

        radius = float(threshold)
        vecs = combined(train["block1"], train["block5"])
        index = faiss.IndexFlatIP(vecs.shape[1])
        index.add(vecs)
        lims, sims, found = index.range_search(vecs, radius)
        for i in range(len(vecs)):
            for j, s in zip(found[lims[i]:lims[i + 1]], sims[lims[i]:lims[i + 1]], strict=True):
                if j <= i:
                    continue
                a, b = int(ids[i]), int(ids[j])
                uf.union(a, b)
                pairs[(a, b)] = float(s)
    for dup, original in exact or []:
        uf.union(int(dup), int(original))
    groups: dict[int, list[int]] = {}
    for member in list(uf.parent):
        groups.setdefault(uf.find(member), []).append(member)
    exact_ids = {int(d) for d, _ in exact or []}
    out = []
    for root, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        inside = [s for (a, b), s in pairs.items() if a in members and b in members]
        out.append({"group": root, "ids": sorted(members),
                    "exact_duplicates": sorted(m for m in members if m in exact_ids),
                    "min_similarity": round(min(inside, default=1.0), 6)})
    rule = ({"ratio_of_median_nn_distance": ratio,
             "max_distance": {k: round(v, 6) for k, v in limits.items()}}
            if limits else {"min_combined_similarity": radius})
    return {"rule": rule, "threshold": round(radius, 6), "groups": out,
            "near_pairs": len(pairs), "exact_pairs": len(exact or [])}


def suggest(train: dict[str, np.ndarray], ids: np.ndarray, flagged: set[int],
            kept: set[int] | None = None, top: int = 20, seed: int = 0) -> dict[str, Any]:
    """Rank unflagged, unreviewed training images by how much they look like the flagged ones.

    With at least 5 flags, a logistic regression on both layers' standardised descriptors:
    flagged = 1 against every other image = 0 (mostly good; the kept ids, which the user
    reviewed and kept, always among them, the rest sampled down to ``MAX_NEGATIVES``). With
    fewer flags, the highest cosine similarity to any flagged image. Kept images are never
    suggested again.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    vecs = combined(train["block1"], train["block5"])
    pos = np.array([i in flagged for i in ids.tolist()])
    if not pos.any():
        raise ValueError("flag at least one training image to get suggestions")
    kept = (kept or set()) - flagged
    was_kept = np.array([i in kept for i in ids.tolist()])
    candidates = ~pos & ~was_kept
    if pos.sum() >= MIN_FLAGS_FOR_MODEL:
        neg = _negatives(~pos, was_kept, seed)
        x = np.concatenate([vecs[pos], vecs[neg]])
        y = np.concatenate([np.ones(pos.sum()), np.zeros(neg.sum())])
        # standardised features make C mean the same for trained and untrained descriptors;
        # strong regularisation suits a handful of flags (docs/inspection.md has the sweep).
        # Standardised in place (x and vecs are this function's own copies): a copy of every
        # image's 2,048 values was half of its 3.4 s at 110,000 images
        model = make_pipeline(StandardScaler(copy=False), LogisticRegression(
            class_weight="balanced", C=SUGGEST_C, max_iter=5000, random_state=seed))
        model.fit(x, y)
        scores = model.predict_proba(vecs)[:, 1]
        method = "logistic regression"
    else:
        scores = (vecs @ vecs[pos].T).max(axis=1)
        method = "nearest flagged image"
    order = [i for i in np.argsort(-scores, kind="stable") if candidates[i]][:top]
    return {"method": method, "flagged": int(pos.sum()), "kept": len(kept & set(ids.tolist())),
            "suggestions": [{"id": int(ids[i]), "score": round(float(scores[i]), 6)}
                            for i in order]}


def _negatives(unflagged: np.ndarray, kept: np.ndarray, seed: int) -> np.ndarray:
    """The negatives' mask: every kept image, and the other unflagged ones up to
    ``MAX_NEGATIVES`` in all (a seeded sample is as informative and much faster)."""
    rest = np.flatnonzero(unflagged & ~kept)
    room = max(MAX_NEGATIVES - int(kept.sum()), 0)
    if len(rest) > room:
        rest = np.random.default_rng(seed).choice(rest, room, replace=False)
    neg = kept.copy()
    neg[rest] = True
    return neg
