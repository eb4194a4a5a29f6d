"""Property tests (hypothesis): the analyses and the index against simple models of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from modescope.indexer.index import VectorIndex
from modescope.indexer.ndb import js_divergence, ndb_from_bins

DIM = 8


@st.composite
def bin_samples(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    k = draw(st.integers(2, 12))
    train = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=300))
    gen = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=300))
    return np.array(train), np.array(gen), k


@settings(max_examples=150, deadline=None)
@given(bin_samples(), st.sampled_from([0.01, 0.05, 0.1]))
def test_ndb_on_random_bin_counts_matches_the_two_proportion_test(
        sample: tuple[np.ndarray, np.ndarray, int], alpha: float) -> None:
    from scipy.stats import norm

    train, gen, k = sample
    r = ndb_from_bins(train, gen, k, alpha=alpha)
    n_t, n_g = len(train), len(gen)
    assert r.k == k == len(r.bins) and r.n_train == n_t and r.n_gen == n_g
    assert sum(b.train_count for b in r.bins) == n_t and sum(b.gen_count for b in r.bins) == n_g
    for b in r.bins:
        p, q = b.train_count / n_t, b.gen_count / n_g
        pooled = (b.train_count + b.gen_count) / (n_t + n_g)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_g))
        z = 0.0 if se == 0 else (q - p) / se
        assert np.isclose(b.z, z, atol=1e-9)
        assert np.isclose(b.p_value, 2 * norm.sf(abs(z)), atol=1e-9)
        expected = "ok" if b.p_value >= alpha else ("dropped" if z < 0 else "over-produced")
        assert b.verdict == expected
    assert r.ndb == sum(b.verdict != "ok" for b in r.bins)
    assert np.isclose(r.ndb_over_k, r.ndb / k)
    assert 0.0 <= r.js <= 1.0 + 1e-12
    lo, hi = r.ndb_over_k_ci
    assert 0.0 <= lo <= r.ndb_over_k <= hi <= 1.0  # the interval contains its estimate
    assert 0.0 <= r.power.dropped <= 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 10), min_size=2, max_size=20).map(np.array),
       st.integers(0, 2**32 - 1))
def test_js_divergence_is_symmetric_bounded_and_zero_on_itself(p: np.ndarray, seed: int) -> None:
    if p.sum() == 0:
        p = p + 1.0
    q = np.random.default_rng(seed).random(len(p)) + 1e-3
    p, q = p / p.sum(), q / q.sum()
    assert np.isclose(js_divergence(p, q), js_divergence(q, p), atol=1e-12)
    assert -1e-12 <= js_divergence(p, q) <= 1.0 + 1e-12
    assert abs(js_divergence(p, p)) < 1e-12


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class IndexMatchesADict(RuleBasedStateMachine):
    """Random add / remove / save-load sequences on a flat index against {id: vector}."""

    def __init__(self) -> None:
        super().__init__()
        self.index = VectorIndex.flat(DIM)
        self.model: dict[int, np.ndarray] = {}

    @rule(image_id=st.integers(0, 40), seed=st.integers(0, 10**6))
    def add(self, image_id: int, seed: int) -> None:
        if image_id in self.model:  # the product replaces a vector by remove + add
            self.index.remove([image_id])
        vec = unit(seed)
        self.index.add(np.array([image_id]), vec[None])
        self.model[image_id] = vec

    @rule(ids=st.lists(st.integers(0, 40), max_size=5, unique=True))
    def remove(self, ids: list[int]) -> None:
        removed = self.index.remove(ids)
        assert removed == sum(i in self.model for i in ids)
        for i in ids:
            self.model.pop(i, None)

    @rule()
    def save_and_load(self) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "x.faiss"
            self.index.save(path)
            self.index = VectorIndex.load(path)

    @rule(seed=st.integers(0, 10**6), k=st.integers(1, 6),
          exclude=st.lists(st.integers(0, 40), max_size=4))
    def search_equals_brute_force(self, seed: int, k: int, exclude: list[int]) -> None:
        query = unit(seed)
        sims, found = self.index.search(query[None], k, exclude=exclude or None)
        pool = {i: v for i, v in self.model.items() if i not in set(exclude)}
        ranked = sorted(((float(v @ query), i) for i, v in pool.items()), reverse=True)
        truth = ranked[:k]
        got = [(float(s), int(i)) for s, i in zip(sims[0], found[0], strict=True) if i >= 0]
        assert len(got) == len(truth)
        assert np.allclose([s for s, _ in got], [s for s, _ in truth], atol=1e-5)
        scores = [s for s, _ in ranked[:k + 1]]
        if all(a - b > 1e-5 for a, b in zip(scores, scores[1:], strict=False)):  # no ties
            assert [i for _, i in got] == [i for _, i in truth]

    @invariant()
    def same_contents(self) -> None:
        assert self.index.ntotal == len(self.model)
        for i, v in self.model.items():
            assert np.allclose(self.index.reconstruct(i), v, atol=1e-6)


IndexMatchesADict.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_index_matches_a_dict_of_vectors = IndexMatchesADict.TestCase
