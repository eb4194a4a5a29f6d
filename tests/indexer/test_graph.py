"""The shared k-NN graph (indexer/graph.py) against brute force: the nearest others, the pairs
within a similarity (rows with more close neighbours than the graph holds included), and that a
second analysis reads the graph the first one searched."""

from __future__ import annotations

import numpy as np
import pytest

from modescope.indexer import graph
from modescope.indexer.curation import near_duplicates


def units(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_self_knn_is_each_rows_nearest_others_by_brute_force() -> None:
    x = units(np.random.default_rng(0), 80)
    g = graph.self_knn(x, 7, keep=False)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :7]
    assert (g.rows != np.arange(80)[:, None]).all()  # never the row itself
    np.testing.assert_allclose(g.sims, np.take_along_axis(sims, order, axis=1), atol=1e-5)
    with pytest.raises(ValueError, match="k=80"):
        graph.self_knn(x, 80)


def test_a_graph_is_kept_for_the_next_caller_and_serves_every_smaller_k() -> None:
    x = units(np.random.default_rng(1), 60)
    assert graph.cached(x) is None
    g = graph.self_knn(x, 5)
    kept = graph.cached(x)
    assert kept is not None and kept.k == min(graph.GRAPH_K, 59)  # searched once, for all k
    np.testing.assert_array_equal(graph.self_knn(x.copy(), 3).rows, g.rows[:, :3])
    assert graph.cached(units(np.random.default_rng(2), 60)) is None  # keyed by content


def test_pairs_within_equal_brute_force_also_where_the_graph_is_full() -> None:
    rng = np.random.default_rng(3)
    x = units(rng, 50)
    centre = x[0]
    # ten near-copies of one vector: each has more neighbours within the limit than the
    # 4-neighbour graph below holds, so those rows are searched again
    x[1:11] = centre + 0.01 * units(rng, 10)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t = 0.95
    found = graph.pairs_within(x, t, graph.self_knn(x, 4, keep=False))
    sims = x @ x.T
    want = {(i, j) for i in range(50) for j in range(i + 1, 50) if sims[i, j] >= t}
    assert len(want) >= 55 and set(found) == want
    for (i, j), s in found.items():
        assert s == pytest.approx(sims[i, j], abs=1e-5)


def test_near_duplicates_are_the_pairs_within_both_layers_limits() -> None:
    rng = np.random.default_rng(4)
    b1, b5 = units(rng, 120, 32), units(rng, 120, 32)
    for src, dst in ((0, 1), (0, 2), (5, 6), (9, 10)):  # near-duplicates on both layers
        b1[dst] = b1[src] + 0.05 * units(rng, 1, 32)[0]
        b5[dst] = b5[src] + 0.05 * units(rng, 1, 32)[0]
    b5[10] = units(rng, 1, 32)[0]  # 9 and 10: near on block1 only
    b1 /= np.linalg.norm(b1, axis=1, keepdims=True)
    b5 /= np.linalg.norm(b5, axis=1, keepdims=True)
    ids = np.arange(120) + 1000
    r = near_duplicates({"block1": b1, "block5": b5}, ids)
    lim = r["rule"]["max_distance"]
    d1, d5 = 1 - b1 @ b1.T, 1 - b5 @ b5.T
    want = {(int(ids[i]), int(ids[j])) for i in range(120) for j in range(i + 1, 120)
            if d1[i, j] <= lim["block1"] + 1e-6 and d5[i, j] <= lim["block5"] + 1e-6}
    assert want == {(1000, 1001), (1000, 1002), (1001, 1002), (1005, 1006)}
    assert [g["ids"] for g in r["groups"]] == [[1000, 1001, 1002], [1005, 1006]]
    assert r["near_pairs"] == len(want)


def test_the_combined_nearest_is_found_outside_both_layers_nearest_lists() -> None:
    """32 images near the query on block1 only, 32 on block5 only, and one halfway on both:
    it is in neither layer's 32 nearest, yet the nearest on both combined."""
    from modescope.indexer.memorisation import NEAREST_K, _layers, nearest

    d, n = 80, 2 * NEAREST_K + 1
    e = np.eye(d, dtype=np.float32)
    b1, b5 = np.zeros((n, d), np.float32), np.zeros((n, d), np.float32)
    s = np.sqrt(1 - 0.9 ** 2)
    for i in range(NEAREST_K):
        b1[i], b5[i] = 0.9 * e[0] + s * e[1 + i], e[1 + i]
        j = NEAREST_K + i
        b1[j], b5[j] = e[1 + i], 0.9 * e[0] + s * e[1 + i]
    b1[-1] = b5[-1] = 0.5 * e[0] + np.sqrt(0.75) * e[d - 1]
    q = {"block1": e[:1].copy(), "block5": e[:1].copy()}
    ids = np.arange(n) + 500
    found = nearest(_layers({"block1": b1, "block5": b5}), ids, _layers(q))
    assert found["block1"][1][0] < 500 + NEAREST_K and found["block1"][0][0] == pytest.approx(0.9)
    assert found["combined"][1][0] == 500 + n - 1
    assert found["combined"][0][0] == pytest.approx(0.5, abs=1e-6)


