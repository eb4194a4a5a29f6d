"""Outlier scores of the training images (docs/inspection.md, "Outliers").

Each image gets up to three scores per layer, each turned into its percentile among the
training images (rank-normalised, so the layers and the scores share one scale):

- ``far``: mean cosine distance to its k nearest other images (the k-NN distance of Ramaswamy et
  al. 2000);
- ``far_in_label``: the same among the images of its own label (its subfolder): an off-topic
  image sits far from its label's images even when other strays keep it company;
- ``mismatch``: the share of its ``label_k`` nearest images that carry another label (the k-NN
  label-noise score of Wilson 1972 and Northcutt et al. 2021's self-confidence, without a
  classifier): strays injected into every folder are each other's neighbours, with mixed labels.

An image's own score is the weighted mean of the percentiles: the density scores (``far``,
``far_in_label``) weigh block1 by ``block1_weight`` and block5 by the rest; ``mismatch`` weighs
both layers equally. Without labels (one folder) only ``far`` counts.

Its ranking score pools that with its style neighbourhood: ``(1 - pool)`` of its own score plus
``pool`` times the mean own score of its k nearest images on block1 (colour and texture). Strays
of one kind (clip art among icons, photos among drawings) keep each other company, so each
stray's neighbours carry the same weak evidence and pooling it separates them from an on-topic
image that is unusual on one score alone (smoothing a score over a k-NN graph, as in label
propagation, Zhou et al. 2004). An image is suggested as unusual when its score is at least
``unusual``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LAYERS = ("block1", "block5")
OUTLIER_K = 10
LABEL_K = 20
# chosen on the harness's clipart set, never on the sets that report (docs/validation.md)
BLOCK1_WEIGHT = 0.0
POOL = 0.5
UNUSUAL = 0.8


def neighbours(vectors: np.ndarray, k: int, *, keep: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """(cosine distances, rows) of each row's k nearest other rows, nearest first (the shared
    graph, indexer/graph.py; ``keep`` False for one-off subsets)."""
    from modescope.indexer.graph import self_knn

    k = min(k, len(vectors) - 1)
    if k < 1:
        raise ValueError("outliers need at least 2 training images")
    g = self_knn(vectors, k, keep=keep)
    return (1.0 - g.sims).astype(np.float64), g.rows


def percentile(scores: np.ndarray) -> np.ndarray:
    """Each score's mid-rank over n (ties share one): in (0, 1], larger = more unusual."""
    from scipy.stats import rankdata

    return np.asarray(rankdata(scores, method="average"), dtype=np.float64) / len(scores)


