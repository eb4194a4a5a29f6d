"""Never-reached training images: the prdc analysis's per-image reach (samples inside each
training image's k-NN ball, indexer/prdc.py) grouped by the modes analysis's NDB bins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modescope.indexer.analyses.prdc import PRDCResult

LAYERS = ("block5", "block1")  # block5 (shape) first: the page's default


@dataclass(frozen=True)
class BinReach:
    bin: int | None  # None: the training images the modes analysis did not bin
    train_count: int
    reached_share: float
    never_reached: list[int]  # training ids, lowest first


@dataclass(frozen=True)
class NeverReached:
    layer: str
    k: int
    n_train: int
    never_reached: int
    coverage: float
    binned: bool  # grouped by the modes analysis's bins (else one group)
    groups: list[BinReach]


def never_reached(prdc: PRDCResult, train_bin_of: dict[int, int] | None,
                  layer: str) -> NeverReached:
    """The never-reached training images of one layer, by bin (bins with some first, most
    unreached first)."""
    found = prdc.layer(layer)
    by_bin: dict[int | None, list[int]] = {}
    for image_id in found.reach:
        b = train_bin_of.get(image_id) if train_bin_of is not None else None
        by_bin.setdefault(b, []).append(image_id)
    groups = []
    for b, ids in by_bin.items():
        unreached = sorted(i for i in ids if found.reach[i] == 0)
        groups.append(BinReach(b, len(ids), 1 - len(unreached) / len(ids), unreached))
    groups.sort(key=lambda g: (-len(g.never_reached), g.reached_share,
                               -1 if g.bin is None else g.bin))
    return NeverReached(layer, found.k, found.n_train, found.never_reached,
                        found.samples.coverage, train_bin_of is not None, groups)


def reached_share_by_bin(prdc: PRDCResult, train_bin_of: dict[int, int],
                         layer: str = "block5") -> dict[int, float]:
    """Per NDB bin, the share of its training images that some sample reaches (the modes
    page's column)."""
    reach = prdc.layer(layer).reach
    counts: dict[int, list[int]] = {}
    for image_id, b in train_bin_of.items():
        if image_id in reach:
            c = counts.setdefault(b, [0, 0])
            c[0] += reach[image_id] > 0
            c[1] += 1
    return {b: hit / n for b, (hit, n) in counts.items() if n}


def as_json(view: NeverReached, thumb: Any, page: Any) -> dict[str, Any]:
    """The JSON twin's body; ``thumb``/``page`` give a training image's URLs."""
    return {
        "layer": view.layer, "k": view.k, "n_train": view.n_train,
        "never_reached": view.never_reached, "coverage": view.coverage, "binned": view.binned,
        "groups": [{"bin": g.bin, "train_count": g.train_count,
                    "reached_share": round(g.reached_share, 4),
                    "never_reached": [{"id": i, "image": thumb(i), "page": page(i)}
                                      for i in g.never_reached]} for g in view.groups]}
