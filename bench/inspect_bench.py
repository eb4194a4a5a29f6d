"""All analyses for 10k training x 1k generated images (synthetic descriptors): seconds each,
in one process, as the product's analysis child runs them (the training set's k-NN graph is
searched once per layer and shared: indexer/graph.py).

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
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_bench import descriptor_like  # noqa: E402

from modescope.indexer import (  # noqa: E402
    curation,
    graph,
    memorisation,
    ndb,
    outlier_scores,
    prdc,
)


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

    def timed(name: str, fn: Callable[[], object]) -> None:
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
    # the dataset side reads every indexed training image, held-out ones included (ingest's
    # split holds them out of training, not out of the dataset pages); the run side above and
    # prdc below read the curated ones: two sets, two k-NN graphs, as in the product
    indexed = {k: np.concatenate([train[k], reference[k]]) if reference else train[k]
               for k in train}
    iids = np.arange(len(indexed["block1"]), dtype=np.int64)
    for layer in train:  # the curated images are a subset of them (indexer/inputs.py says so)
        graph.subset_of(indexed[layer], np.arange(args.train), train[layer])
    labels: list[str | None] = [f"folder-{i % 8}" for i in range(len(iids))]  # 8 subfolders
    timed(f"outliers (k=10, with 8 labels; {len(iids):,} indexed images: the k-NN graph of "
          "each layer)", lambda: outlier_scores.outliers(indexed, iids, labels))
    timed("near-duplicates (within limits on both layers; the same graph)",
          lambda: curation.near_duplicates(indexed, iids))
    flagged = set(range(0, len(iids), 500))
    timed("suggestions (logistic regression)", lambda: curation.suggest(indexed, iids, flagged))

    def fidelity() -> None:  # inspect prdc: both layers, samples and held-out images
        for layer in ("block1", "block5"):
            radii = prdc.knn_radii(train[layer], prdc.DEFAULT_K)
            prdc.prdc(train[layer], gen[layer], prdc.DEFAULT_K, train_radii=radii)
            if reference:
                prdc.prdc(train[layer], reference[layer], prdc.DEFAULT_K, train_radii=radii)

    timed("precision, recall, density, coverage (k=5, both layers, samples and held-out)",
          fidelity)
    print(f"inspection benchmark: {args.train:,} training x {args.gen:,} generated, 1,024-d per "
          f"layer, {os.cpu_count()} cores")
    print("| analysis | seconds |\n|---|---:|")
    for name, secs in rows:
        print(f"| {name} | {secs:.2f} |")
    print(f"| **all** | **{sum(s for _, s in rows):.2f}** |")


if __name__ == "__main__":
    main()
