"""Modes and NDB (Richardson & Weiss 2018, "On GANs and GMMs"): did the GAN cover every mode?

Training descriptors are clustered into K bins with spherical k-means; training and generated
samples are counted per bin; each bin gets a two-proportion z-test (pooled proportion):

    p = (n_t P + n_g Q) / (n_t + n_g),   se = sqrt(p (1 - p) (1/n_t + 1/n_g)),   z = (Q - P) / se

A bin is *statistically different* when the two-sided p-value is below ``alpha``: **dropped**
when the generated share Q is lower, **over-produced** when it is higher. NDB is their count;
NDB/K is the headline. The Jensen-Shannon divergence (bits) compares the two histograms. The
bins stay fixed on the training set; NDB/K gets an exact binomial interval and the test a power
statement (indexer/ndb_stats.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm

from modescope.indexer.ndb_stats import NDBPower, clopper_pearson, power, power_sentence

MIN_PER_BIN = 40  # the default K keeps about this many training samples per bin
MAX_K = 100  # the paper's K for large sets
THIN_BIN = 10  # bins with fewer training samples than this make the z-test unreliable


def default_k(n_train: int) -> int:
    """K = n_train / 40, clamped to 2..100: enough samples per bin for the normal approximation
    of the z-test (the reference implementation warns when bins get thin)."""
    return max(2, min(MAX_K, n_train // MIN_PER_BIN))


def combined(block1: np.ndarray, block5: np.ndarray) -> np.ndarray:
    """Both layers as one unit vector: colour/texture and shape weigh the same."""
    x = np.concatenate([block1, block5], axis=1, dtype=np.float32)  # one copy (800 MB at 100k)
    return np.divide(x, np.float32(math.sqrt(2.0)), out=x)


WHITEN_DIMS = 64
# the whitening is fitted on at most this many training images (a seeded sample), its 64 axes
# applied to all: on 100,000 real descriptors (2,048-d, both layers) the bins then agree with a
# fit on all of them by adjusted Rand index 0.69, more than two k-means seeds on the full fit
# agree with each other (0.50), and whitening takes 3.0 s instead of 7.6
WHITEN_SAMPLE = 20_000


def whitener(train: np.ndarray, dims: int = WHITEN_DIMS, seed: int = 0) -> Any:
    """PCA with whitening, fitted on the training descriptors, then L2 normalisation.

    VGG descriptors (trained or not) have a few dominant directions (overall colour and
    brightness) that swamp k-means; whitening the top components lets the bins follow the modes
    (docs/inspection.md has the bin purity and NDB/K with and without it).
    """
    from sklearn.decomposition import PCA

    n_comp = max(2, min(dims, train.shape[1], len(train) // 4))
    fit_on = train
    if len(train) > WHITEN_SAMPLE:  # a seeded sample: the leading axes, in a fifth of the time
        rows = np.random.default_rng(seed).choice(len(train), WHITEN_SAMPLE, replace=False)
        fit_on = train[np.sort(rows)]
    pca = PCA(n_comp, whiten=True, random_state=seed).fit(fit_on)

    def apply(x: np.ndarray) -> np.ndarray:
        y = pca.transform(x).astype(np.float32)
        return np.ascontiguousarray(y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True),
                                                   1e-12))

    return apply


def kmeans_bins(train: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Spherical k-means centroids (k, d) of unit vectors, seeded."""
    import faiss

    if k < 2 or k > len(train):
        raise ValueError(f"K={k} must be between 2 and the number of training samples "
                         f"({len(train)})")
    km = faiss.Kmeans(train.shape[1], k, niter=30, nredo=3, seed=seed, spherical=True,
                      verbose=False, min_points_per_centroid=1, max_points_per_centroid=100000)
    km.train(np.ascontiguousarray(train, dtype=np.float32))
    return np.asarray(km.centroids, dtype=np.float32)


def assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (cosine) of each vector."""
    out = np.empty(len(vectors), dtype=np.int64)
    for s in range(0, len(vectors), 8192):
        out[s:s + 8192] = np.argmax(vectors[s:s + 8192] @ centroids.T, axis=1)
    return out


def z_test(p_train: np.ndarray, p_gen: np.ndarray, n_train: int,
           n_gen: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-proportion z statistics and two-sided p-values, per bin (pooled proportion)."""
    pooled = (p_train * n_train + p_gen * n_gen) / (n_train + n_gen)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_train + 1 / n_gen))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p_gen - p_train) / np.where(se > 0, se, 1), 0.0)
    return z, 2 * norm.sf(np.abs(z))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint)."""
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


@dataclass
class Bin:
    bin: int
    train_count: int
    gen_count: int
    train_share: float
    gen_share: float
    z: float
    p_value: float
    verdict: str  # "dropped", "over-produced" or "ok"


@dataclass
class NDBResult:
    k: int
    alpha: float
    n_train: int
    n_gen: int
    ndb: int
    ndb_over_k: float
    js: float
    ndb_over_k_ci: tuple[float, float]  # Clopper-Pearson 95% for the expected NDB/K
    power: NDBPower
    bins: list[Bin]
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "k": self.k, "alpha": self.alpha, "n_train": self.n_train, "n_gen": self.n_gen,
            "ndb": self.ndb, "ndb_over_k": round(self.ndb_over_k, 4), "js": round(self.js, 5),
            "ndb_over_k_ci95": [round(v, 4) for v in self.ndb_over_k_ci],
            "power": self.power.as_json(),
            "dropped": [b.bin for b in self.bins if b.verdict == "dropped"],
            "over_produced": [b.bin for b in self.bins if b.verdict == "over-produced"],
            "bins": [b.__dict__ for b in self.bins], "warnings": self.warnings,
        }


def ndb_from_bins(train_bins: np.ndarray, gen_bins: np.ndarray, k: int, *,
                  alpha: float = 0.05) -> NDBResult:
    """NDB from each sample's bin (both arrays of ints in 0..k-1)."""
    n_t, n_g = len(train_bins), len(gen_bins)
    if n_t == 0 or n_g == 0:
        raise ValueError("NDB needs training and generated samples")
    ct = np.bincount(train_bins, minlength=k)
    cg = np.bincount(gen_bins, minlength=k)
    pt, pg = ct / n_t, cg / n_g
    z, pv = z_test(pt, pg, n_t, n_g)
    sig = pv < alpha
    bins = [Bin(i, int(ct[i]), int(cg[i]), float(pt[i]), float(pg[i]), float(z[i]), float(pv[i]),
                ("dropped" if z[i] < 0 else "over-produced") if sig[i] else "ok")
            for i in range(k)]
    sensitivity = power(float(np.median(pt)), n_t, n_g, alpha)
    warnings = []
    thin = int((ct < THIN_BIN).sum())
    if thin:
        warnings.append(f"{thin} of {k} bins hold fewer than {THIN_BIN} training samples: their "
                        "z-tests are unreliable; lower --k")
    if sensitivity.dropped < sensitivity.target:
        warnings.append(f"too few samples for {k} bins: {power_sentence(sensitivity, n_g)}")
    return NDBResult(k, alpha, n_t, n_g, int(sig.sum()), float(sig.mean()), js_divergence(pt, pg),
                     clopper_pearson(int(sig.sum()), k), sensitivity, bins, warnings)


class ModeBins:
    """NDB bins fitted on training descriptors: whitening + spherical k-means, then z-tests of
    any set of generated descriptors against the training shares."""

    def __init__(self, train: dict[str, np.ndarray], *, k: int | None = None,
                 seed: int = 0) -> None:
        tc = combined(train["block1"], train["block5"])
        self.white = whitener(tc, seed=seed)
        self.train = self.white(tc)
        self.k = k or default_k(len(tc))
        self.seed = seed
        self.centroids = kmeans_bins(self.train, self.k, seed=seed)
        self.train_bins = assign(self.train, self.centroids)

    def generated_bins(self, gen: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        gc = self.white(combined(gen["block1"], gen["block5"]))
        return gc, assign(gc, self.centroids)

    def score(self, gen: dict[str, np.ndarray], *, alpha: float = 0.05) -> NDBResult:
        _, gb = self.generated_bins(gen)
        return ndb_from_bins(self.train_bins, gb, self.k, alpha=alpha)
