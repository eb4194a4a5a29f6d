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

Sets of more than ``EXACT_UP_TO`` vectors are searched approximately (``approximate``): an exact
search costs n^2 d, 250 s for the two layers of 110,000 images on two cores, and an inverted
file over a PCA projection finds nearly the same neighbours in about 10 s. The candidates
it finds are reranked by their exact similarity in the full dimension, so every similarity a
graph holds is exact and only a neighbour may be missed (the graph says so: ``exact`` False).
bench/inspect_bench.py measures its recall against the exact search on every run.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

GRAPH_K = 32  # neighbours kept per vector: every analysis's k (10, 20, 5 + 1) and some margin
MAX_CACHED = 6  # graphs kept per process (a set's two layers, a run's samples, ...): ~40 MB each
# at 100k vectors
# approximate search of larger sets: PCA to PCA_DIMS (a seeded sample of PCA_SAMPLE rows), an
# inverted file of 4 sqrt(n) cells (FAISS IVF, L2 in the projection, each row's offset from its
# cell's centre kept in 8 bits a dimension: the same recall as 32-bit floats to 1e-4 on the real
# descriptors below, a quarter less search time), NPROBE cells searched per query, CANDIDATES
# (at least 1.5 x the k asked) found and reranked exactly in the full dimension. Chosen on
# 110,000 real descriptors of augmented demo images (random weights): recall@10 0.984 on block5
# and 0.998 on block1 against the exact search, in about 5 s a layer against 116 s
# (bench/inspect_bench.py --recall-on; 14 s before the reranking moved into FAISS, 7-8 s before
# the 8-bit codes and the shorter k-means)
EXACT_UP_TO = 20_000
# a part of a set searched approximately (a label's images) is searched exactly up to this many
# rows (at most 2,000 x 110,000 pairs over every label), else approximately (``Approximate.part``)
EXACT_PART = 2_000
CROSS_K = 128  # a query's nearest kept (``nearest_in``): prdc's balls are read from them
PCA_DIMS = 128
PCA_SAMPLE = 20_000
NPROBE = 16
CANDIDATES = 64
# k-means iterations that train the cells (FAISS's default 25): on the 110,000 real descriptors
# recall@10 over 3,000 rows 0.999 / 0.984 (block1 / block5) with 25, 0.999 / 0.983 with 10, and a
# layer's search built in 2.6 s instead of 4.5
CELL_ITERATIONS = 10
MAX_APPROXIMATE = 4  # approximate searches kept per process: a set's two layers, a part's two


@dataclass(frozen=True)
class Graph:
    """Each row's nearest other rows, nearest first."""

    sims: np.ndarray  # (n, k) float32 cosine similarity
    rows: np.ndarray  # (n, k) int64 row numbers
    exact: bool = True  # False: searched approximately (a neighbour may be missing)

    @property
    def k(self) -> int:
        return int(self.sims.shape[1])

    def first(self, k: int) -> Graph:
        if k > self.k:
            raise ValueError(f"the graph holds {self.k} neighbours, not {k}")
        return Graph(self.sims[:, :k], self.rows[:, :k], self.exact)


Key = tuple[tuple[int, ...], bytes]


@dataclass(frozen=True)
class Subset:
    """A set's rows that are another set (``subset_of``)."""

    whole: Key
    rows: np.ndarray  # row numbers in the whole set
    vectors: np.ndarray  # the whole set's


_cache: OrderedDict[Key, Graph] = OrderedDict()
# subsets of a set (the curated training images among every indexed one), by the subset's key:
# its graph is read from its set's where that was searched, its approximate search is the set's
_subsets: OrderedDict[Key, Subset] = OrderedDict()
_lock = threading.Lock()
# id -> (the array, its key); no lock: the weakref's callback may run while _lock is held, and
# a dict's get, set and pop are each atomic (a lost race only recomputes a key)
_keys: dict[int, tuple[weakref.ref[np.ndarray], Key]] = {}


