"""Score a generator's samples against the curated training set: NDB/K, JS, copy rate, dropped.

``CheckpointEvaluator`` is built once per training job (it fits the NDB bins on the training
descriptors, loads the training vectors and the feature extractor) and then scores a fixed set
of samples at every checkpoint, in memory: no files are written and nothing is indexed, so a
run's ``metrics.jsonl`` rows are comparable across checkpoints and across runs of one workspace
(same bins, same K, same seed). docs/experiments.md describes the rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from modescope.core.workspace import Workspace
from modescope.indexer import copycheck, memorisation, ndb
from modescope.indexer.build import make_extractor, spec_from_meta
from modescope.indexer.inspect import curated_vectors, load_vectors
from modescope.indexer.store import source_items


class CheckpointEvaluator:
    """Scores uint8 sample images (N, S, S, 3) against the workspace's curated training set."""

    def __init__(self, ws: Workspace, *, k: int | None = None, seed: int = 0,
                 include_flagged: bool = False, batch: int = 32) -> None:
        started = time.perf_counter()
        self.ws = ws
        self.size = ws.read_config().image_size
        ids, vecs, self.meta = load_vectors(ws, "train")
        self.ids, self.vecs = curated_vectors(ws, ids, vecs, include_flagged)
        if len(self.ids) < 2:
            raise ValueError("the curated training set has fewer than 2 indexed images")
        self.bins = ndb.ModeBins(self.vecs, k=k, seed=seed)
        self.extractor = make_extractor(ws, spec_from_meta(self.meta), batch=batch)
        self.train_files = {it.id: it.file for it in source_items(ws, "train")}
        self._blurred: dict[int, np.ndarray] = {}
        self.setup_seconds = time.perf_counter() - started

    def _train_image(self, image_id: int) -> np.ndarray:
        if image_id not in self._blurred:
            self._blurred[image_id] = copycheck.blurred(
                copycheck.load_rgb(self.train_files[image_id], self.size))
        return self._blurred[image_id]

    def _at_training_size(self, images: np.ndarray) -> np.ndarray:
        if images.shape[1] == self.size:
            return images
        from PIL import Image

        return np.stack([np.asarray(Image.fromarray(im).resize(
            (self.size, self.size), Image.Resampling.LANCZOS)) for im in images])

    def evaluate(self, images: np.ndarray) -> dict[str, Any]:
        """NDB/K, JS, dropped and over-produced bins, copy rate; with the seconds each took."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"samples must be uint8 (N, S, S, 3), got {images.dtype} "
                             f"{images.shape}")
        t0 = time.perf_counter()
        images = self._at_training_size(images)
        feats = self.extractor(images)
        t1 = time.perf_counter()
        result = self.bins.score(feats)
        t2 = time.perf_counter()
        blurred_samples = [copycheck.blurred(im.astype(np.float32)) for im in images]

        def verify(sample: int, train_id: int) -> copycheck.Match:
            return copycheck.compare(blurred_samples[sample], self._train_image(train_id))

        mem = memorisation.memorisation(self.vecs, self.ids, feats,
                                        np.arange(len(images), dtype=np.int64), verify=verify)
        t3 = time.perf_counter()
        return {
            "ndb_over_k": round(result.ndb_over_k, 4), "ndb": result.ndb, "k": result.k,
            "js": round(result.js, 5),
            "dropped": len([b for b in result.bins if b.verdict == "dropped"]),
            "over_produced": len([b for b in result.bins if b.verdict == "over-produced"]),
            "copy_rate": mem["copy_rate"], "n_samples": len(images),
            "seconds": {"features": round(t1 - t0, 3), "ndb": round(t2 - t1, 3),
                        "memorisation": round(t3 - t2, 3)},
        }
