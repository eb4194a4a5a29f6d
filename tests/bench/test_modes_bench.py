"""The mode-count benchmark (bench/modes_bench.py): its counting rule on known histograms, and
one tiny end-to-end run from the checkout (demo data, classifier, a short training, the table)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.modes_bench import CONFIDENT, mode_counts

ROOT = Path(__file__).resolve().parents[2]


def one_hot(labels: list[int], classes: int, p: float = 0.99) -> np.ndarray:
    out = np.full((len(labels), classes), (1 - p) / (classes - 1))
    out[np.arange(len(labels)), labels] = p
    return out


def test_modes_are_covered_at_a_tenth_of_their_expected_samples_and_kl_is_zero_on_the_data(
        ) -> None:
    share = np.full(4, 0.25)
    matching = one_hot([0, 1, 2, 3] * 25, 4)
    assert mode_counts(matching, share) == {"covered": 4, "kl": 0.0, "confident": 1.0}
    # mode 3 gets 2 of 100 samples: under a tenth of its expected 25, so not covered
    skewed = one_hot([0] * 40 + [1] * 30 + [2] * 28 + [3] * 2, 4)
    counts = mode_counts(skewed, share)
    gen = np.array([40, 30, 28, 2]) / 100
    assert counts["covered"] == 3
    assert counts["kl"] == pytest.approx(float(np.sum(gen * np.log(gen / 0.25))))
    # unsure samples do not count towards any mode
    unsure = one_hot([0] * 100, 4, p=CONFIDENT - 0.05)
    assert mode_counts(unsure, share)["confident"] == 0.0
    assert mode_counts(unsure, share)["covered"] == 0


@pytest.mark.slow
def test_a_tiny_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "modes_bench.py"), "--modes", "8", "--n", "120",
         "--steps", "4", "--batch", "16", "--configs", "resize-32,keras-io", "--seeds", "0",
         "--samples", "40", "--work", str(tmp_path / "work"), "--json", str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "MODESCOPE_WORKSPACE"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mode-count benchmark: 8 known modes" in proc.stdout
    table = proc.stdout.split("mode-count benchmark")[1]
    assert "unseen real images" in table and "resize-32" in table and "keras-io" in table
    result = json.loads(out.read_text())
    assert 0 <= result["accuracy"] <= 1
    real, trained, anchor = result["results"]
    assert real["config"] == "unseen real images" and trained["config"] == "resize-32"
    assert anchor["config"] == "keras-io" and anchor["steps"] == trained["steps"] >= 4
    for row in (real, trained, anchor):  # every row scored by the same analyses
        assert 0 <= row["covered"] <= 8 and np.isfinite(row["ndb_k"]), row
        assert 0 <= row["coverage"] <= 1, row
