"""NDB/K's interval and the per-bin test's power, checked by seeded simulation.

The data: a mixture of 8 well-separated components on the unit sphere in 4 dimensions (centred
on +-e_i), N_TRAIN training points and N_GEN generated ones, K = default_k(N_TRAIN). In every
trial the bins are fitted on that trial's training set with the product's spherical k-means
(``kmeans_bins``, FAISS) and points are binned with ``assign``; NDB and its interval come from
``ndb_from_bins``. ``ModeBins``'s PCA whitening is left out: it is a linear map fitted on the
training set, which isotropic 4-dimensional data does not need.

The estimand of the interval is the run's expected NDB/K against the trial's bins and training
set: the mean over bins of P(bin flagged), each an exact binomial sum over the generated count
(the expectation of a sum needs only the bins' marginals, so the multinomial's dependence does
not enter it). It is also checked against the expectation over training sets (the mean over
trials).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import binom, binomtest, norm

from modescope.indexer.ndb import assign, default_k, kmeans_bins, ndb_from_bins, z_test
from modescope.indexer.ndb_stats import clopper_pearson, power, rejection_probability

TRIALS = 200
N_TRAIN, N_GEN, ALPHA = 800, 500, 0.05
DIM, COMPONENTS, SPREAD = 4, 8, 0.35
CENTRES = np.vstack([np.eye(DIM), -np.eye(DIM)])
FRESH = 20_000  # points drawn to estimate each bin's mass under the generator


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread() -> Iterator[None]:
    """Hundreds of small k-means runs: OpenMP threads only add overhead here."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def draw(rng: np.random.Generator, n: int, components: range = range(COMPONENTS)
         ) -> np.ndarray:
    x = CENTRES[rng.choice(np.asarray(components), n)] + SPREAD * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def expected_ndb_over_k(train_counts: np.ndarray, mass: np.ndarray) -> float:
    """E[NDB/K] with the training counts fixed and each generated count Binomial(N_GEN, mass):
    the mean over bins of the exact probability that the bin's z-test rejects."""
    cg = np.arange(N_GEN + 1)
    _, pv = z_test((train_counts / N_TRAIN)[:, None], (cg / N_GEN)[None, :], N_TRAIN, N_GEN)
    pmf = binom.pmf(cg[None, :], N_GEN, mass[:, None])
    return float(np.mean(np.sum(pmf * (pv < ALPHA), axis=1)))


@dataclass
class Trials:
    estimate: np.ndarray  # NDB/K per trial
    interval: np.ndarray  # (trials, 2)
    expected: np.ndarray  # E[NDB/K | this trial's training set and bins]

    def contains(self, value: np.ndarray | float) -> np.ndarray:
        return (self.interval[:, 0] <= value) & (value <= self.interval[:, 1])


def run_trials(generator: str, trials: int = TRIALS) -> Trials:
    """``generator``: "same" draws from the training distribution, "resample" draws from the
    training set itself, "two-dropped" from 6 of the 8 components."""
    k = default_k(N_TRAIN)
    est, ci, exp = [], [], []
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        train = draw(rng, N_TRAIN)
        centroids = kmeans_bins(train, k, seed=seed)
        tb = assign(train, centroids)
        ct = np.bincount(tb, minlength=k)
        if generator == "resample":
            gb, mass = tb[rng.integers(0, N_TRAIN, N_GEN)], ct / N_TRAIN
        else:
            parts = range(2, COMPONENTS) if generator == "two-dropped" else range(COMPONENTS)
            gb = assign(draw(rng, N_GEN, parts), centroids)
            mass = np.bincount(assign(draw(rng, FRESH, parts), centroids), minlength=k) / FRESH
        r = ndb_from_bins(tb, gb, k, alpha=ALPHA)
        est.append(r.ndb_over_k)
        ci.append(r.ndb_over_k_ci)
        exp.append(expected_ndb_over_k(ct, mass))
    return Trials(np.array(est), np.array(ci), np.array(exp))


@pytest.fixture(scope="module")
def same() -> Trials:
    return run_trials("same")


def test_the_interval_is_the_exact_binomial_one() -> None:
    for k in (2, 15, 20, 100):
        for x in range(k + 1):
            exact = binomtest(x, k).proportion_ci(0.95, method="exact")
            assert clopper_pearson(x, k) == pytest.approx((exact.low, exact.high), abs=1e-9)


def test_under_the_null_the_interval_holds_its_estimate_and_covers_the_expectation(
        same: Trials) -> None:
    assert same.contains(same.estimate).all()
    coverage = same.contains(same.expected).mean()
    assert coverage >= 0.9, coverage
    overall = same.estimate.mean()  # the expectation over training sets too (Monte Carlo)
    assert same.contains(overall).mean() >= 0.9
    # each bin's test has level alpha: a generator of the training distribution averages
    # about alpha, not the 17% that the bootstrap of both sets flagged
    assert overall < 2 * ALPHA and same.expected.mean() < 2 * ALPHA


