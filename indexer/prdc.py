"""Precision, recall, density and coverage of samples against training images, with k-NN balls
(Kynkäänniemi et al. 2019, "Improved precision and recall metric for assessing generative
models"; Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative models",
reference code github.com/clovaai/generative-evaluation-prdc).

Descriptors are L2-normalised, so cosine distance and Euclidean distance order pairs alike
(``|x - y|^2 = 2 - 2 x.y``) and a ball is "cosine similarity above a threshold". With ``R`` the
training images, ``F`` the samples, ``B(x, k)`` the ball around ``x`` reaching its k-th nearest
other image of its own set (the reference code's (k+1)-th smallest distance, itself included),
and strict inequality as in the reference code:

    precision = 1/M sum_j 1[F_j in some B(R_i, k)]
    recall    = 1/N sum_i 1[R_i in some B(F_j, k)]
    density   = 1/(kM) sum_j #{i : F_j in B(R_i, k)}
    coverage  = 1/N sum_i 1[some F_j in B(R_i, k)]

The radii come from FAISS k-NN searches (exact, inner product); the memberships from blocked
inner products. ``reach[i]`` (how many samples fall in training image i's ball) is the per-image
count behind coverage: an image with reach 0 was never reached.

Intervals are delete-one-sample jackknife standard errors, normal, conditional on the training
set: precision and density are means over samples, so their jackknife is the usual standard
error; for coverage and recall the leave-one-out values are computed exactly (a training image
reached only by the left-out sample; for recall the left-out sample's own ball goes and the
balls of the samples that had it among their k nearest grow to their next neighbour). The
Efron-Stein inequality makes the jackknife variance conservative on average; the tests check
coverage of the 95 % interval by seeded simulation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import norm

from modescope.indexer import graph
from modescope.indexer.index import check_vectors

BLOCK = 2048  # samples per block of inner products
DEFAULT_K = 5  # Naeem et al.'s recommended k


@dataclass(frozen=True)
class Radii:
    """One set's k-NN balls: ``inner`` the k-th neighbour's similarity (the ball's edge),
    ``outer`` the (k+1)-th (the edge once one neighbour is gone), ``knn`` the k neighbours."""

    inner: np.ndarray
    outer: np.ndarray
    knn: np.ndarray  # (n, k) row numbers


@dataclass(frozen=True)
class Score:
    value: float
    ci95: tuple[float, float]


@dataclass(frozen=True)
class PRDC:
    k: int
    n_train: int
    n_samples: int
    precision: Score
    recall: Score
    density: Score
    coverage: Score
    reach: np.ndarray  # (n_train,) samples inside each training image's ball
    exact: bool = True  # False: the balls were read from approximate nearest lists (below)


def knn_radii(vecs: np.ndarray, k: int) -> Radii:
    """Each vector's k nearest others in its own set (the shared exact graph,
    indexer/graph.py): the k-th similarity is its ball's radius, the (k+1)-th its radius when
    one of its k neighbours is left out."""
    from modescope.indexer.graph import self_knn

    vecs = check_vectors(vecs)
    n = len(vecs)
    if not 1 <= k <= n - 2:
        raise ValueError(f"k={k} needs at least k+2 vectors in each set, got {n}")
    g = self_knn(vecs, k + 1)
    return Radii(g.sims[:, k - 1].copy(), g.sims[:, k].copy(), g.rows[:, :k].copy())


def jackknife(full: float, loo: np.ndarray, lo: float = 0.0, hi: float = math.inf,
              level: float = 0.95) -> Score:
    """A normal interval with the delete-one jackknife variance of ``loo``, clipped."""
    n = len(loo)
    var = (n - 1) / n * float(np.sum((loo - loo.mean()) ** 2)) if n > 1 else 0.0
    half = float(norm.ppf(0.5 + level / 2)) * math.sqrt(var)
    return Score(full, (max(lo, full - half), min(hi, full + half)))


Blocks = Callable[[np.ndarray | None], Iterator[tuple[int, np.ndarray]]]


def _blocks(train: np.ndarray, samples: np.ndarray) -> Blocks:
    """The sample-by-training similarities, one block of samples at a time, recomputed on each
    pass (never the whole matrix in memory); a pass given training rows computes only those
    columns (the leave-one-out passes need only the images one or no ball holds)."""
    def passes(columns: np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
        t = train if columns is None else np.ascontiguousarray(train[columns])
        if not len(t):
            return
        for s in range(0, len(samples), BLOCK):
            yield s, samples[s:s + BLOCK] @ t.T

    return passes


def prdc(train: np.ndarray, samples: np.ndarray, k: int = DEFAULT_K,
         train_radii: Radii | None = None) -> PRDC:
    """The four metrics, their jackknife intervals and each training image's reach."""
    train, samples = check_vectors(train), check_vectors(samples, train.shape[1])
    rt = train_radii or knn_radii(train, k)
    rs = knn_radii(samples, k)
    n_t, n_g = len(train), len(samples)
    if n_t > graph.EXACT_UP_TO:
        return _from_nearest(train, samples, k, rt, rs)
    hits = np.zeros(n_g, np.int64)  # training balls holding each sample
    reach = np.zeros(n_t, np.int64)  # samples inside each training ball
    covered = np.zeros(n_t, np.int64)  # sample balls holding each training image
    blocks = _blocks(train, samples)
    for s, sims in blocks(None):
        inside = sims > rt.inner[None, :]
        hits[s:s + len(sims)] = inside.sum(axis=1)
        reach += inside.sum(axis=0)
        covered += (sims > rs.inner[s:s + len(sims), None]).sum(axis=0)
    coverage_loo = _coverage_loo(blocks, rt, reach, n_g)
    recall_loo = _recall_loo(blocks, rs, covered)
    return _scored(k, hits, reach, covered, coverage_loo, recall_loo)


