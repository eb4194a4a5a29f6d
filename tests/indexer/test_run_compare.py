"""Did curation help? The verdicts and their words, both directions and within the noise, and
the copy-rate test against a hand-summed Fisher's exact test and its level by simulation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import hypergeom

from modescope.indexer.ndb_stats import clopper_pearson
from modescope.indexer.run_compare import (
    ALPHA,
    Side,
    fisher_p,
    measure_rows,
    summary,
    verdict_sentence,
)

VERSIONS = {"train": "t1", "flags": "f1", "code": "modes/3"}


def modes(ndb: int, k: int = 50, n_gen: int = 500) -> dict[str, Any]:
    return {"ndb_over_k": ndb / k, "ndb": ndb, "k": k, "n_gen": n_gen,
            "ndb_over_k_ci95": list(clopper_pearson(ndb, k))}


def mem(copies: int, n: int = 500) -> dict[str, Any]:
    return {"copies": copies, "n_samples": n, "copy_rate": copies / n, "copy_possible": True}


def side(run: str, ndb: int, copies: int, n_gen: int = 500, **versions: str) -> Side:
    v = {**VERSIONS, **versions}
    return Side(run, {"modes": modes(ndb, n_gen=n_gen), "memorisation": mem(copies)},
                {"modes": {**v, "generated": run}, "memorisation": {**v, "generated": run}})


def verdicts(a: Side, b: Side, analyses: tuple[str, ...] = ("modes", "memorisation")
             ) -> dict[str, str]:
    return {r.measure: r.verdict for r in measure_rows(a, b) if r.analysis in analyses}


def test_fisher_p_is_the_hand_summed_two_sided_hypergeometric_test() -> None:
    x1, n1, x2, n2 = 9, 60, 2, 70
    total = x1 + x2
    dist = hypergeom(n1 + n2, total, n1)  # copies among the first run's samples, margins fixed
    observed = dist.pmf(x1)
    brute = sum(dist.pmf(x) for x in range(total + 1) if dist.pmf(x) <= observed * (1 + 1e-7))
    assert fisher_p(x1, n1, x2, n2) == pytest.approx(brute, rel=1e-9)
    assert fisher_p(0, 100, 0, 100) == 1.0
    with pytest.raises(ValueError):
        fisher_p(5, 4, 0, 10)


def test_the_copy_rate_test_keeps_its_level_when_nothing_changed() -> None:
    rng = np.random.default_rng(0)
    rejected = [fisher_p(int(rng.binomial(200, 0.04)), 200, int(rng.binomial(200, 0.04)), 200)
                < ALPHA for _ in range(2000)]
    # Fisher's test is conservative: at most ALPHA plus three standard errors of 2000 draws
    assert np.mean(rejected) <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / 2000)


def test_fewer_dropped_modes_and_copies_read_better() -> None:
    a, b = side("parent", ndb=25, copies=40), side("child", ndb=5, copies=5)
    assert verdicts(a, b) == {"NDB/K": "better", "copy rate": "better"}
    rows = measure_rows(a, b)
    assert "lower, better (the 95% intervals do not overlap)" in rows[0].sentence
    assert "lower, better (Fisher's exact test p = " in rows[1].sentence
    assert rows[0].change_text == "-0.400" and rows[1].change_text == "-7.0 points"
    assert verdict_sentence("parent", "child", rows) == \
        "Curation helped: child is better than parent on NDB/K and copy rate."


def test_more_dropped_modes_and_copies_read_worse() -> None:
    a, b = side("parent", ndb=5, copies=5), side("child", ndb=25, copies=40)
    assert verdicts(a, b) == {"NDB/K": "worse", "copy rate": "worse"}
    assert "higher, worse" in measure_rows(a, b)[0].sentence
    assert summary(a, b)["sentence"] == \
        "Curation did not help: child is worse than parent on NDB/K and copy rate."


def test_small_changes_are_within_the_noise_and_mixed_ones_say_both() -> None:
    a, b = side("parent", ndb=10, copies=10), side("child", ndb=8, copies=12)
    assert verdicts(a, b) == {"NDB/K": "within the noise", "copy rate": "within the noise"}
    assert "within the noise (the 95% intervals overlap)" in measure_rows(a, b)[0].sentence
    assert summary(a, b)["sentence"].startswith("Within the noise: no measure of child")
    mixed = measure_rows(side("p", ndb=25, copies=5), side("c", ndb=5, copies=40))
    assert verdict_sentence("p", "c", mixed) == \
        "Mixed: c is better than p on NDB/K and worse on copy rate."
    half = measure_rows(side("p", ndb=25, copies=10), side("c", ndb=5, copies=12))
    assert verdict_sentence("p", "c", half) == \
        "Curation helped: c is better than p on NDB/K; copy rate within the noise."


def test_other_training_sets_missing_analyses_and_unequal_sample_counts_are_said() -> None:
    a = side("parent", ndb=25, copies=40, flags="old")
    b = side("child", ndb=5, copies=5)
    assert verdicts(a, b) == {"NDB/K": "not comparable", "copy rate": "not comparable"}
    assert summary(a, b)["sentence"].startswith("Nothing to compare yet")
    lone = Side("parent", {}, {})
    rows = measure_rows(lone, b)
    assert [r.verdict for r in rows] == ["missing"] * 4
    assert rows[0].sentence == "NDB/K: no modes analysis of parent yet"
    fewer = side("child", ndb=5, copies=5, n_gen=100)
    assert "Note: the runs have 500 and 100 samples" in measure_rows(
        side("parent", ndb=25, copies=40), fewer)[0].sentence


def fidelity(run: str, coverage: float, kid: float, kid_se: float = 2e-4, n: int = 500
             ) -> Side:
    """A side with only prdc and distances results (block5), coverage +- 0.03."""
    prdc = {"layers": [{"layer": "block5", "samples": {
        "n": n, "coverage": coverage, "coverage_ci95": [coverage - 0.03, coverage + 0.03]}}]}
    dist = {"layers": [{"layer": "block5", "samples": {"n": n, "kid": kid, "kid_se": kid_se}}]}
    v = {**VERSIONS, "generated": run}
    return Side(run, {"prdc": prdc, "distances": dist}, {"prdc": v, "distances": v})


def test_coverage_up_and_kid_down_read_better_and_small_changes_within_the_noise() -> None:
    a, b = fidelity("parent", 0.50, 0.0040), fidelity("child", 0.80, 0.0010)
    assert verdicts(a, b, ("prdc", "distances")) == {"coverage (block5)": "better",
                                                     "KID (block5)": "better"}
    near = fidelity("child", 0.52, 0.0038)
    assert verdicts(a, near, ("prdc", "distances")) == {
        "coverage (block5)": "within the noise", "KID (block5)": "within the noise"}
    assert "Note: the runs have 500 and 200 samples" in [
        r for r in measure_rows(a, fidelity("child", 0.8, 0.001, n=200))
        if r.analysis == "prdc"][0].sentence


def test_the_training_images_that_became_reached_or_unreached_are_listed() -> None:
    a, b = fidelity("parent", 0.5, 0.004), fidelity("child", 0.6, 0.003)
    a.results["prdc"]["layers"][0]["reach"] = {"1": 0, "2": 3, "3": 0, "4": 1}
    b.results["prdc"]["layers"][0]["reach"] = {"1": 2, "2": 0, "3": 0, "4": 5}
    assert summary(a, b)["reach"] == {"layer": "block5", "reached": [1], "unreached": [2]}
    other = Side("child", b.results, {"prdc": {**VERSIONS, "flags": "f2", "generated": "c"}})
    assert summary(a, other)["reach"] is None  # another training set: ids are not comparable
    assert summary(side("parent", 5, 5), side("child", 5, 5))["reach"] is None  # no prdc
