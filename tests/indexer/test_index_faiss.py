"""FAISS indexes against numpy/scipy brute force on seeded data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from modescope.indexer.index import IndexCorrupt, VectorIndex


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, d: int, centres: int = 50) -> np.ndarray:
    """Vectors around centres, like descriptors of images in modes."""
    c = unit(rng, centres, d)
    x = c[rng.integers(0, centres, n)] + 0.35 * unit(rng, n, d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute(db: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = 1.0 - cdist(q, db, metric="cosine")
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


def test_flat_search_equals_scipy_cdist() -> None:
    rng = np.random.default_rng(0)
    db, q = unit(rng, 2000, 64), unit(rng, 50, 64)
    ids = rng.permutation(10_000)[:2000].astype(np.int64)
    vi = VectorIndex.build(ids, db)
    assert vi.kind == "flat"
    sims, found = vi.search(q, 24)
    bsims, border = brute(db, q, 24)
    np.testing.assert_allclose(sims, bsims, atol=1e-5)
    np.testing.assert_array_equal(found, ids[border])


def test_excluded_ids_never_come_back_and_the_rest_is_unchanged() -> None:
    rng = np.random.default_rng(1)
    db = unit(rng, 500, 32)
    ids = np.arange(100, 600, dtype=np.int64)
    vi = VectorIndex.build(ids, db)
    q = db[:5]
    excluded = set(range(100, 200))
    _, found = vi.search(q, 24, exclude=excluded)
    assert not excluded & set(found.ravel().tolist())
    keep = np.array([i not in excluded for i in ids.tolist()])
    _, border = brute(db[keep], q, 24)
    np.testing.assert_array_equal(found, ids[keep][border])
    assert vi.ntotal == 500  # nothing was removed


def test_add_and_remove_by_id_match_a_dict_of_vectors() -> None:
    rng = np.random.default_rng(2)
    model: dict[int, np.ndarray] = {}
    vi = VectorIndex.flat(16)
    for step in range(20):
        new = unit(rng, 30, 16)
        new_ids = np.arange(step * 30, step * 30 + 30, dtype=np.int64)
        vi.add(new_ids, new)
        model.update(zip(new_ids.tolist(), new, strict=True))
        gone = rng.choice(sorted(model), 10, replace=False).tolist()
        assert vi.remove(gone) == 10
        for g in gone:
            del model[g]
        assert vi.ntotal == len(model)
    keys = np.array(sorted(model), dtype=np.int64)
    db = np.stack([model[k] for k in keys.tolist()])
    q = unit(rng, 10, 16)
    _, found = vi.search(q, 10)
    _, border = brute(db, q, 10)
    np.testing.assert_array_equal(found, keys[border])
    np.testing.assert_allclose(vi.reconstruct(int(keys[3])), model[int(keys[3])])
    with pytest.raises(KeyError):
        vi.reconstruct(10**9)


def test_ivf_recall_at_24_is_at_least_095() -> None:
    rng = np.random.default_rng(3)
    db = clustered(rng, 40_000, 128)
    q = clustered(np.random.default_rng(4), 200, 128)
    ids = np.arange(len(db), dtype=np.int64)
    vi = VectorIndex.build(ids, db, kind="ivf")
    assert vi.kind == "ivf"
    _, found = vi.search(q, 24)
    _, border = brute(db, q, 24)
    recall = np.mean([len(set(f) & set(b)) / 24 for f, b in zip(found.tolist(),
                                                                 border.tolist(), strict=True)])
    assert recall >= 0.95, recall
    # removal and exclusion work on IVF too
    vi.remove([int(found[0, 0])])
    _, again = vi.search(q[:1], 24, exclude={int(found[0, 1])})
    assert int(found[0, 0]) not in again[0] and int(found[0, 1]) not in again[0]


def test_save_load_and_mmap_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    db = unit(rng, 3000, 32)
    ids = np.arange(3000, dtype=np.int64) * 7
    q = unit(rng, 5, 32)
    for kind in ("flat", "ivf"):
        vi = VectorIndex.build(ids, db, kind=kind)
        path = tmp_path / f"{kind}.faiss"
        vi.save(path)
        assert not list(tmp_path.glob(".*.tmp"))
        for mmap in (False, True) if kind == "ivf" else (False,):
            back = VectorIndex.load(path, mmap=mmap)
            assert back.kind == kind and back.ntotal == 3000
            np.testing.assert_array_equal(back.search(q, 10)[1], vi.search(q, 10)[1])


def test_a_corrupt_index_file_says_how_to_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "block1.faiss"
    VectorIndex.build(np.arange(10, dtype=np.int64), unit(np.random.default_rng(6), 10, 8)).save(
        path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(IndexCorrupt, match="modescope index --rebuild"):
        VectorIndex.load(path)


def test_arrays_are_checked_at_the_edge() -> None:
    vi = VectorIndex.flat(8)
    with pytest.raises(TypeError, match="float32"):
        vi.add(np.arange(2), np.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        vi.add(np.arange(2), np.zeros((2, 9), np.float32))
    with pytest.raises(ValueError, match="ids"):
        vi.add(np.arange(3), np.zeros((2, 8), np.float32))
