"""Fréchet distance and kernel inception distance on one layer's descriptors.

**FD** (Heusel et al. 2017, the formula of FID): Gaussians fitted to the training descriptors
(mean m1, covariance S1) and the samples' (m2, S2),

    FD = |m1 - m2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)),

``frechet`` takes the matrix square root with ``scipy.linalg.sqrtm``, real part (as pytorch-fid
and clean-fid do). The analyses use the eigenvalue form ``Tr (S1 S2)^(1/2) = sum sqrt(eig(A S2
A))``, ``A = S1^(1/2)`` symmetric (fitted once on the training set): equal in exact arithmetic
(the tests hold the two to 1e-6), and on 1,024 dimensions a few hundredths of a second where
sqrtm takes seconds. Its interval is FD +- 1.96 standard deviations of a seeded bootstrap over
the samples (the training set held fixed): the spread of FD at this number of samples, not a
bound on the distance between the distributions. FD is biased upward at small n (Chong &
Forsyth 2020): compare runs at equal numbers of samples.

**KID** (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimator of MMD^2 with
the cubic polynomial kernel k(x, y) = (gamma x.y + 1)^3, gamma = 1/d in the paper (Inception
features, whose x.y is of order d). modescope's descriptors are unit vectors, whose x.y / d is
of order 1/d: the kernel would be almost linear and KID little more than the distance between
the means; the analyses pass gamma = 1, i.e. k = (cos(x, y) + 1)^3, the paper's kernel on
descriptors scaled to length sqrt(d).

    MMD^2_u = 1/(n(n-1)) sum_{i!=i'} k(x_i, x_i') + 1/(m(m-1)) sum_{j!=j'} k(y_j, y_j')
              - 2/(nm) sum_{i,j} k(x_i, y_j),

computed on all images at once (torch-fidelity and clean-fid average it over 100 subsets of
1000; the expectation is the same, all pairs have the smaller variance). Its standard error is
the delete-one jackknife for two-sample U-statistics (Arvesen 1969): leave out each training
image, then each sample, and add the two jackknife variances.

These are the VGG16 descriptors modescope indexes (L2-normalised, pooled), not Inception-v3
pool3 features: the values are not comparable with published FID or KID figures.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg

BLOCK = 1024
DEFAULT_BOOTSTRAP = 50


def _check(x: np.ndarray, dim: int | None = None) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        raise ValueError(f"descriptors must be an (n, {dim or 'd'}) array")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"descriptors must be float, got {x.dtype}")
    if len(x) < 2:
        raise ValueError("need at least 2 descriptors in each set")
    return x.astype(np.float64)


def gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance."""
    x = _check(x)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> float:
    """FD between two Gaussians, the square root by ``scipy.linalg.sqrtm`` (real part)."""
    with warnings.catch_warnings():  # fewer images than dimensions: a singular product
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():  # nudge both, as pytorch-fid does
            eps = np.eye(len(s1)) * 1e-6
            covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    d = m1 - m2
    value = float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))
    return max(value, 0.0)


class TrainGaussian:
    """The training set's Gaussian and its symmetric square root, fitted once (the bootstrap
    and every checkpoint reuse it)."""

    def __init__(self, train: np.ndarray) -> None:
        self.mean, self.cov = gaussian(train)
        w, v = np.linalg.eigh(self.cov)
        self.root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    def fd_fast(self, samples: np.ndarray) -> float:
        """FD to ``samples`` by the eigenvalue form (no sqrtm)."""
        y = _check(samples, len(self.mean))
        m2 = y.mean(axis=0)
        c = (y - m2) @ self.root / np.sqrt(len(y) - 1)  # A S2 A = c^T c: same eigenvalues as c c^T
        small = c @ c.T if len(y) < y.shape[1] else c.T @ c
        tr = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(small), 0, None))))
        d = self.mean - m2
        s2_trace = float(np.sum((y - m2) ** 2) / (len(y) - 1))
        return max(float(d @ d + np.trace(self.cov) + s2_trace - 2 * tr), 0.0)


@dataclass(frozen=True)
class FD:
    value: float
    ci95: tuple[float, float]
    replicas: int


def fd_with_interval(train: TrainGaussian, samples: np.ndarray, *,
                     replicas: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> FD:
    """FD (eigenvalue form) and a seeded bootstrap interval over the samples: FD +- 1.96 bootstrap
    standard deviations (not percentiles: resampling with replacement repeats samples, which
    shrinks their covariance's rank and moves every replica up, so the replicas' spread is
    used, not their place)."""
    y = _check(samples, len(train.mean))
    value = train.fd_fast(y)
    if replicas < 2:
        return FD(value, (value, value), 0)
    rng = np.random.default_rng(seed)
    reps = np.array([train.fd_fast(y[rng.integers(0, len(y), len(y))])
                     for _ in range(replicas)])
    half = 1.96 * float(reps.std(ddof=1))
    return FD(value, (max(0.0, value - half), value + half), replicas)


def _kernel_sums(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """Row sums of the cubic kernel matrix k(a_i, b_j), blocked."""
    out = np.empty(len(a))
    for s in range(0, len(a), BLOCK):
        out[s:s + BLOCK] = ((gamma * (a[s:s + BLOCK] @ b.T) + 1) ** 3).sum(axis=1)
    return out


def _self_terms(x: np.ndarray, gamma: float) -> tuple[np.ndarray, float]:
    """Row sums of k(x_i, x_i') over i' != i, and their total."""
    diag = (gamma * np.sum(x * x, axis=1) + 1) ** 3
    rows = _kernel_sums(x, x, gamma) - diag
    return rows, float(rows.sum())


@dataclass(frozen=True)
class KID:
    value: float
    se: float


class TrainKernel:
    """The training side of KID, computed once: its kernel row sums. ``gamma`` None is the
    paper's 1/d; the analyses pass 1.0 for unit vectors (k = (cos + 1)^3)."""

    def __init__(self, train: np.ndarray, gamma: float | None = None) -> None:
        self.x = _check(train)
        self.dim = self.x.shape[1]
        self.gamma = 1.0 / self.dim if gamma is None else gamma
        self.rows, self.total = _self_terms(self.x, self.gamma)

    def kid(self, samples: np.ndarray) -> KID:
        """Unbiased MMD^2 with its two-sample jackknife standard error."""
        y = _check(samples, self.dim)
        n, m = len(self.x), len(y)
        if n < 3 or m < 3:
            raise ValueError("KID's jackknife needs at least 3 images on each side")
        y_rows, y_total = _self_terms(y, self.gamma)
        xy_rows = _kernel_sums(self.x, y, self.gamma)  # per training image: sum over samples
        yx_rows = _kernel_sums(y, self.x, self.gamma)  # per sample: sum over training images
        xy_total = float(xy_rows.sum())
        value = (self.total / (n * (n - 1)) + y_total / (m * (m - 1))
                 - 2 * xy_total / (n * m))
        loo_x = ((self.total - 2 * self.rows) / ((n - 1) * (n - 2)) + y_total / (m * (m - 1))
                 - 2 * (xy_total - xy_rows) / ((n - 1) * m))
        loo_y = (self.total / (n * (n - 1)) + (y_total - 2 * y_rows) / ((m - 1) * (m - 2))
                 - 2 * (xy_total - yx_rows) / (n * (m - 1)))
        var = sum((len(v) - 1) / len(v) * float(np.sum((v - v.mean()) ** 2))
                  for v in (loo_x, loo_y))
        return KID(float(value), float(np.sqrt(var)))
