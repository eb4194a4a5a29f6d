"""What an NDB/K can claim: its interval, and the power of its per-bin test.

**Interval.** NDB counts the K bins whose two-proportion z-test rejects (indexer/ndb.py). Its
estimand is the run's expected NDB/K against these bins: the mean, over bins, of each bin's
probability of being flagged with these sample sizes. The bins' indicators are Bernoulli trials
with unequal probabilities; for independent ones the Clopper-Pearson interval for a binomial
proportion (Clopper & Pearson 1934) is conservative for their mean: the tails of their count,
beyond one from its mean, are no heavier than the binomial's with the same mean (Hoeffding 1956,
"On the distribution of the number of successes in independent trials"). The bins' counts come
from one multinomial draw per set, so their flags are not quite independent:
tests/indexer/test_ndb_intervals.py checks the coverage by seeded simulation. The interval
always contains NDB/K.

**Power.** The probability that the z-test flags a bin whose share of the training
distribution is P and of the generator's is Q, with n_t training images and n_g samples, summed
exactly over both binomial counts (the exact unconditional power of Suissa & Shuster 1985,
"Exact unconditional sample sizes for the 2x2 binomial trial", applied to the pooled z-test the
product runs). The usual normal approximation (Fleiss, Levin & Paik 2003, section 4.2) is badly
off for a fully dropped bin (Q = 0: the generated count has no variance and the pooled standard
error shrinks with the training count); docs/inspection.md has the comparison.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modescope.indexer.analyses.results import JsonRecord

if TYPE_CHECKING:
    import numpy as np

LEVEL = 0.95  # the interval's confidence level
POWER = 0.8  # the power the result states its sensitivity at
MAX_SAMPLES = 10_000_000  # beyond this, "no number of samples" reaches POWER
_TAIL = 1e-12  # binomial mass left out at each end of the exact sums


def clopper_pearson(x: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact binomial interval for a proportion from x successes out of n (Clopper & Pearson
    1934): lower = Beta(a/2; x, n - x + 1), upper = Beta(1 - a/2; x + 1, n - x), a = 1 - level;
    0 and 1 at the ends. It contains x / n."""
    from scipy.stats import beta

    if not 0 <= x <= n or n < 1:
        raise ValueError(f"need 0 <= x <= n and n >= 1, got x={x}, n={n}")
    a = 1 - level
    lo = 0.0 if x == 0 else float(beta.ppf(a / 2, x, n - x + 1))
    hi = 1.0 if x == n else float(beta.ppf(1 - a / 2, x + 1, n - x))
    return lo, hi


def _support(n: int, p: float) -> tuple[np.ndarray, np.ndarray]:
    """The counts of Binomial(n, p) holding all but 2e-12 of its mass, and their weights."""
    import numpy as np
    from scipy.stats import binom

    if p in (0.0, 1.0):
        return np.array([round(n * p)]), np.ones(1)
    lo, hi = int(binom.ppf(_TAIL, n, p)), int(binom.isf(_TAIL, n, p))
    counts = np.arange(lo, hi + 1)
    return counts, binom.pmf(counts, n, p)


def _against(p_train: float, n_train: int, alpha: float) -> Callable[[float, int], float]:
    """``rejection_probability`` for one training share and size, as a function of the
    generated share and size (the training counts' weights computed once)."""
    from modescope.indexer.ndb import z_test

    a, wa = _support(n_train, p_train)
    share_t = (a / n_train)[:, None]

    def at(p_gen: float, n_gen: int) -> float:
        b, wb = _support(n_gen, p_gen)
        _, pv = z_test(share_t, (b / n_gen)[None, :], n_train, n_gen)
        return float(wa @ (pv < alpha) @ wb)

    return at


