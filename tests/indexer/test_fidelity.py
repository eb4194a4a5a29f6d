"""Precision/recall/density/coverage, FD and KID against brute force and constructed Gaussians;
their intervals checked by seeded simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from modescope.indexer.frechet import (
    TrainGaussian,
    TrainKernel,
    fd_with_interval,
    frechet,
    gaussian,
)
from modescope.indexer.prdc import expected_coverage, knn_radii, prdc

D = 12
CENTRES = np.random.default_rng(99).standard_normal((8, D)) * 3


def units(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def mixture(rng: np.random.Generator, n: int, clusters: tuple[int, ...] = tuple(range(8)),
            shift: float = 0.0) -> np.ndarray:
    """Unit vectors around some of 8 fixed centres (a constructed multi-mode data set)."""
    which = rng.choice(clusters, n)
    return units(CENTRES[which] + rng.standard_normal((n, D)) + shift)


def reference_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The reference code's formulas (clovaai/generative-evaluation-prdc), Euclidean cdist."""
    def radii(x: np.ndarray) -> np.ndarray:
        return np.sort(cdist(x, x), axis=1)[:, k]

    rr, rf = radii(real), radii(fake)
    d = cdist(real, fake)
    return {"precision": float((d < rr[:, None]).any(0).mean()),
            "recall": float((d < rf[None, :]).any(1).mean()),
            "density": float((d < rr[:, None]).sum(0).mean() / k),
            "coverage": float((d.min(1) < rr).mean())}


METRICS = ("precision", "recall", "density", "coverage")


def test_prdc_equals_the_reference_code_and_its_leave_one_out_values() -> None:
    rng = np.random.default_rng(0)
    real, fake = mixture(rng, 90), mixture(rng, 40, (0, 1, 2), shift=0.3)
    found = prdc(real, fake, k=3)
    want = reference_prdc(real.astype(np.float64), fake.astype(np.float64), 3)
    for m in METRICS:
        assert getattr(found, m).value == pytest.approx(want[m], abs=1e-9), m
    # the jackknife's exact leave-one-out values, by recomputing without each sample
    loo = {m: np.array([reference_prdc(real.astype(np.float64),
                                       np.delete(fake, j, 0).astype(np.float64), 3)[m]
                        for j in range(len(fake))]) for m in ("recall", "coverage")}
    for m in ("recall", "coverage"):
        n = len(fake)
        var = (n - 1) / n * np.sum((loo[m] - loo[m].mean()) ** 2)
        value, half = getattr(found, m).value, 1.959964 * np.sqrt(var)
        assert getattr(found, m).ci95 == pytest.approx((max(0, value - half),
                                                        min(1, value + half)), abs=1e-6), m
    d = cdist(real, fake)
    rr = np.sort(cdist(real, real), axis=1)[:, 3]
    assert (found.reach == (d < rr[:, None]).sum(1)).all()


def test_prdc_from_every_pair_equals_the_dense_passes() -> None:
    from modescope.indexer.prdc import _pairs

    rng = np.random.default_rng(1)
    real, fake = mixture(rng, 120), mixture(rng, 50, (0, 1, 5), shift=0.2)
    dense = prdc(real, fake, k=4)
    j, i = (a.ravel() for a in np.meshgrid(np.arange(50), np.arange(120), indexing="ij"))
    paired = _pairs(j, i, (fake @ real.T).ravel(), knn_radii(real, 4), knn_radii(fake, 4), 120, 4)
    for m in METRICS:
        assert getattr(paired, m) == getattr(dense, m), m  # values and intervals
    assert (paired.reach == dense.reach).all()