def _scored(k: int, hits: np.ndarray, reach: np.ndarray, covered: np.ndarray,
            coverage_loo: np.ndarray, recall_loo: np.ndarray) -> PRDC:
    n_t, n_g = len(reach), len(hits)
    inside = hits > 0
    return PRDC(k, n_t, n_g,
                jackknife(float(inside.mean()), (inside.sum() - inside) / (n_g - 1), hi=1.0),
                jackknife(float((covered > 0).mean()), recall_loo, hi=1.0),
                jackknife(float(hits.mean() / k), (hits.sum() - hits) / (k * (n_g - 1))),
                jackknife(float((reach > 0).mean()), coverage_loo, hi=1.0), reach)


def _from_nearest(train: np.ndarray, samples: np.ndarray, k: int, rt: Radii, rs: Radii
                  ) -> PRDC:
    """The four metrics of a training set searched approximately (indexer/graph.py): each
    sample's ``graph.CROSS_K`` nearest training images (the search memorisation shares) are
    the pairs the balls are read from. A training ball holding a sample holds it among the
    sample's nearest unless that ball is wider than the sample's ``CROSS_K``-th neighbour is
    far; a sample ball's training images beyond its ``CROSS_K`` nearest are missed (recall is
    then a lower bound)."""
    g = graph.nearest_in(train, samples, graph.CROSS_K, keep=True)
    j = np.repeat(np.arange(len(samples)), g.k)
    found = _pairs(j, g.rows.ravel(), g.sims.ravel(), rt, rs, len(train), k)
    return dataclasses.replace(found, exact=False)


def _pairs(j: np.ndarray, i: np.ndarray, sim: np.ndarray, rt: Radii, rs: Radii, n_t: int,
           k: int) -> PRDC:
    """The four metrics from (sample j, training image i, similarity) pairs: every pair where
    either's ball may hold the other (all pairs: the same as the dense passes)."""
    n_g = len(rs.inner)
    in_t = sim > rt.inner[i]  # the sample in the training image's ball
    in_s = sim > rs.inner[j]  # the training image in the sample's ball
    hits = np.bincount(j[in_t], minlength=n_g)
    reach = np.bincount(i[in_t], minlength=n_t)
    covered = np.bincount(i[in_s], minlength=n_t)
    sole = np.bincount(j[in_t & (reach[i] == 1)], minlength=n_g)
    coverage_loo = ((reach > 0).sum() - sole) / n_t
    few = np.flatnonzero(covered <= 1)
    column = np.full(n_t, -1, np.int64)
    column[few] = np.arange(len(few))
    c = column[i]
    own = in_s & (c >= 0)
    ring = (sim > rs.outer[j]) & ~in_s & (c >= 0)
    recall_loo = _recall_after(j[own], c[own], j[ring], c[ring], rs, covered, few)
    return _scored(k, hits, reach, covered, coverage_loo, recall_loo)


