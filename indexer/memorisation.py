"""Memorisation and hubness: are the samples new, or copies of training images?

For each generated sample g with nearest training image t (cosine, both layers combined):

    authenticity ratio  a(g) = d(g, t) / d(t, t')      d = 1 - cosine similarity

where t' is t's own nearest other training image (after Alaa et al. 2022: a sample closer to a
training image than that image's own neighbours is suspicious). Descriptors find t; pixels decide
(indexer/copycheck.py): the verdict is ``copy`` when the sample matches t in pixels (largest
blurred patch difference < PIXEL_COPY, after alignment) and ``a < PIXEL_GATE_RATIO``, ``close``
when it is no copy but ``a < COPY_RATIO``, else ``novel``. Hubness counts, for each training
image, the samples whose nearest training image it is: memorisation hot-spots stand out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modescope.indexer.analyses.results import JsonRecord
from modescope.indexer.copycheck import PIXEL_COPY, Match
from modescope.indexer.index import VectorIndex
from modescope.indexer.ndb import combined

COPY_RATIO = 0.5  # docs/inspection.md: measured on near-copies vs held-out real images
PIXEL_GATE_RATIO = 2.0  # a pixel match counts only for a sample this near t in features
EPS = 1e-9
Verifier = Callable[[int, int], Match]  # (sample id, training id) -> pixel comparison


@dataclass(frozen=True)
class SampleRow(JsonRecord):
    """One sample's verdict: its nearest training images and whether it copies one."""

    sample: int
    nearest_block1: int
    similarity_block1: float
    nearest_block5: int
    similarity_block5: float
    nearest: int  # on both layers combined: the basis of the ratio
    similarity: float
    authenticity: float
    pixel_difference: float | None  # largest blurred patch difference to `nearest` (0-255)
    verdict: str  # "copy", "close" or "novel"


def nearest_other(train: np.ndarray, ids: np.ndarray,
                  only: np.ndarray | None = None) -> dict[int, float]:
    """Training id -> cosine distance to its nearest *other* training vector (for the rows
    ``only``, by position, when given: the ratio needs it only for samples' nearest images)."""
    vi = VectorIndex.build(ids, train, kind="flat")
    rows = np.arange(len(train)) if only is None else np.unique(only)
    sims, found = vi.search(np.ascontiguousarray(train[rows]), 2)
    out = {}
    for r, s, f in zip(rows.tolist(), sims.tolist(), found.tolist(), strict=True):
        own = int(ids[r])
        other = s[1] if f[0] == own else s[0]
        out[own] = max(0.0, 1.0 - float(other))
    return out


def memorisation(train: dict[str, np.ndarray], train_ids: np.ndarray,
                 gen: dict[str, np.ndarray], gen_ids: np.ndarray,
                 copy_ratio: float = COPY_RATIO, verify: Verifier | None = None,
                 pixel_threshold: float = PIXEL_COPY) -> dict[str, Any]:
    """Per-sample nearest training images, authenticity ratios, verdicts, copy rate, hubness.

    Without ``verify`` (vectors only) the verdict falls back to the ratio: ``copy`` below
    ``copy_ratio``; with it, ``copy`` means a pixel match (module docstring)."""
    if len(train_ids) < 2 or len(gen_ids) == 0:
        raise ValueError("memorisation needs at least 2 training images and 1 sample")
    tc = combined(train["block1"], train["block5"])
    gc = combined(gen["block1"], gen["block5"])
    nn: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, tv, gv in (("block1", train["block1"], gen["block1"]),
                         ("block5", train["block5"], gen["block5"]), ("combined", tc, gc)):
        vi = VectorIndex.build(train_ids, np.ascontiguousarray(tv), kind="flat")
        s, f = vi.search(np.ascontiguousarray(gv), 1)
        nn[name] = (s[:, 0], f[:, 0])
    position = {int(i): p for p, i in enumerate(train_ids.tolist())}
    own_nn = nearest_other(tc, train_ids,
                           np.array([position[int(i)] for i in nn["combined"][1]]))
    verdicts = []
    for j, sample in enumerate(gen_ids.tolist()):
        t = int(nn["combined"][1][j])
        sim = float(nn["combined"][0][j])
        ratio = (max(0.0, 1.0 - sim) + EPS) / (own_nn[t] + EPS)
        pixels = verify(int(sample), t).score if verify else None
        if pixels is None:
            verdict = "copy" if ratio < copy_ratio else "novel"
        else:
            # both: pixels alone call a blurry sample a copy of a texture-less training image
            # (static noise blurs to flat grey), features alone cannot tell a copy from a
            # sibling of a narrow mode
            copy = pixels < pixel_threshold and ratio < PIXEL_GATE_RATIO
            verdict = "copy" if copy else "close" if ratio < copy_ratio else "novel"
        verdicts.append(SampleRow(
            int(sample), int(nn["block1"][1][j]), round(float(nn["block1"][0][j]), 6),
            int(nn["block5"][1][j]), round(float(nn["block5"][0][j]), 6), t, round(sim, 6),
            round(ratio, 4), pixels, verdict))
    hubs: dict[int, int] = {}
    for v in verdicts:
        hubs[v.nearest] = hubs.get(v.nearest, 0) + 1
    expected = len(gen_ids) / len(train_ids)
    copied: dict[int, int] = {}
    for v in verdicts:
        if v.verdict == "copy":
            copied[v.nearest] = copied.get(v.nearest, 0) + 1
    hubness = sorted(({"id": i, "count": c, "copies": copied.get(i, 0)}
                      for i, c in hubs.items()), key=lambda h: (-h["count"], h["id"]))
    copies = sum(v.verdict == "copy" for v in verdicts)
    return {
        "copy_ratio_threshold": copy_ratio,
        "pixel_threshold": pixel_threshold if verify else None,
        "verified_in_pixels": verify is not None,
        "close": sum(v.verdict == "close" for v in verdicts),
        "n_samples": len(verdicts),
        "copies": copies,
        "copy_rate": round(copies / len(verdicts), 4),
        "expected_hub_count": round(expected, 3),
        "samples": [v.as_json() for v in verdicts],
        "hubness": hubness,
    }