def test_a_large_training_set_reads_its_balls_from_the_approximate_search(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from modescope.indexer import graph

    rng = np.random.default_rng(2)
    real, fake = mixture(rng, 3000), mixture(rng, 400, (0, 1, 2, 3))
    exact = prdc(real, fake)
    monkeypatch.setattr(graph, "EXACT_UP_TO", 1000)
    found = prdc(real, fake)
    assert exact.exact and not found.exact  # and says so
    for m in METRICS:
        assert getattr(found, m).value == pytest.approx(getattr(exact, m).value, abs=0.01), m
    assert found.coverage.value < 0.6 < found.precision.value  # half the modes: still reads so


def test_knn_radii_are_the_brute_force_kth_neighbours() -> None:
    x = mixture(np.random.default_rng(1), 50)
    r = knn_radii(x, 4)
    sims = np.sort(x @ x.T, axis=1)[:, ::-1]  # the first is the vector itself
    assert r.inner == pytest.approx(sims[:, 4], abs=1e-6)
    assert r.outer == pytest.approx(sims[:, 5], abs=1e-6)
    with pytest.raises(ValueError, match="k=4"):
        knn_radii(x[:5], 4)


def test_samples_from_the_data_score_like_the_data() -> None:
    rng = np.random.default_rng(2)
    real, fake = mixture(rng, 600), mixture(rng, 600)
    found = prdc(real, fake, k=5)
    assert found.precision.value > 0.85 and found.recall.value > 0.85
    assert found.density.ci95[0] <= 1.0 <= found.density.ci95[1]
    assert abs(found.density.value - 1) < 0.15
    expected = expected_coverage(600, 600, 5)
    assert found.coverage.ci95[0] <= expected <= found.coverage.ci95[1]


def test_samples_from_half_the_modes_reach_half_the_data() -> None:
    rng = np.random.default_rng(3)
    real, fake = mixture(rng, 800), mixture(rng, 800, (0, 1, 2, 3))
    found = prdc(real, fake, k=5)
    assert found.recall.value == pytest.approx(0.5, abs=0.08)
    assert found.coverage.value == pytest.approx(0.5, abs=0.08)
    assert found.precision.value > 0.85  # what it makes looks real
    # the unreached training images are those of the missing modes
    which = np.argmax(real @ units(CENTRES).T, axis=1)
    assert (found.reach[which >= 4] == 0).mean() > 0.9


def test_prdc_intervals_cover_the_expected_value_in_seeded_simulation() -> None:
    """Training set fixed; the generator (a shifted mixture missing two modes) is drawn again
    each trial. The truth is each metric's mean over many draws at this size."""
    rng = np.random.default_rng(4)
    real = mixture(rng, 200)
    radii = knn_radii(real, 5)

    def draw() -> np.ndarray:
        return mixture(rng, 150, (0, 1, 2, 3, 4, 5), shift=0.4)

    runs = [prdc(real, draw(), 5, radii) for _ in range(400)]
    truth = {m: float(np.mean([getattr(r, m).value for r in runs[:250]])) for m in METRICS}
    for m in METRICS:
        hits = [getattr(r, m).ci95[0] <= truth[m] <= getattr(r, m).ci95[1] for r in runs[250:]]
        assert np.mean(hits) >= 0.90, (m, np.mean(hits))


def test_kid_is_unbiased_and_its_jackknife_equals_brute_force() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((40, 6)), rng.standard_normal((30, 6)) + 0.2

    def brute(a: np.ndarray, b: np.ndarray) -> float:
        def k(p: np.ndarray, q: np.ndarray) -> np.ndarray:
            return (p @ q.T / 6 + 1) ** 3
        n, m = len(a), len(b)
        kaa, kbb = k(a, a), k(b, b)
        return float((kaa.sum() - np.trace(kaa)) / (n * (n - 1))
                     + (kbb.sum() - np.trace(kbb)) / (m * (m - 1)) - 2 * k(a, b).mean())

    found = TrainKernel(x).kid(y)
    assert found.value == pytest.approx(brute(x, y), rel=1e-9)
    var = 0.0
    for loo in ([brute(np.delete(x, i, 0), y) for i in range(40)],
                [brute(x, np.delete(y, j, 0)) for j in range(30)]):
        a = np.array(loo)
        var += (len(a) - 1) / len(a) * np.sum((a - a.mean()) ** 2)
    assert found.se == pytest.approx(np.sqrt(var), rel=1e-9)


def test_kid_of_one_distribution_is_zero_within_two_standard_errors() -> None:
    rng = np.random.default_rng(6)
    z = []
    for _ in range(60):
        found = TrainKernel(mixture(rng, 150), gamma=1.0).kid(mixture(rng, 120))
        z.append(found.value / found.se)
    assert np.mean(np.abs(np.array(z)) < 2) >= 0.88
    assert abs(np.mean(z)) < 0.5  # centred on zero: the estimator is unbiased
    shifted = TrainKernel(mixture(rng, 150), gamma=1.0).kid(mixture(rng, 120, (0, 1, 2, 3)))
    assert shifted.value > 3 * shifted.se  # half the modes missing: clearly positive


def test_fd_of_identical_sets_is_zero_and_both_forms_agree() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((300, 16)), rng.standard_normal((120, 16)) * 1.3 + 0.2
    assert frechet(*gaussian(x), *gaussian(x)) == pytest.approx(0.0, abs=1e-6)
    train = TrainGaussian(x)
    assert train.fd_fast(x) == pytest.approx(0.0, abs=1e-6)
    assert train.fd_fast(y) == pytest.approx(frechet(*gaussian(x), *gaussian(y)), rel=1e-6)
    few = y[:10]  # fewer samples than dimensions: the Gram form
    assert train.fd_fast(few) == pytest.approx(frechet(*gaussian(x), *gaussian(few)), rel=1e-5)
    fd = fd_with_interval(train, y, replicas=30, seed=1)
    assert fd.ci95[0] < fd.value < fd.ci95[1]
    assert fd == fd_with_interval(train, y, replicas=30, seed=1)  # seeded
    with pytest.raises(ValueError):
        train.fd_fast(y[:, :5])


def test_checkpoint_scorers_write_block5_coverage_fd_and_kid_of_the_samples(
        tmp_path: Path) -> None:
    from modescope.core.workspace import Workspace
    from modescope.indexer.analyses import distances as dist_analysis
    from modescope.indexer.analyses import prdc as prdc_analysis
    from modescope.indexer.analyses.registry import Samples, TrainingSet, checkpoint_analyses

    rng = np.random.default_rng(8)
    train = {"block1": mixture(rng, 120), "block5": mixture(rng, 120)}
    gen = {"block1": mixture(rng, 60, (0, 1)), "block5": mixture(rng, 60, (0, 1))}
    training = TrainingSet(Workspace(tmp_path), 32, np.arange(120), train, {})
    samples = Samples(np.zeros((60, 32, 32, 3), np.uint8), gen, np.arange(60))
    row = {**prdc_analysis.prepare_checkpoint(training)(samples),
           **dist_analysis.prepare_checkpoint(training)(samples)}
    direct = prdc(train["block5"], gen["block5"], 5)
    assert row["coverage_block5"] == round(direct.coverage.value, 4)
    assert row["precision_block5"] == round(direct.precision.value, 4)
    assert row["fd_block5"] == pytest.approx(
        frechet(*gaussian(train["block5"]), *gaussian(gen["block5"])), abs=1e-4)
    assert row["kid_block5"] == round(TrainKernel(train["block5"], gamma=1.0)
                                      .kid(gen["block5"]).value, 7)
    names = [s.name for s in checkpoint_analyses()]
    assert names.index("modes") < names.index("prdc") < names.index("distances")
