"""Indexes held open by the web process, and a generated sample's nearest training images.

A sample's query vector is the one stored in its run's index (``index/generated-<RUN>/``):
no feature extraction, so no TensorFlow. FAISS indexes are loaded once and kept; each lookup
stats meta.json and reloads a source whose meta changed (a new ``modescope index``).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from modescope.core.catalog_db import connect
from modescope.core.errors import Conflict, NotFound
from modescope.core.workspace import Workspace
from modescope.indexer.features import LAYERS
from modescope.indexer.index import IndexCorrupt, VectorIndex, faiss
from modescope.indexer.store import IndexMissing, IndexStore

K = 24


class NotIndexed(Conflict):
    """A source's index is missing, unreadable or was built with other settings: the pages
    show it as a notice, a JSON client gets a 409 naming the `modescope index` to run."""

    title = "Not indexed yet"


@dataclass(frozen=True)
class Opened:
    stamp: tuple[int, int]
    meta: dict[str, Any]
    layers: dict[str, VectorIndex]


@dataclass(frozen=True)
class TrainNeighbour:
    id: int
    similarity: float
    path: str | None
    label: str | None
    flagged: bool
    held_out: bool  # never trained on (core/holdout.py)


class IndexCache:
    """source -> its meta and open FAISS layers, reloaded when meta.json changes."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._lock = threading.Lock()
        self._open: dict[str, Opened] = {}

    def get(self, source: str) -> Opened:
        store = IndexStore(self.ws, source)
        try:
            st = store.meta_path.stat()
        except FileNotFoundError:
            raise NotIndexed(f"{source} is not indexed yet; run `modescope index --source "
                             f"{source} --workspace {self.ws.root}`") from None
        stamp = (st.st_mtime_ns, st.st_size)
        hit = self._open.get(source)
        if hit is not None and hit.stamp == stamp:
            return hit
        with self._lock:
            hit = self._open.get(source)
            if hit is not None and hit.stamp == stamp:
                return hit
            try:
                meta = store.require_meta()
                layers = {layer: store.open_layer(layer, meta) for layer in LAYERS}
            except (IndexMissing, IndexCorrupt) as exc:
                raise NotIndexed(str(exc)) from None
            opened = Opened(stamp, meta, layers)
            self._open[source] = opened
            return opened


def _rows(ws: Workspace, ids: list[int]
          ) -> tuple[dict[int, tuple[str, str | None]], set[int], set[int]]:
    """(id -> (path, label)) of training images, which of them are flagged and which held
    out: one read."""
    if not ids:
        return {}, set(), set()
    marks = ",".join("?" * len(ids))
    conn = connect(ws.catalog_path, readonly=True)
    try:
        rows = {int(r[0]): (str(r[1]), r[2]) for r in conn.execute(
            f"SELECT id, path, label FROM images WHERE id IN ({marks})", ids)}
        try:
            flagged = {int(r[0]) for r in conn.execute(
                f"SELECT image_id FROM flags WHERE image_id IN ({marks})", ids)}
        except sqlite3.OperationalError:  # a catalog from before flags existed
            flagged = set()
        try:
            held = {int(r[0]) for r in conn.execute(
                f"SELECT image_id FROM holdout WHERE image_id IN ({marks})", ids)}
        except sqlite3.OperationalError:  # a catalog from before the held-out split
            held = set()
    finally:
        conn.close()
    return rows, flagged, held


def one_query_thread() -> None:
    """Search on this thread alone. One query is too small to share: OpenMP threads spinning
    against a busy CPU made one 10k flat search 25 ms at p50 instead of 2 ms. The setting is
    per thread (this request's worker thread), so analyses elsewhere keep every core. Every
    page that searches calls it (the image page did not, and spent most of its time there)."""
    faiss.omp_set_num_threads(1)


def sample_neighbours(ws: Workspace, cache: IndexCache, run: str, n: int,
                      k: int = K) -> tuple[dict[str, list[TrainNeighbour]], dict[str, Any]]:
    """The k nearest training images of sample n on each layer, and the training meta."""
    gen = cache.get(f"generated:{run}")
    train = cache.get("train")
    if gen.meta["spec"] != train.meta["spec"]:
        raise NotIndexed(f"run {run} was indexed with other feature settings than the training "
                         f"set; run `modescope index --source generated:{run} --rebuild`")
    one_query_thread()
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for layer in LAYERS:
        try:
            vec = gen.layers[layer].reconstruct(n)
        except KeyError:
            raise NotFound(f"run {run} has no indexed sample {n}") from None
        sims, ids = train.layers[layer].search(vec[None, :], k)
        found[layer] = (sims[0], ids[0])
    all_ids = sorted({int(i) for _, ids in found.values() for i in ids.tolist() if i >= 0})
    rows, flagged, held = _rows(ws, all_ids)
    out: dict[str, list[TrainNeighbour]] = {}
    for layer, (sims, ids) in found.items():
        out[layer] = []
        for s, i in zip(sims.tolist(), ids.tolist(), strict=True):
            if i < 0:
                continue
            path, label = rows.get(int(i), (None, None))
            out[layer].append(TrainNeighbour(int(i), round(float(s), 4), path, label,
                                             int(i) in flagged, int(i) in held))
    return out, train.meta