def rejection_probability(p_train: float, p_gen: float, n_train: int, n_gen: int,
                          alpha: float) -> float:
    """Exact probability that the pooled two-proportion z-test (``ndb.z_test``) rejects at
    ``alpha`` when the training count is Binomial(n_train, p_train) and the generated count
    Binomial(n_gen, p_gen): the sum over both counts of their probabilities times the test's
    decision."""
    return _against(p_train, n_train, alpha)(p_gen, n_gen)


@dataclass(frozen=True)
class NDBPower(JsonRecord):
    """How small a loss the per-bin test can see, for the median training bin."""

    median_train_share: float  # P: the median bin's share of the training images
    target: float  # the power the two figures below are stated at
    dropped: float  # probability that a bin of share P with no samples at all is flagged
    detectable_share: float | None  # flagged with ``target`` probability below this share
    samples_needed: int | None  # samples for ``target`` power against a fully dropped bin


def _largest_detectable(at: Callable[[float, int], float], p: float, n_gen: int,
                        target: float) -> float:
    """The largest generated share Q <= P at which a bin of training share P is still flagged
    with probability >= target (bisection to P / 2^16: the power falls as Q rises to P)."""
    lo, hi = 0.0, 1.0  # fractions of P: power(lo) >= target > power(hi)
    for _ in range(16):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if at(mid * p, n_gen) >= target else (lo, mid)
    return lo * p


def _samples_needed(at: Callable[[float, int], float], target: float) -> int | None:
    """The fewest samples with which a fully dropped bin is flagged with probability >= target
    (with Q = 0 the power grows with n_g: z^2 = P n_g / (1 - pooled share))."""
    if at(0.0, MAX_SAMPLES) < target:
        return None
    lo, hi = 0, MAX_SAMPLES  # enough at hi, not at lo (no samples: nothing to test)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if at(0.0, mid) >= target else (mid, hi)
    return hi


@functools.lru_cache(maxsize=256)
def power(median_train_share: float, n_train: int, n_gen: int, alpha: float,
          target: float = POWER) -> NDBPower:
    """The test's sensitivity for a bin holding ``median_train_share`` of the training set
    (cached: every checkpoint of a run is scored against the same bins)."""
    p = median_train_share
    if not 0 <= p <= 1:
        raise ValueError(f"a share must be in [0, 1], got {p}")
    if p == 0:  # an empty bin cannot be dropped
        return NDBPower(0.0, target, 0.0, None, None)
    at = _against(p, n_train, alpha)
    dropped = at(0.0, n_gen)
    detectable = _largest_detectable(at, p, n_gen, target) if dropped >= target else None
    return NDBPower(round(p, 6), target, round(dropped, 6),
                    None if detectable is None else round(detectable, 6),
                    _samples_needed(at, target))


def _percent(x: float) -> str:
    return f"{x * 100:.2g}%" if x < 0.01 else f"{x * 100:.1f}%"


def _probability(x: float) -> str:
    if x > 0.99:
        return "over 99%"
    return "under 1%" if x < 0.01 else f"{x * 100:.0f}%"


def power_sentence(p: NDBPower, n_gen: int) -> str:
    """The power in words (the CLI line, the page, the too-few-samples warning)."""
    if p.median_train_share == 0:
        return "the median bin holds no training images: the test cannot see a dropped mode"
    share = f"{_percent(p.median_train_share)} of the training images (the median bin)"
    target = f"{p.target * 100:.0f}%"
    if p.detectable_share is None:
        more = (f"no number of samples reaches {target} (too few training images per bin; "
                "lower --k)" if p.samples_needed is None else
                f"generate at least {p.samples_needed} samples for {target}")
        return (f"with {n_gen} samples, a fully dropped mode holding {share} is flagged with "
                f"probability {_probability(p.dropped)}: {more}")
    return (f"with {n_gen} samples, a mode holding {share} is flagged with {target} probability "
            f"once its share of the samples falls below {_percent(p.detectable_share)}; a fully "
            f"dropped one is flagged with probability {_probability(p.dropped)} ({target} from "
            f"{p.samples_needed} samples on)")
