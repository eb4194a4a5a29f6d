"""The analyses' arithmetic against hand computations and brute force, on small fixed data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import beta, norm
from sklearn.metrics import roc_auc_score

from modescope.indexer.copycheck import Match
from modescope.indexer.curation import knn_distance, near_duplicates, suggest
from modescope.indexer.memorisation import Reference, memorisation
from modescope.indexer.ndb import default_k, js_divergence, ndb_from_bins, z_test
from modescope.indexer.outlier_scores import neighbours, outliers, percentile
from tests.conftest import run_cli
from tests.images import picture, save


def test_ndb_z_values_equal_a_hand_computation() -> None:
    # 3 bins; training 60/30/10 of 100, generated 20/20/0 of 40
    train = np.repeat([0, 1, 2], [60, 30, 10])
    gen = np.repeat([0, 1, 2], [20, 20, 0])
    r = ndb_from_bins(train, gen, 3, alpha=0.05)
    for b, (ct, cg) in zip(r.bins, [(60, 20), (30, 20), (10, 0)], strict=True):
        p_t, p_g = ct / 100, cg / 40
        pooled = (ct + cg) / 140
        z = (p_g - p_t) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 40))
        assert b.z == pytest.approx(z, rel=1e-9)
        assert b.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-9)
    # bin 1: z = 2.32 -> over-produced; bin 0: z = -1.08 -> ok; bin 2: z = -2.08 -> dropped
    assert [b.verdict for b in r.bins] == ["ok", "over-produced", "dropped"]
    assert r.ndb == 2 and r.ndb_over_k == pytest.approx(2 / 3)
    m = np.array([0.55, 0.4, 0.05])
    p, q = np.array([0.6, 0.3, 0.1]), np.array([0.5, 0.5, 0.0])
    js = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q[:2] * np.log2(q[:2] / m[:2]))
    assert r.js == pytest.approx(js, rel=1e-9)
    # 2 of 3 bins: the exact binomial (Clopper-Pearson) 95% interval, by its Beta quantiles
    assert r.ndb_over_k_ci == pytest.approx((beta.ppf(0.025, 2, 2), beta.ppf(0.975, 3, 1)))


def test_identical_histograms_give_zero_and_disjoint_ones_one() -> None:
    z, p = z_test(np.array([0.5, 0.5]), np.array([0.5, 0.5]), 100, 100)
    assert (z == 0).all() and (p == 1).all()
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert default_k(100) == 2 and default_k(2000) == 50 and default_k(10**6) == 100


def test_calibrated_p_values_and_hubness_equal_a_hand_count() -> None:
    rng = np.random.default_rng(3)

    def units(n: int) -> np.ndarray:
        x = rng.standard_normal((n, 64)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    t, ref = units(40), units(120)
    g = np.stack([t[0] + 1e-3 * units(1)[0], units(1)[0]])
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    r = memorisation({"block1": t, "block5": t}, np.arange(100, 140),
                     {"block1": g, "block5": g}, np.array([0, 1]),
                     reference={"block1": ref, "block5": ref})
    d_ref = 1 - (ref @ t.T).max(axis=1)  # combined = the same vectors on both layers
    d_g = 1 - (g @ t.T).max(axis=1)
    for row, d in zip(r["samples"], d_g, strict=True):
        by_hand = (1 + np.sum(d_ref <= d)) / (len(ref) + 1)
        assert row["p_block1"] == row["p_combined"] == pytest.approx(by_hand, abs=1e-5)
    # each reference image's score among its 120 others (the sample is one of them); ties
    # broken by the distance itself
    for row, d in zip(r["samples"], d_g, strict=True):
        own = np.array([(1 + np.sum(np.delete(d_ref, i) <= d_ref[i]) + (d <= d_ref[i])) / 121
                        for i in range(len(ref))])
        s = row["p_block1"]
        closer = (own < s) | ((own == s) & (d_ref <= d))
        assert row["p_value"] == pytest.approx((1 + closer.sum()) / 121, abs=1e-5)
    assert r["samples"][0]["verdict"] == "copy" and r["samples"][0]["nearest"] == 100
    assert r["samples"][1]["verdict"] != "copy"
    assert r["copies"] == 1 and r["copy_rate"] == 0.5 and r["reference"] == "held-out"
    assert r["reference_near_duplicates"] == 0
    assert r["hubness"][0] == {"id": 100, "count": 1, "copies": 1}


def test_hubness_counts_a_copy_under_the_image_it_is_the_same_picture_as() -> None:
    """A copy of a training image that has a near-duplicate: nearest to the duplicate on
    block5 and combined, to its source on block1, and the same picture in pixels as the source
    only. Its verdict names the source, and hubness counts the copy there, not under the
    duplicate it sits nearest to."""
    rng = np.random.default_rng(5)

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    b1, b5 = unit(rng.standard_normal((40, 64))), unit(rng.standard_normal((40, 64)))
    b1[1] = unit(b1[0] + 0.05 * rng.standard_normal(64))  # 1: a near-duplicate of 0
    b5[1] = unit(b5[0] + 0.30 * rng.standard_normal(64))
    g1, g5 = b1[0][None], b5[1][None]  # block1: the source itself; block5: the duplicate's
    ids = np.arange(100, 140)
    source, duplicate = 100, 101

    def verify(sample: int, train: int) -> Match:
        return Match(1.0 if (sample, train) == (0, source) else 30.0, (0.0, 0.0), False)

    ref = {"block1": unit(rng.standard_normal((120, 64))),
           "block5": unit(rng.standard_normal((120, 64)))}
    r = memorisation({"block1": b1, "block5": b5}, ids, {"block1": g1, "block5": g5},
                     np.array([0]), reference=Reference(np.arange(120), ref,
                                                        lambda *_: Match(30.0, (0, 0), False)),
                     verify=verify, pixel_twin=6.0)
    row = r["samples"][0]
    assert row["nearest"] == duplicate and row["nearest_block1"] == source
    assert row["verdict"] == "copy" and row["pixel_nearest"] == source
    assert row["copied"] == source
    hubs = {h["id"]: h for h in r["hubness"]}
    assert hubs[duplicate] == {"id": duplicate, "count": 1, "copies": 0}
    assert hubs[source] == {"id": source, "count": 0, "copies": 1}


def test_outlier_distances_equal_brute_force() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 8)).astype(np.float32)
    x[:3] += 8 * rng.standard_normal((3, 8)).astype(np.float32)  # three far points
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(60)
    d = 1 - x @ x.T
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(knn_distance(x, 5), np.sort(d, axis=1)[:, :5].mean(axis=1),
                               atol=1e-5)
    dist, rows = neighbours(x, 5)
    np.testing.assert_allclose(dist, np.sort(d, axis=1)[:, :5], atol=1e-5)
    assert not (rows == np.arange(60)[:, None]).any()  # never its own neighbour
    np.testing.assert_allclose(percentile(np.array([3.0, 1.0, 2.0, 2.0])),
                               [1.0, 0.25, 0.625, 0.625])
    # no labels: the k-NN distance only; pool 0: each image's own score
    r = outliers({"block1": x, "block5": x}, ids, k=5, pool=0.0)
    assert r["labels"] == 0 and set(r["weights"]) == {"far_block1", "far_block5"}
    far = np.sort(d, axis=1)[:, :5].mean(axis=1)
    assert [row["id"] for row in r["ranked"][:3]] == list(np.argsort(-far)[:3])
    assert r["ranked"][0]["score"] == pytest.approx(1.0)
    assert all(row["score"] == row["own"] for row in r["ranked"])


def test_outlier_scores_pool_the_block1_neighbours_own_scores() -> None:
    rng = np.random.default_rng(3)
    b1 = rng.standard_normal((80, 8)).astype(np.float32)
    b1 /= np.linalg.norm(b1, axis=1, keepdims=True)
    b5 = rng.standard_normal((80, 8)).astype(np.float32)
    b5 /= np.linalg.norm(b5, axis=1, keepdims=True)
    ids = np.arange(80)
    alone = {row["id"]: row for row in outliers({"block1": b1, "block5": b5}, ids, k=5,
                                                  pool=0.0)["ranked"]}
    own = np.array([alone[i]["own"] for i in ids])
    _, rows = neighbours(b1, 5)
    for pool in (0.5, 1.0):
        r = outliers({"block1": b1, "block5": b5}, ids, k=5, pool=pool)
        assert r["pool"] == pool
        score = {row["id"]: row["score"] for row in r["ranked"]}
        want = (1 - pool) * own + pool * own[rows].mean(axis=1)
        np.testing.assert_allclose([score[i] for i in ids], want, atol=2e-4)
        assert [row["own"] for row in r["ranked"]] == [alone[row["id"]]["own"]
                                                       for row in r["ranked"]]
    with pytest.raises(ValueError):
        outliers({"block1": b1, "block5": b5}, ids, pool=1.5)


def strays_among_labels(seed: int, n: int = 400, strays: int = 24
                        ) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """Four labelled clusters, and strays that form a fifth cluster of their own, filed under
    every label: each stray's nearest images are other strays, so its k-NN distance is typical."""
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((4, 16))
    label = rng.integers(0, 4, n)
    x = centres[label] + rng.standard_normal((n, 16))
    x[:strays] = 3 * rng.standard_normal(16) + rng.standard_normal((strays, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), [f"g{v}" for v in label], np.arange(n) < strays


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_find_strays_that_keep_each_other_company(seed: int) -> None:
    x, labels, stray = strays_among_labels(seed)
    ids = np.arange(len(x)) + 1000
    vecs = {"block1": x, "block5": x}

    def auc(r: dict) -> float:
        order = np.array([row["id"] - 1000 for row in r["ranked"]])
        return float(roc_auc_score(stray[order], [row["score"] for row in r["ranked"]]))

    blind = outliers(vecs, ids, k=10, pool=0.0)  # the k-NN distance alone
    seen = outliers(vecs, ids, labels, k=10)
    assert seen["labels"] == 4 and auc(seen) >= 0.95 and auc(blind) < 0.75, (auc(seen), auc(blind))
    top = {row["id"] - 1000 for row in seen["ranked"][:24]}
    assert len(top & set(np.flatnonzero(stray))) >= 12  # half the first 24 (by chance: 1.4)
    assert all(row["label"] == labels[row["id"] - 1000] for row in seen["ranked"])
    suggested = [row["id"] - 1000 for row in seen["ranked"] if row["suggested"]]
    assert suggested and np.mean(stray[suggested]) >= 0.5


def test_outlier_weights_follow_block1_share() -> None:
    x, labels, _ = strays_among_labels(0)
    r = outliers({"block1": x, "block5": x}, np.arange(len(x)), labels, block1_weight=0.25)
    w = r["weights"]
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["far_block1"] == pytest.approx(w["far_block5"] / 3, abs=1e-3)
    assert w["mismatch_block1"] == pytest.approx(w["mismatch_block5"])
    with pytest.raises(ValueError):
        outliers({"block1": x, "block5": x}, np.arange(len(x)), labels[:-1])


def test_the_cli_defaults_are_the_library_defaults() -> None:
    from modescope.indexer import outlier_scores
    from modescope.indexer.analyses.outliers import ANALYSIS

    assert ANALYSIS.cli is not None
    defaults = {o.name: o.default for o in ANALYSIS.cli.options}
    assert defaults["k"] == outlier_scores.OUTLIER_K
    assert defaults["label_k"] == outlier_scores.LABEL_K
    assert defaults["block1_weight"] == outlier_scores.BLOCK1_WEIGHT
    assert defaults["unusual"] == outlier_scores.UNUSUAL
    assert defaults["pool"] == outlier_scores.POOL


def test_near_duplicates_group_transitively_and_merge_exact_pairs() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 16)).astype(np.float32)
    x[1] = x[0] + 1e-3
    x[2] = x[1] + 1e-3
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    r = near_duplicates({"block1": x, "block5": x}, np.arange(100, 120),
                        exact=[(500, 110)], threshold=0.9999)
    groups = [g["ids"] for g in r["groups"]]
    assert [100, 101, 102] in groups and [110, 500] in groups and len(groups) == 2


