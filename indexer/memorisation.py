"""Memorisation: is each sample new, or a copy of a training image? Calibrated on images the
generator never saw.

For a descriptor layer L (block1, block5, and both combined) let d_L(x) = 1 - cosine similarity
of x to its nearest training image; when image files are at hand, one more measure is the pixel
difference to the nearest training image (both layers; indexer/copycheck.py). The
**reference** is a set of real images that were not trained on: the workspace's held-out split
(core/holdout.py), minus any image the run did train on. An honest generator's sample is, in
this sense, one more unseen real image, so

    p_L(g) = (1 + #{h in reference : d_L(h) <= d_L(g)}) / (n + 1)

is a conformal p-value (Vovk et al. 2005; Angelopoulos & Bates 2021): for a sample drawn like
the reference images, P(p_L <= a) <= a. It reads "g is closer to the training set than
(1 - p_L) of unseen real images". The layers are combined into one score s = min_L p_L, itself
calibrated the same way: among the n + 1 points {reference images, g}, each point's s is
computed against the n others, and

    p(g) = (1 + #{h : s(h) <= s(g)}) / (n + 1)    (ties in s broken by d_combined)

which keeps the guarantee exactly while letting whichever layer sees a copy speak.

Verdicts: ``copy`` when p <= COPY_LEVEL (so at most 1 % of honest samples are called copies, by
construction; bench/validate.py measures it), ``close`` when p <= CLOSE_LEVEL, else ``novel``.
A copy needs n >= 1 / COPY_LEVEL - 1 reference images to be possible at all. Held-out images
that are *twins* of a training image are left out of the reference (``calibrate``), so the
guarantee is about samples that are not twins; each sample says whether it is one
(``near_duplicate``). With images at hand a twin is the same picture as one of its nearest
training images (on block1, block5 or both: ``closest_in_pixels``; pixel difference under
PIXEL_TWIN after alignment over shifts, the mirror, small rotations and a colour map), and a
sample that is one is a ``copy`` whatever its percentile: look-alikes that differ in a detail
stay in the reference, so an honest look-alike is not called a copy. Without images a twin is
within a share of the Duplicates view's limits (``Twins``), said but not called a copy.
Without a held-out split the reference falls back to the training images themselves, each
measured against the others (leave-one-out: each is an unseen image to the rest), and the
result says so.

Duplicated training images no longer blind the verdict (the distance-ratio rule it replaces
divided by the source image's own nearest-neighbour distance, which is tiny when the source has
a near-duplicate). The pixel difference is one calibrated measure among the others, shown as
evidence beside the verdict, not a gate of its own. Hubness counts, for each training image,
the samples whose nearest training image it is: memorisation hot-spots stand out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modescope.indexer.analyses.results import JsonRecord
from modescope.indexer.compiled import compiled
from modescope.indexer.copycheck import Match
from modescope.indexer.ndb import combined

COPY_LEVEL = 0.01  # a copy: closer to the training set than 99 % of unseen real images
CLOSE_LEVEL = 0.05  # close: than 95 %
# twins of a training image: left out of the reference (the split leaked them), and a sample
# that is one is said to be one. With images at hand, a twin is the same picture: its largest
# blurred patch difference to one of its nearest training images, after alignment and a colour
# map (indexer/copycheck.py), is below PIXEL_TWIN, and a sample that is one is a copy whatever
# its percentile. Chosen by bench/validate.py on the clipart set only (stand-in weights): the
# smallest value with which 99 % of jittered copies are called copies (docs/validation.md has
# the curve and the figures on the other sets).
PIXEL_TWIN = 6.0
# without images (descriptors only), a twin is on both layers within TWIN_RATIO x the training
# set's median nearest-neighbour distance (the Duplicates view's rule, indexer/curation.py, with
# its own share; chosen by the harness's second run, when it was the rule with images too)
TWIN_RATIO = 0.5
# the pixel comparison is made only where descriptors put an image near a training image: on
# block1 or block5 within PIXEL_GATE x that layer's median nearest-neighbour distance among the
# training images (``Gate``; 0: every image is compared). A fixed rule of the training set, the
# same for held-out images and samples, so the calibration's guarantee holds as before; a copy
# farther than that on both layers would go unchecked in pixels. Chosen by bench/validate.py on
# the clipart set only: twice the smallest value with which none of its copies changes its
# verdict from comparing every image (0.5 with trained stand-in weights and with random ones;
# docs/validation.md). It spares the comparisons (about 1.3 ms each at 64 px with the images'
# reading and turning, up to three an image)
# of the held-out images and samples that descriptors put far from every training image.
PIXEL_GATE = 1.0
LAYERS = ("block1", "block5", "combined")
Verifier = Callable[[int, int], Match]  # (sample id, training id) -> pixel comparison
Vectors = dict[str, np.ndarray]


@dataclass(frozen=True)
class SampleRow(JsonRecord):
    """One sample's verdict and its evidence."""

    sample: int
    nearest_block1: int
    similarity_block1: float
    nearest_block5: int
    similarity_block5: float
    nearest: int  # on both layers combined
    similarity: float
    p_block1: float  # share of unseen real images at least as close to the training set
    p_block5: float
    p_combined: float
    p_pixels: float | None  # the same for the pixel difference (when images were compared)
    p_value: float  # the calibrated verdict score (module docstring); low = copy-like
    pixel_difference: float | None  # largest blurred patch difference (0-255) to `pixel_nearest`
    pixel_nearest: int | None  # of the nearest images (each layer, combined), closest in pixels
    near_duplicate: bool  # within the Duplicates view's limits of a training image (twins)
    verdict: str  # "copy", "close" or "novel"
    # a copy's training image: the one it is the same picture as (a twin in pixels), else its
    # nearest on both layers; None for other verdicts. Hubness credits copies to it.
    copied: int | None = None