def test_a_generator_resampling_the_training_set_is_covered_too() -> None:
    resample = run_trials("resample")
    assert resample.contains(resample.estimate).all()
    coverage = resample.contains(resample.expected).mean()
    assert coverage >= 0.9, coverage


def test_a_generator_missing_two_of_eight_modes_is_far_above_the_null(same: Trials) -> None:
    dropped = run_trials("two-dropped", trials=50)
    assert dropped.contains(dropped.estimate).all()
    assert dropped.contains(dropped.expected).mean() >= 0.9
    null = max(same.estimate.mean(), float(np.quantile(same.expected, 0.9)))
    assert (dropped.interval[:, 0] > null).all()  # every interval lies above the null
    # about 2 of 8 bins lost their component and are flagged; over-produced ones add to that
    assert dropped.estimate.mean() >= 2 / COMPONENTS


def simulated(p: float, q: float, n_t: int, n_g: int, reps: int = 40_000,
              seed: int = 0) -> float:
    """Share of simulated (training, generated) count pairs whose z-test rejects."""
    rng = np.random.default_rng(seed)
    ct, cg = rng.binomial(n_t, p, reps), rng.binomial(n_g, q, reps)
    _, pv = z_test(ct / n_t, cg / n_g, n_t, n_g)
    return float(np.mean(pv < ALPHA))


TOLERANCE = 0.012  # about 5 standard errors of a 40,000-draw rejection rate


@pytest.mark.parametrize("p,q,n_t,n_g", [
    (0.027, 0.0, 600, 500), (0.027, 0.009, 600, 500), (0.025, 0.0, 1600, 100),
    (0.025, 0.0, 1600, 200), (0.01, 0.0, 2000, 300), (0.05, 0.025, 800, 500),
    (0.0125, 0.005, 800, 2000), (0.1, 0.06, 400, 300)])
def test_the_exact_power_matches_a_simulation(p: float, q: float, n_t: int, n_g: int) -> None:
    assert rejection_probability(p, q, n_t, n_g, ALPHA) == pytest.approx(
        simulated(p, q, n_t, n_g), abs=TOLERANCE)


def test_the_normal_approximation_would_misstate_a_fully_dropped_bin() -> None:
    """Why the power is summed exactly: with Q = 0 the textbook approximation (Fleiss, Levin &
    Paik 2003, section 4.2) is far from the test's real rejection rate."""
    p, n_t, n_g = 0.025, 1600, 100
    pooled = n_t * p / (n_t + n_g)
    s0 = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_g))
    s1 = np.sqrt(p * (1 - p) / n_t)
    approx = float(norm.cdf((p - norm.isf(ALPHA / 2) * s0) / s1))
    real = simulated(p, 0.0, n_t, n_g)
    assert abs(approx - real) > 5 * TOLERANCE
    assert rejection_probability(p, 0.0, n_t, n_g, ALPHA) == pytest.approx(real, abs=TOLERANCE)


@pytest.mark.parametrize("p,n_t,n_g", [(0.027, 600, 500), (0.025, 1600, 400),
                                       (0.0125, 800, 1000), (0.05, 300, 150)])
def test_the_stated_power_figures_hold_by_simulation(p: float, n_t: int, n_g: int) -> None:
    s = power(p, n_t, n_g, ALPHA)
    assert s.dropped == pytest.approx(simulated(p, 0.0, n_t, n_g), abs=TOLERANCE)
    assert s.detectable_share is not None and 0 < s.detectable_share < p
    assert simulated(p, s.detectable_share, n_t, n_g) == pytest.approx(s.target, abs=TOLERANCE)
    # a little more of the mode kept and the test no longer sees it 80% of the time
    assert simulated(p, 1.1 * s.detectable_share, n_t, n_g) < s.target
    assert s.samples_needed is not None
    assert rejection_probability(p, 0.0, n_t, s.samples_needed, ALPHA) >= s.target
    assert rejection_probability(p, 0.0, n_t, s.samples_needed - 1, ALPHA) < s.target
    assert simulated(p, 0.0, n_t, s.samples_needed) >= s.target - TOLERANCE


def test_the_too_few_samples_warning_comes_from_the_power() -> None:
    k, n_t = 40, 1600  # 40 training images per bin
    train = np.repeat(np.arange(k), n_t // k)
    few = ndb_from_bins(train, np.arange(100) % k, k)
    needed = few.power.samples_needed
    assert few.power.dropped < few.power.target and needed is not None and needed > 100
    assert any(f"generate at least {needed} samples for 80%" in w for w in few.warnings)
    enough = ndb_from_bins(train, np.arange(needed) % k, k)
    assert enough.power.dropped >= enough.power.target
    assert not any("too few samples" in w for w in enough.warnings)
