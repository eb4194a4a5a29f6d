"""Meehan, Chaudhuri & Dasgupta 2020, "A Non-Parametric Test to Detect Data-Copying in
Generative Models" (AISTATS; reference code github.com/casey-meehan/data-copying).

The training set is partitioned into cells (k-means, fitted on training descriptors). In each
cell pi, the distances of the held-out images P_n(pi) and of the generated samples Q_m(pi) to
their nearest training image *of that cell* are compared with a Mann-Whitney U test:

    Z_U(pi) = (U - m n / 2 + 1/2) / sqrt(m n (m + n + 1) / 12)

with U counting the (sample, held-out) pairs in which the sample is farther from the training
set (ties count 1/2) and 1/2 the reference code's continuity correction. The statistic is the
average of Z_U over the cells the generator populates (at least ``MIN_PER_CELL`` samples, the
paper's Pi_tau), weighted by each cell's share of held-out images:

    C_T = sum_pi P_n(pi) Z_U(pi) / sum_pi P_n(pi)

C_T well below 0: samples sit closer to their training images than unseen real images do (data
copying); well above 0: farther (under-fitting). As a weighted mean of roughly standard normal
scores, |C_T| > 2 is beyond chance at about the 5 % level (conservatively).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

MIN_PER_CELL = 10  # generated samples a cell needs to enter C_T (the paper's tau, as a count)
HELD_OUT_PER_CELL = 25  # cells = held-out images / this, 2..20


@dataclass(frozen=True)
class DataCopying:
    c_t: float | None  # None when no cell has enough samples and held-out images
    cells: int
    cells_used: int
    z_u: tuple[float | None, ...]  # per cell; None where the cell was left out


def z_u(sample_d: np.ndarray, held_d: np.ndarray) -> float:
    """The Z-scored Mann-Whitney U of sample vs held-out distances to the training set."""
    m, n = len(sample_d), len(held_d)
    u = float(mannwhitneyu(sample_d, held_d, alternative="less").statistic)
    return (u - m * n / 2 + 0.5) / float(np.sqrt(m * n * (m + n + 1) / 12))


def c_t(train: np.ndarray, held: np.ndarray, samples: np.ndarray, *,
        cells: int | None = None, seed: int = 0) -> DataCopying:
    """C_T of unit-vector descriptors (cosine distance 1 - x.y), cells by spherical k-means."""
    from modescope.indexer.ndb import assign, kmeans_bins

    for name, x in (("train", train), ("held", held), ("samples", samples)):
        if x.ndim != 2 or x.shape[1] != train.shape[1]:
            raise ValueError(f"{name} must be (N, {train.shape[1]}), got {x.shape}")
    k = cells or max(2, min(20, len(held) // HELD_OUT_PER_CELL))
    k = min(k, len(train))
    if k < 2 or len(held) < 2 or len(samples) < MIN_PER_CELL:
        return DataCopying(None, 0, 0, ())
    centroids = kmeans_bins(train, k, seed=seed)
    tc, hc, sc = (assign(x, centroids) for x in (train, held, samples))
    scores: list[float | None] = []
    weights: list[float] = []
    used: list[float] = []
    for i in range(k):
        t, h, s = train[tc == i], held[hc == i], samples[sc == i]
        if len(t) == 0 or len(h) < 2 or len(s) < MIN_PER_CELL:
            scores.append(None)
            continue
        dist_h = 1.0 - (h @ t.T).max(axis=1)
        dist_s = 1.0 - (s @ t.T).max(axis=1)
        score = z_u(dist_s, dist_h)
        scores.append(score)
        weights.append(len(h) / len(held))
        used.append(score)
    if not used:
        return DataCopying(None, k, 0, tuple(scores))
    value = float(np.dot(weights, used) / np.sum(weights))
    return DataCopying(round(value, 4), k, len(used),
                       tuple(None if v is None else round(v, 4) for v in scores))