def _key(x: np.ndarray) -> Key:
    """The vectors' content, as a key: CRC-32 of every byte (7 GB/s here; a cryptographic hash
    of 400 MB took 0.3 s) and BLAKE2 of every 97th row, so that two sets sharing a key share 96
    bits of checksum. An array that owns its values is keyed once: it is made read-only (a
    write to it raises from then on, so the key cannot go stale) and its key kept while it
    lives; the analyses key each set many times (a set's graph, its labels' parts, its
    approximate search, its cross searches: 3 s of checksums at 110,000 images)."""
    own = x.base is None
    if own:
        hit = _keys.get(id(x))
        if hit is not None and hit[0]() is x:
            return hit[1]
    rows = np.ascontiguousarray(x[::97])
    key = x.shape, zlib.crc32(x.data).to_bytes(4, "little") + hashlib.blake2b(
        rows.data, digest_size=8).digest()
    if own:
        x.flags.writeable = False
        ident = id(x)
        _keys[ident] = (weakref.ref(x, lambda _: _keys.pop(ident, None)), key)
    return key


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
            whole = _cache.get(parent.whole) if parent is not None else None
        if parent is not None and whole is not None and whole.k >= k:
            graph = _restricted(x, whole, parent.rows, k, parent.whole)
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
    that ``self_knn(part)`` reads ``whole``'s graph where this process has searched it, and a
    large part is searched approximately by the whole set's search restricted to it
    (``approximate``)."""
    picked = np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows, np.int64)
    x = _unit_rows(whole)
    entry = Subset(_key(x), picked, x)
    with _lock:
        _subsets[_key(_unit_rows(part))] = entry
        while len(_subsets) > MAX_CACHED:
            _subsets.popitem(last=False)


def within(vectors: np.ndarray, rows: np.ndarray, k: int) -> Graph:
    """Each of ``rows``' k nearest others among ``rows`` (row numbers of the subset), read
    from the whole set's graph where this process has searched it (rows that keep fewer than k
    of their neighbours in the subset are searched again), else searched; nothing kept."""
    x = _unit_rows(vectors)
    part = np.ascontiguousarray(x[rows])
    key = _key(x)
    with _lock:
        whole = _cache.get(key)
    if whole is not None and whole.k >= k:
        return _restricted(part, whole, np.asarray(rows, np.int64), k, key)
    return nearest_others(part, k)


def _restricted(x: np.ndarray, whole: Graph, rows: np.ndarray, k: int, whole_key: Key
                ) -> Graph:
    """The graph of ``x`` = the whole set's ``rows``, read from the whole set's: each row's
    neighbours that are in the subset, in order; rows with fewer than k of them among the
    whole graph's (a subset that leaves out most of a row's neighbourhood, as a label's images
    do where labels mix) are searched again within the subset: exactly, or where the whole set
    was searched approximately and the subset holds more than ``EXACT_PART`` rows, by the
    whole set's approximate search restricted to the subset (``Approximate.part``)."""
    pos = np.full(len(whole.rows), -1, np.int64)
    pos[rows] = np.arange(len(rows))
    mapped = pos[whole.rows[rows]]
    inside = mapped >= 0
    order = np.argsort(~inside, axis=1, kind="stable")[:, :k]  # the subset's first, in order
    out_rows = np.take_along_axis(mapped, order, axis=1)
    out_sims = np.take_along_axis(whole.sims[rows], order, axis=1)
    short = np.flatnonzero(inside.sum(axis=1) < k)
    if len(short):
        with _lock:
            search = _approximate.get(whole_key) if not whole.exact else None
        if search is not None and len(x) > EXACT_PART:
            again = _others(search.part(rows).search(x[short], k + 1, rows=short), short, k)
        else:
            again = nearest_others(x, k, queries=short)
        out_rows[short], out_sims[short] = again.rows, again.sims
    return Graph(np.ascontiguousarray(out_sims), np.ascontiguousarray(out_rows),
                 whole.exact and (not len(short) or len(x) <= EXACT_UP_TO))


def nearest_others(vectors: np.ndarray, k: int, queries: np.ndarray | None = None) -> Graph:
    """Each row's (or each of the ``queries`` rows') k nearest other rows of ``vectors``, by one
    search (approximate above ``EXACT_UP_TO`` rows), nothing kept (``self_knn`` keeps)."""
    x = _unit_rows(vectors)
    q = np.arange(len(x)) if queries is None else np.asarray(queries, np.int64)
    qx = x if queries is None else x[q]
    if len(x) > EXACT_UP_TO:  # the rows' projections are the search's own
        return _others(approximate(x).search(qx, k + 1, rows=q), q, k)
    return _others(nearest_in(x, qx, k + 1), q, k)


def _others(found: Graph, q: np.ndarray, k: int) -> Graph:
    """``found``: the k + 1 nearest of rows ``q`` in their own set; the k others."""
    n = len(q)
    own = found.rows == q[:, None]
    # drop the row itself (or, where exact twins hid it, the farthest of the k + 1)
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    kept = np.ones_like(own)
    kept[np.arange(n), drop] = False
    return Graph(found.sims[kept].reshape(n, k), found.rows[kept].reshape(n, k), found.exact)


