"""The held-out split: real images the generator never sees, the reference for calibration.

Ingest reserves a share of the ok images as *held out*: they are indexed and shown in the
dataset pages like any other image, but ``Catalog.curated()`` leaves them out, so no run trains
on them and export never writes them. The memorisation verdicts compare each sample with them
(docs/inspection.md): an image the generator never saw is what an honest sample looks like.

Which images: every ok, unflagged image gets a key, the SHA-256 of the workspace's seed and its
content hash; the images with the smallest keys are held out. The key depends on nothing but the
content, so the choice is reproducible, a rerun keeps it, and new images join in proportion
without moving the old ones. Flags never move: a flagged image is never chosen (it would
pollute the reference), and a held-out image that is flagged later is simply left out of it.
"""

from __future__ import annotations

import hashlib

MIN_SET = 100  # below this many ok images nothing is held out: too few to spare or calibrate
MIN_HELD_OUT = 200  # the held-out set grows to this many where a fifth of the set allows


def target(n_images: int, share: float) -> int:
    """How many of ``n_images`` ok images to hold out at ``share`` (0 turns it off).

    ``share`` of the set, but at least ``MIN_HELD_OUT`` images (at most a fifth of the set):
    a calibration percentile needs a few hundred references to resolve 1 %.
    """
    if not 0 <= share < 0.5:
        raise ValueError(f"held-out share {share} must be in [0, 0.5)")
    if share == 0 or n_images < MIN_SET:
        return 0
    return max(round(share * n_images), min(MIN_HELD_OUT, n_images // 5))


def key(sha256: str, seed: int = 0) -> str:
    """The order in which images are held out: smallest key first."""
    return hashlib.sha256(f"modescope-holdout:{seed}:{sha256}".encode()).hexdigest()


def plan(current: dict[int, str], eligible: dict[int, str], n_images: int,
         share: float) -> tuple[list[int], list[int]]:
    """(ids to add, ids to remove) so that the held-out set reaches its target.

    ``current``: id -> sha256 of the ok images held out now; ``eligible``: the same of the ok,
    unflagged images not held out; ``n_images``: every ok image. Additions take the smallest
    keys; removals (after a lower share) give back the largest keys first.
    """
    want = target(n_images, share)
    if len(current) < want:
        order = sorted(eligible, key=lambda i: key(eligible[i]))
        return order[:want - len(current)], []
    order = sorted(current, key=lambda i: key(current[i]))
    return [], order[want:]
