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
import tempfile
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


def pixel_verifiers(tmp: Path, spent: list[tuple[float, float]], files: int = 64
                    ) -> tuple[memorisation.Verifier, memorisation.Verifier]:
    """The pixel comparison of a sample (or held-out image) with a training image as the
    product makes it (indexer/inputs.py), one for held-out images and one for samples (each
    with its own cache, as in the product): the image read and blurred once while it stays in a
    cache of 5,000 (a sample meets up to three training images in a row), the training image
    blurred and turned once while it stays in a cache of 750 (256 MB each). The images are
    ``files`` random 64-px PNGs (blurred noise: every alignment differs alike, so the
    comparison's search gives up on fewer windows early than on drawn images), image i the
    (i mod files)-th. Each comparison's (start, end) is appended to ``spent``."""
    from functools import lru_cache

    from PIL import Image

    from modescope.indexer.copycheck import Match, Turned, blurred, compare, load_rgb, turned

    rng = np.random.default_rng(0)
    paths = []
    for i in range(files):
        f = tmp / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(f)
        paths.append(f)

    @lru_cache(maxsize=750)
    def training(train_id: int) -> Turned:
        return turned(blurred(load_rgb(paths[train_id % files], 64)))

    def verifier() -> memorisation.Verifier:
        @lru_cache(maxsize=5000)
        def image(image_id: int) -> np.ndarray:
            return blurred(load_rgb(paths[image_id % files], 64))

        def verify(a: int, b: int) -> Match:
            t = time.perf_counter()
            found = compare(image(a), training(b))
            spent.append((t, time.perf_counter()))
            return found

        return verify

    return verifier(), verifier()


def wall(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least one of the (start, end) spans ran (the comparisons run on
    one thread per core)."""
    total, end = 0.0, -np.inf
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def graph_recall(x: np.ndarray, queries: int = 300, k: int = 10) -> str:
    """How many of each row's k nearest others the shared graph holds, against an exact search
    of a seeded sample of rows (the graph is approximate above graph.EXACT_UP_TO rows)."""
    import faiss

    g = graph.self_knn(x, k)
    rows = np.random.default_rng(0).choice(len(x), min(queries, len(x)), replace=False)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, found = index.search(x[rows], k + 1)
    hits = [len(set(g.rows[r].tolist()) & (set(f.tolist()) - {r})) / k
            for r, f in zip(rows, found, strict=True)]
    kind = "exact" if g.exact else "approximate"
    return (f"{kind} k-NN graph of {len(x):,} rows, recall@{k} {np.mean(hits):.3f} "
            f"({len(rows)} rows)")


def label_recall(x: np.ndarray, labels: list[str | None], queries: int = 300, k: int = 10
                 ) -> str:
    """How many of each row's k nearest others of its own label the outliers' within-label
    search finds (``graph.within``: read from the shared graph, rows that keep too few searched
    again), against an exact search of the label's rows, for a seeded sample of rows."""
    import faiss

    arr = np.asarray(labels)
    names = np.unique(arr)
    rng = np.random.default_rng(0)
    hits = []
    for label in names:
        rows = np.flatnonzero(arr == label)
        g = graph.within(x, rows, k)
        part = np.ascontiguousarray(x[rows])
        index = faiss.IndexFlatIP(part.shape[1])
        index.add(part)
        pick = rng.choice(len(rows), min(queries // len(names) + 1, len(rows)), replace=False)
        _, found = index.search(part[pick], k + 1)
        hits += [len(set(g.rows[r].tolist()) & (set(f.tolist()) - {r})) / k
                 for r, f in zip(pick, found, strict=True)]
    return f"within each label: recall@{k} {np.mean(hits):.3f} ({len(hits)} rows)"


def real_recall(folder: Path, n: int) -> None:
    """The shared graph's recall on the first n rows of real descriptors, per layer."""
    for layer in ("block1", "block5"):
        files = sorted(folder.glob(f"*-{layer}.npy"))
        if not files:
            raise SystemExit(f"no *-{layer}.npy in {folder}: run index_bench.py --part real "
                             f"--cache {folder} first")
        x = np.array(np.load(files[0], mmap_mode="r")[:n], dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        t = time.perf_counter()
        graph.self_knn(x, graph.GRAPH_K)
        took = time.perf_counter() - t
        print(f"{layer} ({files[0].name}): {graph_recall(x)}; searched in {took:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--gen", type=int, default=1_000)
    ap.add_argument("--held-out", type=int, help="held-out reference images (default: a tenth "
                    "of --train, as ingest's default split leaves)")
    ap.add_argument("--recall-on", type=Path, metavar="DIR",
                    help="only measure the graph's recall on real descriptors: the first "
                    "--train + held-out rows of each layer's .npy in DIR (index_bench.py "
                    "--part real --cache DIR writes them)")
    args = ap.parse_args()
    held_out = args.train // 10 if args.held_out is None else args.held_out
    if args.recall_on:
        real_recall(args.recall_on, args.train + held_out)
        return
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

    def modes() -> None:  # as indexer/analyses/modes.py
        bins = ndb.ModeBins(train)
        ndb.ndb_from_bins(bins.train_bins, bins.generated_bins(gen)[1], bins.k)

    timed("modes (whitening, k-means K=100, NDB)", modes)
    reference = ({"block1": descriptor_like(held_out, 1024, 5),
                  "block5": descriptor_like(held_out, 1024, 6)} if held_out else None)
    # the dataset side reads every indexed training image, held-out ones included (ingest's
    # split holds them out of training, not out of the dataset pages); the run side (modes,
    # memorisation, prdc) reads the curated ones, noted as a subset of them as the product's
    # indexer/inputs.curated_vectors does when it loads them: two sets, two k-NN graphs, one
    # approximate search restricted to the curated part
    indexed = {k: np.concatenate([train[k], reference[k]]) if reference else train[k]
               for k in train}
    iids = np.arange(len(indexed["block1"]), dtype=np.int64)
    for layer in train:
        graph.subset_of(indexed[layer], np.arange(args.train), train[layer])
    found: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        spent: list[tuple[float, float]] = []
        held_verify, verify = pixel_verifiers(Path(tmp), spent)
        ref = (memorisation.Reference(np.arange(held_out), reference, held_verify)
               if reference else None)
        timed(f"memorisation + hubness ({held_out:,} held-out; pixel comparisons of 64-px "
              "PNGs where descriptors allow a copy)" if held_out else
              "memorisation + hubness (leave-one-out; pixel comparisons of 64-px PNGs)",
              lambda: found.update(memorisation.memorisation(train, tids, gen, gids, ref,
                                                             verify=verify)))
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
    for layer in ("block1", "block5"):
        print(f"{layer}: {graph_recall(indexed[layer])}; "
              f"{label_recall(indexed[layer], labels)}")
    print(f"pixel comparisons: {found['compared_in_pixels']:,} of {args.gen:,} samples "
          f"({found['pixel_gate_rule']}); {len(spent):,} comparisons of samples and held-out "
          f"images with training images took {wall(spent):.1f} s of the memorisation row "
          f"({sum(b - a for a, b in spent):.1f} s on {os.cpu_count()} threads)")
    print("| analysis | seconds |\n|---|---:|")
    for name, secs in rows:
        print(f"| {name} | {secs:.2f} |")
    print(f"| **all** | **{sum(s for _, s in rows):.2f}** |")


if __name__ == "__main__":
    main()