def test_suggestions_fall_back_to_similarity_with_few_flags() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    r = suggest({"block1": x, "block5": x}, np.arange(30), {0}, top=3)
    assert r["method"] == "nearest flagged image"
    sims = x @ x[0]
    sims[0] = -np.inf
    assert [s["id"] for s in r["suggestions"]] == list(np.argsort(-sims)[:3])


def test_kept_images_are_negatives_and_never_suggested_again() -> None:
    """Five flags inside a cluster; the user keeps the first page. The kept images leave the
    candidates, and the next page still comes from the flagged cluster."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 16))
    x[:30] += 4 * rng.standard_normal(16)  # the off-topic cluster: rows 0-29
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    vecs = {"block1": x.astype(np.float32), "block5": x.astype(np.float32)}
    ids = np.arange(300)
    first = suggest(vecs, ids, {0, 1, 2, 3, 4}, top=20)
    got = [s["id"] for s in first["suggestions"]]
    kept = {i for i in got if i >= 30}
    flagged = {0, 1, 2, 3, 4} | {i for i in got if i < 30}
    second = suggest(vecs, ids, flagged, kept | {999}, top=20)  # an unknown id is ignored
    again = [s["id"] for s in second["suggestions"]]
    assert second["kept"] == len(kept) and not set(again) & (kept | flagged)
    found = flagged | {i for i in again if i < 30}
    assert len(found) == 30  # every stray found after 40 reviewed


def test_import_samples_normalises_and_numbers_them(tmp_path: Path) -> None:
    save(picture(seed=1), tmp_path / "train" / "a.png")
    assert run_cli("ingest", tmp_path / "train", "-w", tmp_path / "ws", "--size", "32").code == 0
    for i in range(3):
        save(picture(120, 90, seed=i), tmp_path / "gan" / f"s{i}.jpg")
    (tmp_path / "gan" / "broken.png").write_bytes(b"")
    res = run_cli("import-samples", tmp_path / "gan", "--run", "stylegan", "-w", tmp_path / "ws",
                  "--json")
    assert res.code == 0, res.err
    assert res.json()["imported"] == 3 and len(res.json()["rejected"]) == 1
    from PIL import Image

    files = sorted((tmp_path / "ws" / "runs" / "stylegan" / "generated").glob("*.png"))
    assert [f.name for f in files] == ["000000.png", "000001.png", "000002.png"]
    assert all(Image.open(f).size == (32, 32) for f in files)
    again = run_cli("import-samples", tmp_path / "gan", "--run", "stylegan", "-w", tmp_path / "ws")
    assert again.code == 2 and "--replace" in again.err
    bad = run_cli("import-samples", tmp_path / "gan", "--run", "../up", "-w", tmp_path / "ws")
    assert bad.code == 2 and "run name" in bad.err


def _drawn(seed: int, size: int = 64) -> np.ndarray:
    """A Pillow drawing: background, a shape and a few dots (a fixture, not random noise)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(150, 250, 3)))
    draw = ImageDraw.Draw(img)
    draw.ellipse((16, 8, 48, 56), fill=(200, 40, 30))
    for _ in range(12):
        x, y = (int(c) for c in rng.integers(18, 44, 2))
        draw.ellipse((x, y, x + 4, y + 4), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return np.asarray(img, np.float32)


def test_pixel_check_calls_a_shifted_noisy_mirrored_copy_a_copy() -> None:
    from modescope.indexer.copycheck import blurred, compare
    from modescope.indexer.memorisation import PIXEL_TWIN

    src = _drawn(1)
    rng = np.random.default_rng(0)
    copy = np.clip(np.roll(src, (1, -2), axis=(0, 1)) + rng.normal(0, 4, src.shape), 0, 255)
    m = compare(blurred(copy), blurred(src))
    assert m.score < PIXEL_TWIN and m.shift == (1, -2) and not m.mirrored and m.angle == 0
    mirrored = compare(blurred(np.ascontiguousarray(copy[:, ::-1])), blurred(src))
    assert mirrored.mirrored and mirrored.score < PIXEL_TWIN
    # the same shape with other dots is not a copy: one patch differs enough
    assert compare(blurred(_drawn(2)), blurred(src)).score > PIXEL_TWIN
    with pytest.raises(ValueError, match="differ in size"):
        compare(blurred(src), blurred(src[:32, :32]))


def test_pixel_check_turns_the_training_image_to_meet_a_rotated_copy() -> None:
    """A copy turned by 2 degrees (as the harness jitters them) differs most at the edges of
    the drawing; turning the training image back finds it the same picture."""
    from PIL import Image

    from modescope.indexer import copycheck
    from modescope.indexer.memorisation import PIXEL_TWIN

    src = _drawn(3)
    turned = np.asarray(Image.fromarray(src.astype(np.uint8)).rotate(
        2, resample=Image.Resampling.BILINEAR, fillcolor=tuple(int(c) for c in src[0, 0])),
        np.float32)
    b_src, b_copy = copycheck.blurred(src), copycheck.blurred(turned)
    m = copycheck.compare(b_copy, copycheck.turned(b_src))
    upright_only = copycheck.Turned(b_src[None].astype(np.float32))  # shifts and mirror only
    upright = copycheck.compare(b_copy, upright_only)
    assert m.angle == 2 and m.score < PIXEL_TWIN
    assert upright.score > 2 * m.score


def test_pixel_check_matches_colours_that_drifted_over_the_whole_image() -> None:
    """Saturation x1.1 (as the harness jitters copies) moves mid colours by up to ~20/255: the
    per-channel gain and offset undo it; another colour in one part of the image (one dot
    recoloured) cannot be undone by one map, and a gain beyond GAIN_RANGE is not applied."""
    from PIL import Image, ImageEnhance

    from modescope.indexer import copycheck
    from modescope.indexer.memorisation import PIXEL_TWIN

    src = _drawn(4)
    vivid = np.asarray(ImageEnhance.Color(Image.fromarray(src.astype(np.uint8))).enhance(1.1),
                       np.float32)
    a, b = copycheck.blurred(vivid), copycheck.blurred(src)
    m = copycheck.compare(a, b)
    unmapped = np.abs(a - b).mean(axis=2)[2:58, 2:58].reshape(7, 8, 7, 8).mean((1, 3)).max()
    assert m.score < PIXEL_TWIN < unmapped and m.score < unmapped / 2
    assert m.gains != (1.0, 1.0, 1.0)
    # the same drawing with its left half 60/255 darker: one map cannot fit both halves
    half = src.copy()
    half[:, :32] = np.clip(half[:, :32] - 60, 0, 255)
    assert copycheck.compare(copycheck.blurred(half), copycheck.blurred(src)).score > PIXEL_TWIN
    # a tenth of the contrast: the gain stops at GAIN_RANGE's low end
    flat = (src - src.mean()) * 0.1 + src.mean()
    faint = copycheck.compare(copycheck.blurred(flat), copycheck.blurred(src))
    assert min(faint.gains) == pytest.approx(copycheck.GAIN_RANGE[0], abs=1e-3)
    assert faint.score > PIXEL_TWIN


def test_pixel_check_aligns_a_copy_half_a_pixel_off_the_grid() -> None:
    """A copy moved by an odd number of pixels at twice the training size sits half a pixel off
    the training size's grid: the refined shift says so, and its score is below the best
    whole-pixel alignment's."""
    from PIL import Image

    from modescope.indexer import copycheck
    from tests.indexer.test_copycheck import colour_matched

    big = np.asarray(Image.fromarray(_drawn(5).astype(np.uint8)).resize(
        (128, 128), Image.Resampling.NEAREST), np.float32)

    def at_64(a: np.ndarray) -> np.ndarray:
        return copycheck.blurred(np.asarray(Image.fromarray(a.astype(np.uint8)).resize(
            (64, 64), Image.Resampling.LANCZOS), np.float32))

    src, copy = at_64(big), at_64(np.roll(big, (3, -1), axis=(0, 1)))
    m = copycheck.compare(copy, src)
    assert m.shift == (1.5, -0.5) and not m.mirrored

    def whole_pixel(dy: int, dx: int) -> float:
        centre, window = src[2:62, 2:62], copy[2 + dy:62 + dy, 2 + dx:62 + dx]
        matched, _ = colour_matched(centre, window)
        d = np.abs(window - matched).mean(axis=2)[:56, :56]
        return float(d.reshape(7, 8, 7, 8).mean((1, 3)).max())

    best_whole = min(whole_pixel(a, b) for a in (1, 2) for b in (-1, 0))
    assert m.score < 0.5 * best_whole, (m.score, best_whole)  # 1.3 against 9.2
