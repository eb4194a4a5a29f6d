"""All analyses for 10k training x 1k generated images (synthetic descriptors): seconds each.

    python bench/inspect_bench.py [--train 10000] [--gen 1000] [--held-out 1000]

Target: everything in <= 10 s on the development machine (2 cores); issue 15 asks 100,000 x
10,000 within 60 s. The memorisation row calibrates on held-out descriptors as the product does
after ingest's default split (``--held-out 0``: the leave-one-out fallback of a workspace without
one).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_bench import descriptor_like  # noqa: E402

from modescope.indexer import curation, memorisation, ndb, outlier_scores  # noqa: E402


def pixel_verification(n: int) -> float:
    """The ``copy`` check of n images against their nearest training image: load, blur and
    compare, as the memorisation analysis does (training images cached, samples read once)."""
    import tempfile

    from PIL import Image

    from modescope.indexer.copycheck import blurred, compare, load_rgb

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(n):
            f = Path(tmp) / f"{i}.png"
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(f)
            files.append(f)
        cached = blurred(load_rgb(files[0], 64))
        t = time.perf_counter()
        for f in files:
            compare(blurred(load_rgb(f, 64)), cached)
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--gen", type=int, default=1_000)
    ap.add_argument("--held-out", type=int, help="held-out reference images (default: a tenth "
                    "of --train, as ingest's default split leaves)")
    args = ap.parse_args()
    held_out = args.train // 10 if args.held_out is None else args.held_out
    train = {"block1": descriptor_like(args.train, 1024, 1),
             "block5": descriptor_like(args.train, 1024, 2)}
    gen = {"block1": descriptor_like(args.gen, 1024, 3),
           "block5": descriptor_like(args.gen, 1024, 4)}
    tids = np.arange(args.train, dtype=np.int64)
    gids = np.arange(args.gen, dtype=np.int64)
    rows = []

    def timed(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        fn()
        rows.append((name, time.perf_counter() - t))

    def modes() -> None:
        white = ndb.whitener(ndb.combined(train["block1"], train["block5"]))
        tc = white(ndb.combined(train["block1"], train["block5"]))
        gc = white(ndb.combined(gen["block1"], gen["block5"]))
        k = ndb.default_k(args.train)
        c = ndb.kmeans_bins(tc, k)
        ndb.ndb_from_bins(ndb.assign(tc, c), ndb.assign(gc, c), k)

    timed("modes (whitening, k-means K=100, NDB, bootstrap 200)", modes)
    reference = ({"block1": descriptor_like(held_out, 1024, 5),
                  "block5": descriptor_like(held_out, 1024, 6)} if held_out else None)
    timed(f"memorisation + hubness (vectors; {held_out:,} held-out)" if held_out else
          "memorisation + hubness (vectors; leave-one-out)",
          lambda: memorisation.memorisation(train, tids, gen, gids, reference))
    # the product compares every sample and every held-out image with its nearest training
    # image (up to three when the layers' nearest differ; one here)
    rows.append((f"pixel verification of {args.gen:,} samples and {held_out:,} held-out "
                 "images (64 px PNGs)", pixel_verification(args.gen + held_out)))
    labels: list[str | None] = [f"folder-{i % 8}" for i in range(args.train)]  # 8 subfolders
    timed("outliers (k=10, with 8 labels)",
          lambda: outlier_scores.outliers(train, tids, labels))
    timed("near-duplicates (range search)", lambda: curation.near_duplicates(train, tids))
    flagged = set(range(0, args.train, 500))
    timed("suggestions (logistic regression)", lambda: curation.suggest(train, tids, flagged))
    print(f"inspection benchmark: {args.train:,} training x {args.gen:,} generated, 1,024-d per "
          f"layer, {os.cpu_count()} cores")
    print("| analysis | seconds |\n|---|---:|")
    for name, secs in rows:
        print(f"| {name} | {secs:.2f} |")
    print(f"| **all** | **{sum(s for _, s in rows):.2f}** |")


if __name__ == "__main__":
    main()
