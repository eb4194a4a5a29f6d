"""The copy verdict's guarantee, by seeded simulation: unseen images are called copies at most
1 % of the time; jittered copies are found, also of training images that have a near-duplicate;
the data-copying test C_T sits near 0 for an honest generator and far below it for a copier."""

from __future__ import annotations

import numpy as np
import pytest

from modescope.indexer.datacopying import c_t
from modescope.indexer.memorisation import COPY_LEVEL, memorisation

DIM, MODES = 24, 8


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def world(seed: int) -> tuple[np.random.Generator, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng, rng.standard_normal((MODES, DIM)) * 2.0


def draw(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    """n real images: a mode, then spread inside it (two 'layers' share them)."""
    return unit(centres[rng.integers(0, MODES, n)] + rng.standard_normal((n, DIM)))


def layers(x: np.ndarray, y: np.ndarray | None = None) -> dict[str, np.ndarray]:
    return {"block1": x, "block5": x if y is None else y}


def jitter(rng: np.random.Generator, x: np.ndarray, scale: float = 0.02) -> np.ndarray:
    return unit(x + scale * rng.standard_normal(x.shape))


def test_unseen_images_are_called_copies_at_most_one_percent() -> None:
    rates = []
    for seed in range(10):
        rng, centres = world(seed)
        train, held, fresh = (draw(rng, centres, n) for n in (600, 200, 1000))
        r = memorisation(layers(train, jitter(rng, train, 0.3)), np.arange(600),
                         layers(fresh, jitter(rng, fresh, 0.3)), np.arange(1000),
                         reference=layers(held, jitter(rng, held, 0.3)))
        rates.append(r["copy_rate"])
    # conformal: P(p <= 0.01) <= 0.01 for each sample; 10,000 samples in all
    assert np.mean(rates) <= COPY_LEVEL * 1.3, rates


def test_copies_are_found_also_of_duplicated_training_images() -> None:
    rng, centres = world(1)
    train = draw(rng, centres, 600)
    train[300:400] = jitter(rng, train[200:300], 0.01)  # 100 training images with a twin
    held = draw(rng, centres, 200)
    sources = np.r_[np.arange(0, 100), np.arange(200, 300)]  # half of them duplicated
    copies = jitter(rng, train[sources], 0.02)
    r = memorisation(layers(train), np.arange(600), layers(copies), np.arange(len(copies)),
                     reference=layers(held))
    verdicts = np.array([s["verdict"] for s in r["samples"]])
    assert (verdicts[:100] == "copy").mean() >= 0.95
    assert (verdicts[100:] == "copy").mean() >= 0.95  # the ratio rule missed these
    assert not (verdicts == "novel").any()


def test_without_held_out_images_the_training_set_calibrates_leave_one_out() -> None:
    rng, centres = world(2)
    train, fresh = draw(rng, centres, 600), draw(rng, centres, 1000)
    r = memorisation(layers(train), np.arange(600), layers(fresh), np.arange(1000))
    assert r["reference"] == "training, leave-one-out" and r["n_reference"] == 600
    assert r["copy_rate"] <= 0.02
    small = memorisation(layers(train), np.arange(600), layers(fresh[:5]), np.arange(5),
                         reference=layers(fresh[5:50]))  # 45 held out: cannot resolve 1 %
    assert small["reference"] == "training, leave-one-out"


def test_data_copying_statistic_separates_honest_from_copying() -> None:
    honest, copying = [], []
    for seed in range(20):
        rng, centres = world(seed)
        train, held, fresh = (draw(rng, centres, n) for n in (800, 300, 500))
        honest.append(c_t(train, held, fresh, seed=seed).c_t)
        picks = train[rng.integers(0, 800, 500)]
        copying.append(c_t(train, held, jitter(rng, picks, 0.05), seed=seed).c_t)
    assert sum(abs(v) > 2 for v in honest) <= 2, honest  # ~5 % by chance (conservative)
    assert max(copying) < -5, copying


def test_held_out_twins_of_training_images_leave_the_reference() -> None:
    """A split that put one of two near-identical images on each side leaks: the held-out twin
    is no unseen image, and left in the reference it would make every copy look ordinary."""
    rng, centres = world(4)
    train, held = draw(rng, centres, 600), draw(rng, centres, 200)
    held[:10] = jitter(rng, train[:10], 0.01)  # 5 % of the held-out images are twins
    copies = jitter(rng, train[100:200], 0.02)
    r = memorisation(layers(train), np.arange(600), layers(copies), np.arange(100),
                     reference=layers(held))
    assert r["reference_near_duplicates"] >= 10 and r["n_reference"] <= 190
    assert r["copy_rate"] >= 0.95


def test_each_sample_says_whether_it_is_a_twin_of_a_training_image() -> None:
    """The reference leaves twins out, so the 1 % guarantee is about samples that are not
    twins; each sample says which it is, by the same rule."""
    rng, centres = world(5)
    train, held, fresh = (draw(rng, centres, n) for n in (600, 200, 300))
    samples = np.r_[jitter(rng, train[:50], 0.01), fresh]
    r = memorisation(layers(train), np.arange(600), layers(samples), np.arange(len(samples)),
                     reference=layers(held))
    twin = np.array([s["near_duplicate"] for s in r["samples"]])
    assert twin[:50].all()
    # unseen images fall within the limits as often as held-out ones do (one rule for both)
    assert abs(twin[50:].mean() - r["reference_near_duplicates"] / 200) < 0.08
    assert r["near_duplicates"] == int(twin.sum())
    verdicts = np.array([s["verdict"] for s in r["samples"]])
    assert (verdicts[50:][~twin[50:]] == "copy").mean() <= 0.03


def test_twin_ratio_zero_keeps_every_held_out_image() -> None:
    rng, centres = world(4)
    train, held = draw(rng, centres, 600), draw(rng, centres, 200)
    held[:10] = jitter(rng, train[:10], 0.01)
    copies = jitter(rng, train[100:200], 0.02)
    r = memorisation(layers(train), np.arange(600), layers(copies), np.arange(100),
                     reference=layers(held), twin_ratio=0.0)
    assert r["reference_near_duplicates"] == 0 and r["n_reference"] == 200
    assert r["near_duplicates"] == 0
    # the leaked twins stay in the reference and hide the copies (why twins leave it)
    assert r["copy_rate"] < 0.5


def test_only_images_near_a_training_image_are_compared_in_pixels() -> None:
    from modescope.indexer.copycheck import Match
    from modescope.indexer.memorisation import Gate, Reference

    rng, centres = world(3)
    train, held, fresh = (draw(rng, centres, n) for n in (600, 300, 100))
    copies = jitter(rng, train[:50], 0.01)
    gen = np.concatenate([copies, fresh])  # samples 0-49 copy training images 0-49
    asked: list[tuple[str, int, int]] = []

    def pixels(kind: str) -> object:
        def verify(a: int, b: int) -> Match:
            asked.append((kind, a, b))
            same = kind == "sample" and a < 50 and a == b
            return Match(0.5 if same else 40.0, (0.0, 0.0), False)
        return verify

    def run(gate: float) -> dict:
        asked.clear()
        return memorisation(layers(train), np.arange(600), layers(gen), np.arange(150),
                            reference=Reference(np.arange(300), layers(held), pixels("held")),
                            verify=pixels("sample"), pixel_gate=gate)

    gated = run(1.0)
    near = Gate.of(layers(train), 1.0)
    d = 1.0 - np.max(gen @ train.T, axis=1)
    compared = near.mask({"block1": d, "block5": d})
    assert 50 <= compared.sum() < 150 and compared[:50].all()  # every copy, not every sample
    assert gated["compared_in_pixels"] == int(compared.sum())
    assert {a for kind, a, _ in asked if kind == "sample"} == set(np.flatnonzero(compared))
    assert len({a for kind, a, _ in asked if kind == "held"}) < 300  # the reference is gated too
    rows = gated["samples"]
    assert all(r["verdict"] == "copy" and r["near_duplicate"] for r in rows[:50])
    pairs = list(zip(rows, compared, strict=True))
    assert all((r["pixel_difference"] is None) == (not c) for r, c in pairs)
    assert all(r["p_pixels"] is None for r, c in pairs if not c)
    every = run(0.0)  # 0: every image is compared
    assert every["compared_in_pixels"] == 150 and every["pixel_gate_rule"] == "every image"
    assert [r["verdict"] for r in every["samples"][:50]] == ["copy"] * 50


def test_pixel_distances_from_several_threads_land_on_their_images() -> None:
    """The comparisons run on one thread per core and finish out of order (each sleeps a
    random while here): every image still gets its own smallest difference and training id."""
    import os
    import threading
    import time

    from modescope.indexer.copycheck import Match
    from modescope.indexer.memorisation import pixel_distances

    rng = np.random.default_rng(0)
    n = 60
    found = {name: (np.zeros(n), rng.integers(0, 1000, n)) for name in
             ("combined", "block1", "block5")}
    threads: set[int] = set()
    delays = rng.uniform(0, 0.004, (n, 1000))

    def verify(a: int, b: int) -> Match:
        threads.add(threading.get_ident())
        time.sleep(delays[a, b])
        return Match(float((a * 7 + b) % 97), (0.0, 0.0), False)

    compared = rng.random(n) < 0.8
    diff, closest = pixel_distances(verify, np.arange(n), found, compared)
    for j in range(n):
        if not compared[j]:
            assert diff[j] == np.inf and closest[j] is None
            continue
        scores = {int(found[k][1][j]): float((j * 7 + int(found[k][1][j])) % 97)
                  for k in found}
        assert diff[j] == min(scores.values()) and scores[closest[j]] == diff[j]
    assert len(threads) > 1 or (os.cpu_count() or 1) == 1


@pytest.mark.parametrize("names", [("block1", "block5", "combined"),
                                   ("block1", "block5", "combined", "pixels")])
def test_compiled_p_values_equal_a_count_over_every_reference_image(
        names: tuple[str, ...]) -> None:
    """The conformal p-value, counted in plain numpy over (queries, references, measures)
    arrays, against the compiled count: distances on a coarse grid, so ranks and scores tie
    often (the combined distance breaks the ties), and queries below, among and above the
    reference images."""
    from modescope.indexer.memorisation import Calibration, Twins

    rng = np.random.default_rng(21)
    ref = {k: np.round(rng.uniform(0, 1, 300), 1) for k in names}
    query = {k: np.round(rng.uniform(-0.2, 1.2, 200), 1) for k in names}
    cal = Calibration.of("held-out", ref, Twins(0.5, (0.0, 0.0)))
    per, p = cal.p_values(query)
    d = np.stack([ref[k] for k in names], axis=1)
    q = np.stack([query[k] for k in names], axis=1)
    n, c = len(d), names.index("combined")
    below = np.array([[np.sum(np.delete(d[:, j], i) <= d[i, j]) for j in range(len(names))]
                      for i in range(n)])
    want_per = (1 + (d[None] <= q[:, None]).sum(axis=1)) / (n + 1)  # (m, measures)
    counts = below[None] + (q[:, None, :] <= d[None])  # (m, n, measures)
    s_ref = (1 + counts.min(axis=2)) / (n + 1)
    s = want_per.min(axis=1)[:, None]
    closer = (s_ref < s) | ((s_ref == s) & (d[None, :, c] <= q[:, None, c]))
    for j, k in enumerate(names):
        np.testing.assert_allclose(per[k], want_per[:, j])
    np.testing.assert_allclose(p, (1 + closer.sum(axis=1)) / (n + 1))
    assert len(np.unique(p)) > 20  # not a degenerate case
