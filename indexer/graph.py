"""Each vector's nearest *other* vectors in its own set: the k-NN graph the analyses share.

Outliers (k-NN distances, label mismatch, pooling), near-duplicates (which pairs fall within a
distance on each layer), precision/recall/density/coverage (each image's k-NN radius) and the
twin rules (the median nearest-neighbour distance) all start from it. It is exact (FAISS flat
inner product over unit vectors: cosine similarity) and kept for the process, keyed by the
vectors' content: the dataset analyses of a workspace run one after another in one child
process (app/analyses.py), and at 100,000 images this search is most of their time
(bench/inspect_bench.py), so it runs once per layer instead of once per analysis. A graph holds
at least ``GRAPH_K`` neighbours, so one search serves every k up to it; a range query (pairs
within a distance) reads the graph and searches again only the rows whose ``GRAPH_K``
neighbours all fall inside the range (``pairs_within``). A subset of a set (the curated training
images among every indexed one: ``subset_of``) reads its graph from the set's when that was
searched: each row's neighbours that are in the subset, in order, searching again only rows that
keep fewer than k of them.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

GRAPH_K = 32  # neighbours kept per vector: every analysis's k (10, 20, 5 + 1) and some margin
MAX_CACHED = 6  # graphs kept per process (a set's two layers, a run's samples, ...): ~40 MB each
# at 100k vectors


@dataclass(frozen=True)
class Graph:
    """Each row's nearest other rows, nearest first."""

    sims: np.ndarray  # (n, k) float32 cosine similarity
    rows: np.ndarray  # (n, k) int64 row numbers

    @property
    def k(self) -> int:
        return int(self.sims.shape[1])

    def first(self, k: int) -> Graph:
        if k > self.k:
            raise ValueError(f"the graph holds {self.k} neighbours, not {k}")
        return Graph(self.sims[:, :k], self.rows[:, :k])


Key = tuple[tuple[int, ...], bytes]
_cache: OrderedDict[Key, Graph] = OrderedDict()
# subsets of a set (the curated training images among every indexed one): key -> (the set's
# key, which of its rows), so a subset's graph is read from its set's where that was searched
_subsets: OrderedDict[Key, tuple[Key, np.ndarray]] = OrderedDict()
_lock = threading.Lock()


def _key(x: np.ndarray) -> Key:
    return x.shape, hashlib.blake2b(x.data, digest_size=16).digest()


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected (n, d) vectors, got shape {x.shape}")
    return x


def cached(vectors: np.ndarray) -> Graph | None:
    """The graph of these vectors if this process has searched it already."""
    key = _key(_unit_rows(vectors))
    with _lock:
        return _cache.get(key)


def self_knn(vectors: np.ndarray, k: int, *, keep: bool = True) -> Graph:
    """Each row's k nearest other rows (k at most n - 1). ``keep``: remember the graph for the
    next caller (per-label subsets and other one-off sets pass False)."""
    x = _unit_rows(vectors)
    n = len(x)
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} nearest others need at least {k + 1} vectors, got {n}")
    key = _key(x) if keep else None
    graph: Graph | None = None
    if key is not None:
        with _lock:
            hit = _cache.get(key)
            if hit is not None and hit.k >= k:
                _cache.move_to_end(key)
                return hit.first(k)
            parent = _subsets.get(key)
            whole = _cache.get(parent[0]) if parent is not None else None
        if parent is not None and whole is not None and whole.k >= k:
            graph = _restricted(x, whole, parent[1], k)
    if graph is None:
        graph = nearest_others(x, max(k, min(GRAPH_K, n - 1)) if keep else k)
    if key is not None:
        with _lock:
            _cache[key] = graph
            _cache.move_to_end(key)
            while len(_cache) > MAX_CACHED:
                _cache.popitem(last=False)
    return graph.first(k)


def subset_of(whole: np.ndarray, rows: np.ndarray, part: np.ndarray) -> None:
    """Note that ``part`` is ``whole[rows]`` (``rows``: a boolean mask or row numbers), so
    that ``self_knn(part)`` reads ``whole``'s graph where this process has searched it."""
    picked = np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows, np.int64)
    entry = (_key(_unit_rows(whole)), picked)
    with _lock:
        _subsets[_key(_unit_rows(part))] = entry
        while len(_subsets) > MAX_CACHED:
            _subsets.popitem(last=False)


def _restricted(x: np.ndarray, whole: Graph, rows: np.ndarray, k: int) -> Graph:
    """The graph of ``x`` = the whole set's ``rows``, read from the whole set's: each row's
    neighbours that are in the subset, in order; rows with fewer than k of them among the
    whole graph's (a subset that leaves out most of a row's neighbourhood) are searched."""
    pos = np.full(len(whole.rows), -1, np.int64)
    pos[rows] = np.arange(len(rows))
    mapped = pos[whole.rows[rows]]
    inside = mapped >= 0
    order = np.argsort(~inside, axis=1, kind="stable")[:, :k]  # the subset's first, in order
    out_rows = np.take_along_axis(mapped, order, axis=1)
    out_sims = np.take_along_axis(whole.sims[rows], order, axis=1)
    short = np.flatnonzero(inside.sum(axis=1) < k)
    if len(short):
        again = nearest_others(x, k, queries=short)
        out_rows[short], out_sims[short] = again.rows, again.sims
    return Graph(np.ascontiguousarray(out_sims), np.ascontiguousarray(out_rows))


def nearest_others(vectors: np.ndarray, k: int, queries: np.ndarray | None = None) -> Graph:
    """Each row's (or each of the ``queries`` rows') k nearest other rows of ``vectors``, by one
    exact search, nothing kept (``self_knn`` keeps)."""
    import faiss

    x = _unit_rows(vectors)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    q = np.arange(len(x)) if queries is None else queries
    sims, found = index.search(x if queries is None else np.ascontiguousarray(x[q]), k + 1)
    n = len(q)
    own = found == q[:, None]
    # drop the row itself (or, where exact twins hid it, the farthest of the k + 1)
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    kept = np.ones_like(own)
    kept[np.arange(n), drop] = False
    return Graph(sims[kept].reshape(n, k).astype(np.float32, copy=False),
                 found[kept].reshape(n, k).astype(np.int64, copy=False))


def pairs_within(vectors: np.ndarray, min_similarity: float, graph: Graph
                 ) -> dict[tuple[int, int], float]:
    """Every pair of rows (i < j) whose cosine similarity is at least ``min_similarity``, with
    it. A row whose graph's last neighbour is less similar has all its pairs in the graph (the
    search was exact); the rows whose neighbours are all that similar (more may be) are
    searched again by an exact range search."""
    import faiss

    x = _unit_rows(vectors)
    full = graph.sims[:, -1] >= min_similarity
    out: dict[tuple[int, int], float] = {}
    inside = (graph.sims >= min_similarity) & ~full[:, None]
    for i, c in zip(*np.nonzero(inside), strict=True):
        j = int(graph.rows[i, c])
        out.setdefault((min(int(i), j), max(int(i), j)), float(graph.sims[i, c]))
    again = np.flatnonzero(full)
    if len(again):
        index = faiss.IndexFlatIP(x.shape[1])
        index.add(x)
        lims, sims, found = index.range_search(np.ascontiguousarray(x[again]), min_similarity)
        for q, i in enumerate(again.tolist()):
            for j, s in zip(found[lims[q]:lims[q + 1]].tolist(),
                            sims[lims[q]:lims[q + 1]].tolist(), strict=True):
                if j != i:
                    out.setdefault((min(i, j), max(i, j)), float(s))
    return out
