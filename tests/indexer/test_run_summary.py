"""The run's summary in words (indexer/run_summary.py): which head each kind of generator gets,
and the modes-reached test's level under its null, by simulation."""

from __future__ import annotations

from typing import Any

import numpy as np

from modescope.indexer.prdc import expected_coverage
from modescope.indexer.run_summary import HEADS, MODE_LEVEL, modes_reached, run_summary


def _scores(value: dict[str, float], n: int, width: float = 0.03) -> dict[str, Any]:
    out: dict[str, Any] = {"n": n, "recall": 0.9, "recall_ci95": [0.85, 0.95],
                           "expected_coverage": round(expected_coverage(1000, n, 5), 4)}
    for name in ("precision", "density", "coverage"):
        out[name] = value[name]
        out[f"{name}_ci95"] = [value[name] - width, value[name] + width]
    return out


def _prdc(sample: dict[str, float], reach: dict[int, int], n: int = 500) -> dict[str, Any]:
    reference = {"precision": 0.95, "density": 0.95, "coverage": 0.6}
    return {"layers": [{"layer": "block5", "k": 5, "n_train": 1000, "n_samples": n,
                        "samples": _scores(sample, n), "reference": _scores(reference, 150),
                        "reach": {str(i): c for i, c in reach.items()}}]}


def _modes(bins: int = 10) -> dict[str, Any]:
    return {"train_bin_of": {str(i): i % bins for i in range(1000)}}


def test_heads_tell_collapsed_from_low_fidelity_from_matching() -> None:
    expected = expected_coverage(1000, 500, 5)
    everywhere = {i: 1 for i in range(1000)}
    two_bins = {i: int(i % 10 < 2) for i in range(1000)}
    cases = {
        HEADS[(True, True)]: ({"precision": 0.95, "density": 0.97, "coverage": expected},
                              everywhere),
        HEADS[(False, True)]: ({"precision": 0.94, "density": 0.93, "coverage": 0.2}, two_bins),
        HEADS[(True, False)]: ({"precision": 0.70, "density": 0.45, "coverage": expected},
                               everywhere),
        HEADS[(False, False)]: ({"precision": 0.60, "density": 0.40, "coverage": 0.3},
                                two_bins),
    }
    for head, (scores, reach) in cases.items():
        r = run_summary(_modes(), _prdc(scores, reach), {"copies": 2, "n_samples": 500})
        assert r is not None and r["head"] == head, (head, r and r["head"])
        assert r["sentence"].startswith(head + ": ") and "copies 2 of 500" in r["sentence"]
    collapsed = run_summary(_modes(), _prdc(cases[HEADS[(False, True)]][0], two_bins), None)
    assert collapsed is not None and collapsed["modes"]["reached"] == 2
    assert collapsed["modes"]["under_reached"] == list(range(2, 10))
    assert run_summary(_modes(), None, None) is None  # nothing to say before prdc is stored


def test_many_copies_are_named_in_the_head_few_are_not() -> None:
    scores = {"precision": 0.99, "density": 1.1, "coverage": expected_coverage(1000, 500, 5)}
    reach = {i: 1 for i in range(1000)}
    many = run_summary(_modes(), _prdc(scores, reach), {"copies": 60, "n_samples": 500})
    few = run_summary(_modes(), _prdc(scores, reach), {"copies": 5, "n_samples": 500})
    assert many is not None and many["head"].endswith(", and copies training images")
    assert few is not None and not few["copying"] and few["head"] == HEADS[(True, True)]


def test_a_matching_generator_has_few_modes_called_under_reached() -> None:
    """Under the null (each training image reached with the expected coverage, independently),
    a bin is called under-reached at most MODE_LEVEL of the time: 200 seeded trials of 10
    bins of 100 images."""
    rng = np.random.default_rng(0)
    p = expected_coverage(1000, 500, 5)
    flagged = 0
    for _ in range(200):
        reach = {i: int(rng.random() < p) for i in range(1000)}
        found = modes_reached(_prdc({"precision": 0.9, "density": 0.9, "coverage": p}, reach),
                              _modes())
        assert found["expected_share"] == round(p, 4) and found["k"] == 10
        flagged += len(found["under_reached"])
    assert flagged / 2000 <= MODE_LEVEL
    # a bin reached at half the expected rate is found every time at this size
    half = {i: int(rng.random() < (p / 2 if i % 10 == 0 else p)) for i in range(1000)}
    assert 0 in modes_reached(_prdc({"precision": 0.9, "density": 0.9, "coverage": p}, half),
                              _modes())["under_reached"]