_crossed: OrderedDict[tuple[Key, Key], Graph] = OrderedDict()


def nearest_in(base: np.ndarray, queries: np.ndarray, k: int, *, keep: bool = False) -> Graph:
    """Each query's k nearest rows of ``base`` (cosine similarity, nearest first): exact (FAISS
    flat) up to ``EXACT_UP_TO`` base rows, else ``approximate``. ``keep``: remember at least
    ``CROSS_K`` of them for the next caller with these queries and this base (memorisation's
    nearest training images and prdc's balls are one search)."""
    import faiss

    x, q = _unit_rows(base), _unit_rows(queries)
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"queries are {q.shape[1]}-d, the base {x.shape[1]}-d")
    if not 1 <= k <= len(x):
        raise ValueError(f"k={k} nearest of {len(x)} vectors")
    key = (_key(x), _key(q)) if keep else None
    if key is not None:
        with _lock:
            hit = _crossed.get(key)
        if hit is not None and hit.k >= k:
            return hit.first(k)
    want = min(len(x), max(k, CROSS_K)) if keep else k
    if len(x) > EXACT_UP_TO:
        found = approximate(x).search(q, want)
    else:
        index = faiss.IndexFlatIP(x.shape[1])
        index.add(x)
        sims, rows = index.search(q, want)
        found = Graph(sims.astype(np.float32, copy=False), rows.astype(np.int64, copy=False))
    if key is not None:
        with _lock:
            _crossed[key] = found
            while len(_crossed) > MAX_CACHED:
                _crossed.popitem(last=False)
    return found.first(k)