def far_in_label(vectors: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean distance to the k nearest images of the same label (fewer in a small label; an
    image alone in its label scores its distance to everything, as ``far``)."""
    from modescope.indexer import graph

    out = np.empty(len(vectors))
    whole: np.ndarray | None = None  # distances over the whole set, searched once if needed
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) < 2:
            if whole is None:
                whole = neighbours(vectors, k)[0]
            out[rows] = whole[rows].mean(axis=1)
            continue
        out[rows] = 1.0 - graph.within(vectors, rows, min(k, len(rows) - 1)).sims.astype(
            np.float64).mean(axis=1)
    return out


def usable_labels(labels: list[str | None] | None) -> np.ndarray | None:
    """The labels as an array, or None when they cannot tell images apart (fewer than two)."""
    if labels is None:
        return None
    arr = np.array(["" if v is None else v for v in labels])
    return arr if len(np.unique(arr)) >= 2 else None


Neighbours = dict[str, tuple[np.ndarray, np.ndarray]]  # layer -> (distances, rows)


def component_scores(train: dict[str, np.ndarray], labels: np.ndarray | None, k: int,
                     label_k: int, found_by_layer: Neighbours,
                     block1_weight: float | None = None) -> dict[str, np.ndarray]:
    """Raw scores by name (``far_block1``, ``far_in_label_block5``, ``mismatch_block1``...);
    ``found_by_layer``: each layer's ``neighbours`` for at least k (and label_k) rows. With
    ``block1_weight`` 0 or 1, the distance within labels (a search per label) is left out on
    the layer that weighs nothing."""
    out: dict[str, np.ndarray] = {}
    idle = {0.0: "block1", 1.0: "block5"}.get(block1_weight) if block1_weight is not None \
        else None
    for layer in LAYERS:
        dist, found = found_by_layer[layer]
        out[f"far_{layer}"] = dist[:, :k].mean(axis=1)
        if labels is not None:
            if layer != idle:
                out[f"far_in_label_{layer}"] = far_in_label(train[layer], labels, k)
            out[f"mismatch_{layer}"] = (labels[found[:, :label_k]] != labels[:, None]).mean(axis=1)
    return out


def weights(names: list[str], block1_weight: float) -> dict[str, float]:
    """Each score's weight in the mean (summing to 1): per family, the layers' shares."""
    if not 0.0 <= block1_weight <= 1.0:
        raise ValueError("block1_weight is a share, between 0 and 1")
    families = sorted({n.rsplit("_", 1)[0] for n in names})
    share = {"block1": block1_weight, "block5": 1.0 - block1_weight}
    out = {}
    for n in names:
        family, layer = n.rsplit("_", 1)
        out[n] = (0.5 if family == "mismatch" else share[layer]) / len(families)
    return out


def pooled(own: np.ndarray, found: np.ndarray, pool: float) -> np.ndarray:
    """``(1 - pool) * own + pool * (the mean own score of each row's neighbours found)``."""
    if not 0.0 <= pool <= 1.0:
        raise ValueError("pool is a share, between 0 and 1")
    return (1.0 - pool) * own + pool * own[found].mean(axis=1)


def outliers(train: dict[str, np.ndarray], ids: np.ndarray,
             labels: list[str | None] | None = None, k: int = OUTLIER_K,
             label_k: int = LABEL_K, block1_weight: float = BLOCK1_WEIGHT,
             unusual: float = UNUSUAL, pool: float = POOL) -> dict[str, Any]:
    """Every training image ranked by the weighted mean percentile of its scores, pooled with
    its k nearest block1 neighbours' (``pool``)."""
    from modescope.indexer import graph

    if labels is not None and len(labels) != len(ids):
        raise ValueError("one label per training image")
    lab = usable_labels(labels)
    found_by_layer = {layer: neighbours(train[layer], max(k, label_k if lab is not None else 0))
                      for layer in LAYERS}
    raw = component_scores(train, lab, k, label_k, found_by_layer, block1_weight)
    w = weights(list(raw), block1_weight)
    pct = {n: percentile(s) for n, s in raw.items()}
    own = sum(w[n] * pct[n] for n in raw)
    assert isinstance(own, np.ndarray)
    score = pooled(own, found_by_layer["block1"][1][:, :k], pool)
    order = np.argsort(-score, kind="stable")
    # columns as Python floats first (a float() per value and row was half of this list's 3 s
    # at 110,000 images); the same values as before
    names = list(raw)
    raw_of = {n: raw[n][order].tolist() for n in names}
    pct_of = {n: pct[n][order].tolist() for n in names}
    label_of = [None] * len(order) if lab is None else lab[order].tolist()
    ranked = [{"id": i, "score": round(sc, 4), "own": round(ow, 4), "label": label,
               "scores": {n: round(raw_of[n][r], 6) for n in names},
               "percentiles": {n: round(pct_of[n][r], 4) for n in names},
               "suggested": sc >= unusual}
              for r, (i, sc, ow, label) in enumerate(zip(
                  ids[order].tolist(), score[order].tolist(), own[order].tolist(), label_of,
                  strict=True))]
    kept = [graph.cached(train[layer]) for layer in LAYERS]
    return {"k": k, "label_k": label_k, "block1_weight": block1_weight, "pool": pool,
            "exact": all(g is None or g.exact for g in kept),
            "unusual": unusual,
            "labels": 0 if lab is None else len(np.unique(lab)),
            "weights": {n: round(v, 4) for n, v in w.items()},
            "suggested": sum(r["suggested"] for r in ranked), "ranked": ranked}
