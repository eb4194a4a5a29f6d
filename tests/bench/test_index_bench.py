"""The index benchmark's real-descriptor part (bench/index_bench.py): augmented copies are
copies, not the same picture, and the exact/IVF comparison reports what it measured."""

from __future__ import annotations

import numpy as np
from PIL import Image

from bench.index_bench import augmented, real_descriptors, search_rows


def test_augmented_copies_differ_from_each_other_and_keep_the_picture() -> None:
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
                for _ in range(3)]
    out = augmented(pictures, 4, 32, seed=1)
    assert out.shape == (12, 32, 32, 3) and out.dtype == np.uint8
    first = out[:4].astype(np.float32)
    assert all(not np.array_equal(first[0], first[c]) for c in range(1, 4))
    # each copy is nearer its own picture's other copies than another picture's on average
    own = np.abs(first[0] - first[1:]).mean()
    other = np.abs(first[0] - out[4:8].astype(np.float32)).mean()
    assert own < other


def test_real_descriptors_are_unit_vectors_of_both_layers_and_ivf_is_scored_against_exact(
        ) -> None:
    db = real_descriptors(60, "random", seed=0)
    assert set(db) == {"block1", "block5"}
    for v in db.values():
        assert v.shape[0] == 60 and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-3)
    queries = real_descriptors(5, "random", seed=1, copies=1)
    rows = search_rows(db["block5"], queries["block5"])
    assert [r[0] for r in rows] == ["flat", "ivf"] and rows[0][4] == "exact"
    assert 0 <= float(rows[1][4]) <= 1