@dataclass(frozen=True)
class Approximate:
    """A set's approximate search: PCA to ``PCA_DIMS``, an inverted file over the projection,
    candidates per query reranked by their exact similarity in the full dimension."""

    base: np.ndarray
    mean: np.ndarray  # (d,) the PCA's centre
    axes: np.ndarray  # (d, PCA_DIMS) its leading axes
    ivf: object  # faiss.IndexIVFScalarQuantizer over the projected base
    projected: np.ndarray  # (n, PCA_DIMS) the base's rows projected (a self-search's queries)

    def search(self, queries: np.ndarray, k: int, block: int = 16_384,
               rows: np.ndarray | None = None) -> Graph:
        """Each query's k nearest rows. ``rows``: the queries are these rows of the base,
        whose projections are kept (not projected again)."""
        import faiss

        ivf: faiss.IndexIVFScalarQuantizer = self.ivf  # type: ignore[assignment]
        n = len(queries)
        sims = np.empty((n, k), np.float32)
        found = np.empty((n, k), np.int64)
        for a in range(0, n, block):
            q = np.ascontiguousarray(queries[a:a + block])
            p = (_projected(q, self.mean, self.axes) if rows is None
                 else np.ascontiguousarray(self.projected[rows[a:a + block]]))
            _, cand = ivf.search(p, max(CANDIDATES, k + k // 2))
            exact = reranked(self.base, q, cand)
            order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
            sims[a:a + block] = np.take_along_axis(exact, order, axis=1)
            found[a:a + block] = np.take_along_axis(cand, order, axis=1)
        short = np.flatnonzero((found < 0).any(axis=1))
        if len(short):  # the probed cells held fewer than k images: those queries exactly
            index = faiss.IndexFlatIP(self.base.shape[1])
            index.add(self.base)
            s, r = index.search(np.ascontiguousarray(queries[short]), k)
            sims[short], found[short] = s, r
        return Graph(sims, found, exact=False)

    def part(self, rows: np.ndarray, vectors: np.ndarray | None = None) -> Approximate:
        """The same search over some of the rows only (``rows``: row numbers; the part's rows
        are numbered in their order): the whole set's projection and cells, each cell holding
        only the part's rows, and proportionally more cells probed, so that a query scans
        about as many candidates as in the whole set. A label's images among a large set are
        searched in 0.7 s where an exact search took 1.9 s (13,750 of 110,000 rows, 1,024-d;
        bench/inspect_bench.py measures its recall). ``vectors``: the part's rows where the
        caller has them already (``self.base[rows]``)."""
        import faiss

        ivf: faiss.IndexIVFScalarQuantizer = self.ivf  # type: ignore[assignment]
        base = np.ascontiguousarray(self.base[rows] if vectors is None else vectors)
        # a copy of the trained index (cells and codes' ranges; its own, so it cannot outlive
        # the whole's), emptied and given the part's rows
        sub: faiss.IndexIVFScalarQuantizer = faiss.clone_index(ivf)  # type: ignore[assignment]
        sub.reset()
        projected = np.ascontiguousarray(self.projected[rows])
        sub.add(projected)
        sub.nprobe = min(ivf.nlist, int(np.ceil(ivf.nprobe * len(self.base) / max(1, len(base)))))
        return Approximate(base, self.mean, self.axes, sub, projected)


def reranked(base: np.ndarray, queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Each query's exact similarity to each of its candidates (rows of ``base``; -1: none,
    -inf). FAISS's by-index inner products, on every core: numpy's gather of the candidates'
    rows before a product copied 29 GB for 110,000 queries' 64 candidates (2.5 s per 8,192
    queries against 0.06 s)."""
    import faiss

    n, c = candidates.shape
    rows = np.ascontiguousarray(np.maximum(candidates, 0), dtype=np.int64)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    base = np.ascontiguousarray(base, dtype=np.float32)
    if rows.size and int(rows.max()) >= len(base):  # FAISS reads past the base otherwise
        raise IndexError(f"candidate {int(rows.max())} of a base of {len(base)} rows")
    out = np.empty((n, c), np.float32)
    by_idx = faiss.fvec_inner_products_by_idx  # type: ignore[attr-defined]  # not in its stubs
    by_idx(faiss.swig_ptr(out), faiss.swig_ptr(q), faiss.swig_ptr(base), faiss.swig_ptr(rows),
           base.shape[1], n, c)
    out[candidates < 0] = -np.inf  # fewer candidates than asked (tiny cells)
    return out


def _projected(x: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Rows of ``x`` centred and projected on the PCA's ``axes``, 16,384 rows at a time."""
    out = np.empty((len(x), axes.shape[1]), np.float32)
    for a in range(0, len(x), 16_384):
        out[a:a + 16_384] = (x[a:a + 16_384] - mean) @ axes
    return out


_approximate: OrderedDict[Key, Approximate] = OrderedDict()


def approximate(vectors: np.ndarray) -> Approximate:
    """The approximate search of these vectors, built once per process (seeded: the same
    vectors give the same index). A part of a larger set (``subset_of``: the curated training
    images among every indexed one) is searched by the larger set's search restricted to it
    (``Approximate.part``), so the two share one projection and one set of cells (training
    those cells took 1.5 s a layer at 100,000 images)."""
    x = _unit_rows(vectors)
    key = _key(x)
    with _lock:
        hit = _approximate.get(key)
        parent = _subsets.get(key)
    if hit is not None:
        return hit
    built = (approximate(parent.vectors).part(parent.rows, x)
             if parent is not None and len(parent.vectors) > EXACT_UP_TO else _built(x))
    with _lock:
        _approximate[key] = built
        while len(_approximate) > MAX_APPROXIMATE:
            _approximate.popitem(last=False)
    return built


def _built(x: np.ndarray) -> Approximate:
    """A new approximate search of ``x``: PCA on a seeded sample, cells trained on another."""
    import faiss

    rng = np.random.default_rng(0)
    n, d = x.shape
    dims = min(PCA_DIMS, d)
    sample = x[np.sort(rng.choice(n, min(n, PCA_SAMPLE), replace=False))].astype(np.float64)
    mean = sample.mean(axis=0)
    centred = sample - mean
    _, vecs = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    axes = np.ascontiguousarray(vecs[:, ::-1][:, :dims], dtype=np.float32)
    centre = mean.astype(np.float32)
    y = _projected(x, centre, axes)
    cells = max(1, min(int(4 * np.sqrt(n)), n // 39))  # FAISS wants 39 training rows a cell
    ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatL2(dims), dims, cells,
                                        faiss.ScalarQuantizer.QT_8bit)
    ivf.cp.seed = 1234
    ivf.cp.niter = CELL_ITERATIONS
    ivf.train(y[np.sort(rng.choice(n, min(n, 39 * cells), replace=False))])
    ivf.add(y)
    ivf.nprobe = min(NPROBE, cells)
    return Approximate(x, centre, axes, ivf, y)


def pairs_within(vectors: np.ndarray, min_similarity: float, graph: Graph
                 ) -> dict[tuple[int, int], float]:
    """Every pair of rows (i < j) whose cosine similarity is at least ``min_similarity``, with
    it. A row whose graph's last neighbour is less similar has all its pairs in the graph
    (where the search was exact; an approximate graph may miss one, though a pair this close is
    the kind it finds best); the rows whose neighbours are all that similar (more may be) are
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