def test_a_subsets_graph_is_read_from_its_sets_and_equals_its_own_search(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    whole = units(rng, 200)
    keep = rng.random(200) < 0.85
    keep[:3] = False
    whole[0] = whole[1] = whole[2] = whole[10]  # row 10's nearest three are outside the subset
    part = whole[keep]
    graph.subset_of(whole, keep, part)
    graph.self_knn(whole, 12)  # searched: the subset reads it
    searched: list[int] = []
    search = graph.nearest_others
    monkeypatch.setattr(graph, "nearest_others", lambda x, k, queries=None: (
        searched.append(len(x) if queries is None else len(queries)), search(x, k, queries))[1])
    got = graph.self_knn(part, 5)
    assert searched == []  # no row of the subset lost five of its 32 neighbours
    monkeypatch.undo()
    want = graph.self_knn(part.copy() + 0, 5, keep=False)
    np.testing.assert_array_equal(got.rows, want.rows)
    np.testing.assert_allclose(got.sims, want.sims, atol=1e-6)
    # more neighbours than any row keeps inside the whole graph: rows are searched again
    many = graph.self_knn(part, 30)
    np.testing.assert_array_equal(many.rows, graph.self_knn(part, 30, keep=False).rows)


def clustered(rng: np.random.Generator, n: int, d: int = 64, modes: int = 12,
              latent: int = 16) -> np.ndarray:
    """Unit vectors around a few centres in a low-dimensional space lifted to d, with a little
    noise (neighbourhoods and a spectrum that falls off, as descriptors have)."""
    centres = rng.standard_normal((modes, latent)).astype(np.float32) * 2
    z = centres[rng.integers(0, modes, n)] + rng.standard_normal((n, latent)).astype(np.float32)
    x = z @ rng.standard_normal((latent, d)).astype(np.float32)
    x += 0.3 * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_sets_above_the_exact_limit_are_searched_approximately_with_exact_similarities(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph, "EXACT_UP_TO", 1000)
    monkeypatch.setattr(graph, "PCA_DIMS", 32)
    x = clustered(np.random.default_rng(6), 4000)
    g = graph.self_knn(x, 10, keep=False)
    assert not g.exact  # and says so
    assert (g.rows != np.arange(4000)[:, None]).all()
    # every similarity it holds is the pair's exact one, nearest first
    np.testing.assert_allclose(g.sims, np.einsum("nkd,nd->nk", x[g.rows], x), atol=1e-5)
    assert (np.diff(g.sims, axis=1) <= 1e-6).all()
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    want = np.argsort(-sims, axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(g.rows, want, strict=True)])
    assert recall >= 0.95
    # a query that is a slightly moved copy of a row finds that row first
    rng = np.random.default_rng(7)
    moved = x[:200] + 0.02 * rng.standard_normal((200, 64)).astype(np.float32)
    found = graph.nearest_in(x, moved / np.linalg.norm(moved, axis=1, keepdims=True), 5)
    assert not found.exact and (found.rows[:, 0] == np.arange(200)).all()
    monkeypatch.setattr(graph, "EXACT_UP_TO", 10_000)  # at or under the limit: exact again
    assert graph.nearest_in(x, x[:5], 3).exact


def test_within_a_subset_reads_the_whole_sets_graph_and_equals_brute_force() -> None:
    x = clustered(np.random.default_rng(9), 600, 32)
    rows = np.flatnonzero(np.random.default_rng(10).random(600) < 0.4)
    cold = graph.within(x, rows, 6)  # nothing searched yet: the subset is searched
    graph.self_knn(x, graph.GRAPH_K)
    warm = graph.within(x, rows, 6)  # read from the whole set's graph
    part = x[rows]
    sims = part @ part.T
    np.fill_diagonal(sims, -np.inf)
    want = np.sort(sims, axis=1)[:, ::-1][:, :6]
    for g in (cold, warm):
        np.testing.assert_allclose(g.sims, want, atol=1e-5)


def test_queries_whose_probed_cells_hold_too_few_images_are_searched_exactly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph, "EXACT_UP_TO", 500)
    monkeypatch.setattr(graph, "NPROBE", 1)  # one cell of ~40 images, 60 asked
    x = clustered(np.random.default_rng(11), 2000, 32)
    found = graph.nearest_in(x, x[:50], 60)
    assert (found.rows >= 0).all()  # never a missing neighbour (-1)
    np.testing.assert_allclose(found.sims, np.einsum("nkd,nd->nk", x[found.rows], x[:50]),
                               atol=1e-5)
    search = graph.approximate(x)
    ivf = search.ivf
    _, cell = ivf.quantizer.search(graph._projected(x[:50], search.mean, search.axes), 1)
    small = np.array([ivf.invlists.list_size(int(c)) < 60 for c in cell[:, 0]])
    assert small.any()  # some queries' one probed cell holds fewer than 60 images
    want = np.sort(x[:50] @ x.T, axis=1)[:, ::-1][:, :60]
    np.testing.assert_allclose(found.sims[small], want[small], atol=1e-5)  # searched exactly