def _coverage_loo(blocks: Blocks, rt: Radii, reach: np.ndarray, n_g: int) -> np.ndarray:
    """Coverage without each sample: it loses the training images only that sample reached."""
    once = np.flatnonzero(reach == 1)
    sole = np.zeros(n_g, np.int64)
    for s, sims in blocks(once):
        sole[s:s + len(sims)] = (sims > rt.inner[None, once]).sum(axis=1)
    return ((reach > 0).sum() - sole) / len(reach)


def _recall_loo(blocks: Blocks, rs: Radii, covered: np.ndarray) -> np.ndarray:
    """Recall without each sample j: its ball goes; the balls of samples that had j among their
    k nearest grow to their (k+1)-th neighbour. Only training images held by at most one ball
    can change."""
    few = np.flatnonzero(covered <= 1)
    none = np.empty(0, np.int64)
    own_r, own_c, ring_r, ring_c = [none], [none], [none], [none]
    for s, part in blocks(few):  # (samples in block, training images with few balls)
        inner = rs.inner[s:s + len(part), None]
        j, i = np.nonzero(part > inner)
        own_r.append(j + s)
        own_c.append(i)
        j, i = np.nonzero((part > rs.outer[s:s + len(part), None]) & (part <= inner))
        ring_r.append(j + s)
        ring_c.append(i)
    return _recall_after(np.concatenate(own_r), np.concatenate(own_c),
                         np.concatenate(ring_r), np.concatenate(ring_c), rs, covered, few)


def _recall_after(own_r: np.ndarray, own_c: np.ndarray, ring_r: np.ndarray,
                  ring_c: np.ndarray, rs: Radii, covered: np.ndarray, few: np.ndarray
                  ) -> np.ndarray:
    """Recall without each sample from the images ``few`` (held by at most one ball): which
    sample's ball holds each (``own``: sample row, column of ``few``) and which lie in a
    sample's ring between its k-th and (k+1)-th neighbour (``ring``)."""
    n_t, n_g = len(covered), len(rs.inner)
    if not len(few):  # every image is held by two balls or more: no removal changes recall
        return np.ones(n_g)
    shape = (n_g, len(few))
    own = sparse.csr_matrix((np.ones(len(own_r), bool), (own_r, own_c)), shape=shape)
    ring = sparse.csr_matrix((np.ones(len(ring_r), np.int64), (ring_r, ring_c)), shape=shape)
    # neighbour_of[j, l] = 1 when j is one of l's k nearest: removing j grows l's ball
    rows = rs.knn.ravel()
    cols = np.repeat(np.arange(n_g), rs.knn.shape[1])
    neighbour_of = sparse.csr_matrix((np.ones(len(rows), np.int64), (rows, cols)),
                                     shape=(n_g, n_g))
    grown = ((neighbour_of @ ring) > 0).astype(np.int64)  # j's removal puts i in a ball
    held = own.astype(np.int64)
    zero = (covered[few] == 0).astype(np.int64)
    gained = grown @ zero  # images held by no ball that j's removal puts in one
    lost = np.asarray((held - held.multiply(grown)).sum(axis=1)).ravel()  # held by j alone
    after = int((covered[few] == 1).sum()) - lost + gained
    others = int((covered > 1).sum())
    return (others + after) / n_t


def expected_coverage(n_train: int, n_samples: int, k: int) -> float:
    """Coverage expected when samples and training images come from one distribution (Naeem et
    al. 2020, Lemma 2): 1 - prod_{i=1..k} (N - i) / (N + M - i)."""
    return 1.0 - math.prod((n_train - i) / (n_train + n_samples - i) for i in range(1, k + 1))