def _layers(v: Vectors) -> Vectors:
    return {"block1": v["block1"], "block5": v["block5"],
            "combined": combined(v["block1"], v["block5"])}


NEAREST_K = 32  # each layer's nearest images searched; the combined nearest is among them


def nearest(train: Vectors, train_ids: np.ndarray, query: Vectors
            ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per layer and combined: (cosine similarity, training id) of each query's nearest
    training image.

    The combined similarity is the mean of the layers' (``ndb.combined``), so the combined
    nearest is searched among each layer's NEAREST_K nearest: an image in neither list is at
    most as similar as the mean of the lists' last similarities, and a query whose best
    candidate does not beat that bound is searched again in the combined space (exact either
    way, at half the cost of a third search over both layers' dimensions). Training sets of more
    than ``graph.EXACT_UP_TO`` images are searched approximately (indexer/graph.py): the
    similarities are exact, a nearest image may be missed, and the combined nearest is the best
    of the lists (the bound needs exact lists). Held-out images and samples are searched alike,
    so the calibration's guarantee holds all the same: the distance is still one fixed function
    of an image and the training set."""
    from modescope.indexer.graph import nearest_in, reranked

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    k = min(NEAREST_K, len(train_ids))
    rows: dict[str, np.ndarray] = {}
    last: dict[str, np.ndarray] = {}
    exact = True
    for name in ("block1", "block5"):
        g = nearest_in(train[name], query[name], k, keep=True)
        out[name] = (g.sims[:, 0], train_ids[g.rows[:, 0]])
        rows[name], last[name] = g.rows, g.sims[:, -1]
        exact = exact and g.exact
    cand = np.concatenate([rows["block1"], rows["block5"]], axis=1)  # (n, 2k) training rows
    # the candidates' combined similarity, exactly
    sims = (reranked(train["block1"], query["block1"], cand)
            + reranked(train["block5"], query["block5"], cand)) / 2
    best = sims.argmax(axis=1)
    top = sims[np.arange(len(cand)), best]
    comb_rows = cand[np.arange(len(cand)), best]
    again = np.flatnonzero(top < (last["block1"] + last["block5"]) / 2) \
        if exact and k < len(train_ids) else np.array([], dtype=np.int64)
    if len(again):
        g = nearest_in(combined(train["block1"], train["block5"]),
                       combined(query["block1"][again], query["block5"][again]), 1)
        top[again], comb_rows[again] = g.sims[:, 0], g.rows[:, 0]
    out["combined"] = (top, train_ids[comb_rows])
    return out


def closest_in_pixels(verify: Verifier, query: int, found: dict[str, tuple[np.ndarray,
                      np.ndarray]], row: int) -> tuple[float, int]:
    """(pixel difference, training id): of the query's nearest training images on block1,
    block5 and combined (usually one image), the one it differs least from in pixels. A copy of
    a training image that has a near-duplicate may sit nearest to the duplicate on one layer
    and to its source on another; comparing each finds the source."""
    best: tuple[float, int] | None = None
    for name in ("combined", "block1", "block5"):
        train_id = int(found[name][1][row])
        if best is not None and train_id == best[1]:
            continue
        score = verify(query, train_id).score
        if best is None or score < best[0]:
            best = (score, train_id)
    assert best is not None
    return best


def leave_one_out(train: Vectors) -> Vectors:
    """Per layer: each training image's distance to its nearest *other* training image."""
    from modescope.indexer.graph import nearest_others

    return {name: np.maximum(0.0, 1.0 - nearest_others(train[name], 1).sims[:, 0])
            for name in LAYERS}


def median_limits(train: Vectors, ratio: float) -> tuple[float, float]:
    """``ratio`` x the training images' median nearest-neighbour distance on block1 and block5
    (the twin rule's and the pixel gate's limits)."""
    from modescope.indexer.curation import median_nn_distance

    b1, b5 = (ratio * median_nn_distance(train[layer]) for layer in ("block1", "block5"))
    return b1, b5


@dataclass(frozen=True)
class Twins:
    """The twin rule, its limits measured once on the training set. With pixels (``pixels`` is
    not None) an image is a twin of its nearest training image when their pixel difference is
    below ``pixels`` (0: none is); without, when on both layers it is closer than ``ratio`` x
    that layer's median nearest-neighbour distance among the training images (0: none is)."""

    ratio: float
    limits: tuple[float, float]  # block1, block5
    pixels: float | None = None

    @classmethod
    def of(cls, train: Vectors, ratio: float = TWIN_RATIO,
           pixels: float | None = None) -> Twins:
        if pixels is not None or ratio <= 0:
            return cls(ratio, (0.0, 0.0), pixels)
        return cls(ratio, median_limits(train, ratio))

    def mask(self, d: Vectors) -> np.ndarray:
        """Which images (by their distances ``d`` to the training set) are twins."""
        if self.pixels is not None:
            if "pixels" not in d:  # not compared in pixels: not known to be the same picture
                return np.zeros(len(d["block1"]), dtype=bool)
            return np.asarray(d["pixels"], np.float64) < self.pixels
        return ((d["block1"] < self.limits[0]) & (d["block5"] < self.limits[1])
                if self.ratio > 0 else np.zeros(len(d["block1"]), dtype=bool))

    def words(self) -> str:
        """The rule as the sample page and the CLI say it."""
        if self.pixels is not None:
            return (f"the same picture: pixel difference under {self.pixels:g}/255 after "
                    "alignment")
        return (f"on both layers within {self.ratio:g} x the median distance between "
                "neighbouring training images")


@dataclass(frozen=True)
class Gate:
    """Which images are compared in pixels: those within ``ratio`` x the training images'
    median nearest-neighbour distance of a training image on block1 or block5 (``limits``);
    ratio 0: every image."""

    ratio: float
    limits: tuple[float, float]  # block1, block5

    @classmethod
    def of(cls, train: Vectors, ratio: float = PIXEL_GATE) -> Gate:
        if ratio <= 0:
            return cls(0.0, (np.inf, np.inf))
        return cls(ratio, median_limits(train, ratio))

    def mask(self, d: Vectors) -> np.ndarray:
        """Which images (by their distances ``d`` to the training set) are compared."""
        return (np.asarray(d["block1"]) <= self.limits[0]) | \
            (np.asarray(d["block5"]) <= self.limits[1])

    def words(self) -> str:
        if self.ratio <= 0:
            return "every image"
        return (f"images closer to a training image than {self.ratio:g} x the training set's "
                "median nearest-neighbour distance, on block1 or block5")


def pixel_distances(verify: Verifier, ids: np.ndarray, found: dict[str, tuple[np.ndarray,
                    np.ndarray]], compared: np.ndarray
                    ) -> tuple[np.ndarray, list[int | None]]:
    """(pixel difference, training id closest in pixels) of each image ``compared`` (a mask);
    the others are not compared: an infinite difference, no id. The images are compared on
    one thread per core (the comparison's compiled parts release the GIL; ``verify`` must be
    safe to call from several threads)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    diff = np.full(len(ids), np.inf)
    closest: list[int | None] = [None] * len(ids)
    rows = np.flatnonzero(compared).tolist()
    with ThreadPoolExecutor(max_workers=min(len(rows), os.cpu_count() or 1) or 1) as pool:
        done = pool.map(lambda j: closest_in_pixels(verify, int(ids[j]), found, j), rows)
        for j, (d, c) in zip(rows, done, strict=True):
            diff[j], closest[j] = d, c
    return diff, closest


@dataclass(frozen=True)
class Calibration:
    """The reference images' distances to the training set, per measure (columns of names:
    the layers, and the pixel difference when images were compared)."""

    names: tuple[str, ...]
    source: str  # "held-out" or "training, leave-one-out"
    distances: np.ndarray  # (n, 3) distances of the reference images
    below: np.ndarray  # (n, 3): per layer, how many *other* reference images are as close
    sorted: np.ndarray  # (n, 3): each column sorted
    left_out: int  # held-out images left out as twins of training images
    twins: Twins  # the rule that left them out; samples are judged twins by it too
    gate: Gate | None = None  # which images were compared in pixels (with pixels)

    @classmethod
    def of(cls, source: str, distances: Vectors, twins: Twins, left_out: int = 0,
           gate: Gate | None = None) -> Calibration:
        names = tuple(distances)
        d = np.stack([np.asarray(distances[k], np.float64) for k in names], axis=1)
        if len(d) < 2:
            raise ValueError("calibration needs at least 2 reference images")
        srt = np.sort(d, axis=0)
        below = np.stack([np.searchsorted(srt[:, j], d[:, j], side="right") - 1
                          for j in range(len(names))], axis=1)
        return cls(names, source, d, below, srt, left_out, twins, gate)

    @property
    def n(self) -> int:
        return len(self.distances)

    def p_values(self, d: Vectors) -> tuple[Vectors, np.ndarray]:
        """(per-layer p, calibrated combined p) of query distances.

        Exact conformal p-value of the score s = min over layers of p_L: each query is ranked
        among the n + 1 points {reference images, query}, every point's score computed against
        the n others (the query counts among each reference image's others)."""
        q = np.ascontiguousarray(np.stack([np.asarray(d[k], np.float64) for k in self.names],
                                          axis=1))
        n = self.n
        ranks = np.stack([1 + np.searchsorted(self.sorted[:, j], q[:, j], side="right")
                          for j in range(len(self.names))], axis=1)  # (n + 1) x per-layer p
        closer = _closer(q, ranks.min(axis=1), np.ascontiguousarray(self.below),
                         np.ascontiguousarray(self.distances), self.names.index("combined"))
        return ({k: ranks[:, j] / (n + 1) for j, k in enumerate(self.names)},
                (1 + closer) / (n + 1))

    def quantile(self, q: float, layer: str = "combined") -> float:
        return float(np.quantile(self.distances[:, self.names.index(layer)], q))


@compiled()
def _closer(q: np.ndarray, score: np.ndarray, below: np.ndarray, distances: np.ndarray,
            c: int) -> np.ndarray:
    """For each query a: how many reference images i score below it, its score being
    ``score[a]`` (n + 1 times the least per-layer p) and i's the same among the n others and
    the query: 1 + min over layers j of (``below[i, j]`` + [q[a, j] <= distances[i, j]]).
    Ties (the ranks are discrete) go by the combined distance (column ``c``): i counts when it
    is as close as the query or closer, still one symmetric score and no longer conservative.
    Compiled: n x m x layers comparisons (3 x 10^8 for 10,000 of each) that numpy made in
    chunks of (256, n, layers) arrays: 3.2 s, compiled 0.5 s."""
    m, n, layers = q.shape[0], below.shape[0], below.shape[1]
    out = np.zeros(m, np.int64)
    for a in range(m):
        count = 0
        for i in range(n):
            least = below[i, 0] + (q[a, 0] <= distances[i, 0])
            for j in range(1, layers):
                least = min(least, below[i, j] + (q[a, j] <= distances[i, j]))
            own = 1 + least
            if own < score[a] or (own == score[a] and distances[i, c] <= q[a, c]):
                count += 1
        out[a] = count
    return out


@dataclass(frozen=True)
class Reference:
    """Held-out real images: ids, descriptors, and a pixel comparison with training images."""

    ids: np.ndarray
    vectors: Vectors
    verify: Verifier | None = None  # (reference id, training id) -> pixel comparison


def calibrate(train: Vectors, train_ids: np.ndarray, reference: Reference | None,
              pixels: bool = True, twin_ratio: float = TWIN_RATIO,
              pixel_twin: float = PIXEL_TWIN, pixel_gate: float = PIXEL_GATE) -> Calibration:
    """The held-out reference when it can resolve COPY_LEVEL, else leave-one-out training.

    Held-out images that are twins of a training image (``Twins``) are left out of the
    reference: the split leaked them, the generator has seen them in all but bytes, and one
    such twin among n references would make every copy look ordinary. With ``pixels`` (and a
    reference verifier) the pixel difference to the nearest training image is one more
    calibrated measure of the images ``Gate`` lets through (``pixel_gate``), and the twin rule
    is in pixels (``pixel_twin``)."""
    rule: Twins | None = None
    if reference is not None:
        found = nearest(train, train_ids, reference.vectors)
        d = {k: np.maximum(0.0, 1.0 - found[k][0]) for k in LAYERS}
        verify = reference.verify if pixels else None
        gate: Gate | None = None
        if verify is not None:
            gate = Gate.of(train, pixel_gate)
            d["pixels"] = pixel_distances(verify, reference.ids, found, gate.mask(d))[0]
        rule = Twins.of(train, twin_ratio,
                        pixel_twin if verify is not None else None)
        keep = ~rule.mask(d)
        if int(keep.sum()) + 1 >= 1 / COPY_LEVEL:
            return Calibration.of("held-out", {k: v[keep] for k, v in d.items()}, rule,
                                  int((~keep).sum()), gate)
    # leave-one-out training images: no pixels, so the descriptor twin rule (measured above
    # already when the held-out images had no pixels either)
    if rule is None or rule.pixels is not None:
        rule = Twins.of(train, twin_ratio)
    return Calibration.of("training, leave-one-out", leave_one_out(_layers(train)), rule)


def verdict(p: float, same_picture: bool = False) -> str:
    """``same_picture``: a twin in pixels (a copy whatever ``p`` says)."""
    if same_picture or p <= COPY_LEVEL:
        return "copy"
    return "close" if p <= CLOSE_LEVEL else "novel"


def copied_image(verdict: str, same_picture: bool, pixel_nearest: int | None,
                 nearest: int) -> int | None:
    """The training image a ``copy`` copies: the one it is the same picture as where pixels
    said so, else its nearest on both layers (a copy by percentile); None for other verdicts."""
    if verdict != "copy":
        return None
    return pixel_nearest if same_picture and pixel_nearest is not None else nearest


def memorisation(train: Vectors, train_ids: np.ndarray, gen: Vectors, gen_ids: np.ndarray,
                 reference: Reference | Vectors | None = None, verify: Verifier | None = None,
                 calibration: Calibration | None = None, twin_ratio: float = TWIN_RATIO,
                 pixel_twin: float = PIXEL_TWIN, pixel_gate: float = PIXEL_GATE
                 ) -> dict[str, Any]:
    """Per-sample nearest training images, calibrated p-values, verdicts, copy rate, hubness.

    ``reference``: held-out real images (not trained on; bare descriptors are accepted);
    ``calibration``: one made before (checkpoint scoring reuses it, twin rule included;
    ``twin_ratio``, ``pixel_twin`` and ``pixel_gate`` only set the rules of a new one);
    ``verify``: the pixel comparison of a sample with a training image, a calibrated measure
    when the reference has one too (of the samples the calibration's gate lets through)."""
    if len(train_ids) < 2 or len(gen_ids) == 0:
        raise ValueError("memorisation needs at least 2 training images and 1 sample")
    if reference is not None and not isinstance(reference, Reference):
        reference = Reference(np.arange(len(reference["block1"])), reference)
    cal = calibration or calibrate(train, train_ids, reference, pixels=verify is not None,
                                   twin_ratio=twin_ratio, pixel_twin=pixel_twin,
                                   pixel_gate=pixel_gate)
    nn = nearest(train, train_ids, gen)
    d = {k: np.maximum(0.0, 1.0 - nn[k][0]) for k in LAYERS}
    near = nn["combined"][1]
    # the samples compared in pixels: those the calibration's gate lets through (every one
    # where the reference had no pixels to calibrate them by: the evidence is shown all the same)
    compared = np.zeros(len(gen_ids), bool)
    diff = np.full(len(gen_ids), np.inf)
    closest: list[int | None] = [None] * len(gen_ids)
    if verify is not None:
        compared = cal.gate.mask(d) if cal.gate is not None else ~compared
        diff, closest = pixel_distances(verify, gen_ids, nn, compared)
    pixels = [round(float(v), 3) if np.isfinite(v) else None for v in diff]
    if "pixels" in cal.names:
        d["pixels"] = diff
    per, p = cal.p_values(d)
    twin = cal.twins.mask(d)
    same_picture = twin if cal.twins.pixels is not None else np.zeros(len(twin), dtype=bool)
    rows = []
    for j, sample in enumerate(gen_ids.tolist()):
        v = verdict(float(p[j]), bool(same_picture[j]))
        rows.append(SampleRow(
            int(sample), int(nn["block1"][1][j]), round(float(nn["block1"][0][j]), 6),
            int(nn["block5"][1][j]), round(float(nn["block5"][0][j]), 6), int(near[j]),
            round(float(nn["combined"][0][j]), 6), round(float(per["block1"][j]), 5),
            round(float(per["block5"][j]), 5), round(float(per["combined"][j]), 5),
            round(float(per["pixels"][j]), 5) if "pixels" in per and compared[j] else None,
            round(float(p[j]), 5), pixels[j], closest[j], bool(twin[j]), v,
            copied_image(v, bool(same_picture[j]), closest[j], int(near[j]))))
    return {**summary(rows, cal, d["combined"], len(train_ids)), "twin_ratio": cal.twins.ratio,
            "pixel_twin": cal.twins.pixels, "twin_rule": cal.twins.words(),
            "pixel_gate": cal.gate.ratio if cal.gate is not None else None,
            "pixel_gate_rule": cal.gate.words() if cal.gate is not None else None,
            "compared_in_pixels": int(compared.sum()),
            "samples": [r.as_json() for r in rows],
            "hubness": hubness(rows)}


def summary(rows: list[SampleRow], cal: Calibration, combined_d: np.ndarray,
            n_train: int) -> dict[str, Any]:
    copies = sum(r.verdict == "copy" for r in rows)
    p1 = cal.quantile(0.01)
    return {
        "reference": cal.source, "n_reference": cal.n,
        "reference_near_duplicates": cal.left_out,
        "copy_level": COPY_LEVEL, "close_level": CLOSE_LEVEL,
        "copy_possible": cal.n + 1 >= 1 / COPY_LEVEL,
        "verified_in_pixels": "pixels" in cal.names,
        "n_samples": len(rows), "copies": copies, "copy_rate": round(copies / len(rows), 4),
        "near_duplicates": sum(r.near_duplicate for r in rows),
        "close": sum(r.verdict == "close" for r in rows),
        "reference_p1_distance": round(p1, 6),
        "closer_than_reference_p1": round(float(np.mean(combined_d < p1)), 4),
        "expected_hub_count": round(len(rows) / n_train, 3),
    }


def hubness(rows: list[SampleRow]) -> list[dict[str, int]]:
    """Per training image: the samples whose nearest image (both layers) it is, and the copies
    of it (``SampleRow.copied``: a copy of a training image that has a near-duplicate can sit
    nearest to the duplicate, and is counted under the image it is the same picture as)."""
    hubs: dict[int, int] = {}
    copied: dict[int, int] = {}
    for r in rows:
        hubs[r.nearest] = hubs.get(r.nearest, 0) + 1
        if r.copied is not None:
            copied[r.copied] = copied.get(r.copied, 0) + 1
    return sorted(({"id": i, "count": hubs.get(i, 0), "copies": copied.get(i, 0)}
                   for i in hubs.keys() | copied.keys()),
                  key=lambda h: (-h["count"], -h["copies"], h["id"]))