def test_a_large_part_of_a_set_searched_approximately_is_searched_within_its_cells(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a label's images among a large set: most rows keep fewer than k of their neighbours in
    # the whole graph, so they are searched again, by the whole set's search restricted to
    # the part (not exactly over it), and find nearly what an exact search finds
    monkeypatch.setattr(graph, "EXACT_UP_TO", 1000)
    monkeypatch.setattr(graph, "EXACT_PART", 300)
    monkeypatch.setattr(graph, "PCA_DIMS", 32)
    x = clustered(np.random.default_rng(12), 4000)
    graph.self_knn(x, graph.GRAPH_K)
    searched: list[int] = []
    part_of = graph.Approximate.part

    def part(self: graph.Approximate, rows: np.ndarray) -> graph.Approximate:
        searched.append(len(rows))
        return part_of(self, rows)

    monkeypatch.setattr(graph.Approximate, "part", part)
    rows = np.flatnonzero(np.arange(4000) % 4 == 1)  # labels that do not follow the clusters
    g = graph.within(x, rows, 10)
    assert searched == [1000] and not g.exact
    sub = x[rows]
    np.testing.assert_allclose(g.sims, np.einsum("nkd,nd->nk", sub[g.rows], sub), atol=1e-5)
    assert (g.rows != np.arange(len(rows))[:, None]).all()
    sims = sub @ sub.T
    np.fill_diagonal(sims, -np.inf)
    want = np.argsort(-sims, axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(g.rows, want, strict=True)])
    assert recall >= 0.95
    # a small part is searched exactly
    small = rows[:200]
    exact = graph.within(x, small, 5)
    assert searched == [1000]
    s = x[small] @ x[small].T
    np.fill_diagonal(s, -np.inf)
    np.testing.assert_allclose(exact.sims, np.sort(s, axis=1)[:, ::-1][:, :5], atol=1e-5)


def test_reranking_reads_each_candidates_exact_similarity() -> None:
    rng = np.random.default_rng(13)
    base = clustered(rng, 500, 48)
    q = clustered(rng, 40, 48)
    cand = rng.integers(0, 500, (40, 9))
    cand[3, 4:] = -1  # fewer candidates than asked
    got = graph.reranked(base, q, cand)
    want = np.einsum("ncd,nd->nc", base[np.maximum(cand, 0)], q)
    want[cand < 0] = -np.inf
    np.testing.assert_allclose(got, want, atol=1e-6)
    with pytest.raises(IndexError):
        graph.reranked(base, q, np.full((40, 2), 500))


def test_a_noted_part_of_a_large_set_is_searched_with_the_sets_projection_and_cells(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the curated training images among every indexed one: searching the curated set builds
    # (or reads) the indexed set's search and restricts it, instead of training new cells
    monkeypatch.setattr(graph, "EXACT_UP_TO", 1000)
    monkeypatch.setattr(graph, "PCA_DIMS", 32)
    x = clustered(np.random.default_rng(14), 3000)
    keep = np.random.default_rng(15).random(3000) < 0.9
    part = np.ascontiguousarray(x[keep])
    graph.subset_of(x, keep, part)
    q = clustered(np.random.default_rng(16), 100)
    found = graph.nearest_in(part, q, 5)
    whole, search = graph.approximate(x), graph.approximate(part)
    assert search.mean is whole.mean and search.axes is whole.axes
    assert search.ivf.nlist == whole.ivf.nlist and search.ivf.ntotal == keep.sum()
    np.testing.assert_allclose(found.sims, np.einsum("nkd,nd->nk", part[found.rows], q),
                               atol=1e-5)
    want = np.argsort(-(q @ part.T), axis=1)[:, :5]
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(found.rows, want, strict=True)])
    assert recall >= 0.95


def test_an_array_that_owns_its_values_is_keyed_once_and_can_no_longer_change() -> None:
    x = clustered(np.random.default_rng(17), 300, 16)
    graph.self_knn(x, 5)
    assert not x.flags.writeable  # a write would raise: the graph kept for it cannot go stale
    with pytest.raises(ValueError):
        x[0, 0] = 1.0
    assert graph.cached(x) is not None
    changed = x.copy()
    changed[0] = changed[1]
    assert graph._key(changed) != graph._key(x)
    assert graph.self_knn(changed, 5).rows[0, 0] == 1  # its own graph, not x's
    base = clustered(np.random.default_rng(18), 300, 16)
    view = base[:200]  # a view: its base may change, so it is keyed anew each time
    before = graph._key(view)
    assert view.flags.writeable and base.flags.writeable
    base[0] = base[1]
    assert graph._key(view) != before
