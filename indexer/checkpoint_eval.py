"""Score a generator's samples against the curated training set at each checkpoint.

``CheckpointEvaluator`` is built once per training job: it loads the curated training vectors
and the feature extractor, and prepares every registered analysis that declares per-checkpoint
scoring (indexer/analyses/registry.py: modes gives NDB/K, JS, dropped and over-produced bins,
memorisation the copy rate; each fits what it needs, e.g. the NDB bins, once). It then scores a
fixed set of samples at every checkpoint, in memory: no files are written and nothing is
indexed, so a run's ``metrics.jsonl`` rows are comparable across checkpoints and across runs of
one workspace (same bins, same K, same seed). docs/experiments.md describes the rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from modescope.core.workspace import Workspace
from modescope.indexer.analyses.registry import (
    Samples,
    Scorer,
    TrainingSet,
    checkpoint_analyses,
)
from modescope.indexer.build import make_extractor, spec_from_meta
from modescope.indexer.inputs import curated_vectors, load_vectors


def prepare_scorers(training: TrainingSet) -> list[tuple[str, Scorer]]:
    """(timer, scorer) of every registered analysis that scores checkpoints, in listing order."""
    return [(spec.checkpoint.timer, spec.checkpoint.prepare(training))
            for spec in checkpoint_analyses() if spec.checkpoint is not None]


def score_samples(scorers: list[tuple[str, Scorer]], samples: Samples,
                  seconds: dict[str, float]) -> dict[str, Any]:
    """Every scorer's keys, in order; the seconds each took under its timer's key."""
    row: dict[str, Any] = {}
    for timer, scorer in scorers:
        started = time.perf_counter()
        row.update(scorer(samples))
        seconds[timer] = round(time.perf_counter() - started, 3)
    return row


class CheckpointEvaluator:
    """Scores uint8 sample images (N, S, S, 3) against the workspace's curated training set."""

    def __init__(self, ws: Workspace, *, include_flagged: bool = False,
                 batch: int = 32) -> None:
        started = time.perf_counter()
        ids, vecs, meta = load_vectors(ws, "train")
        ids, vecs = curated_vectors(ws, ids, vecs, include_flagged)
        if len(ids) < 2:
            raise ValueError("the curated training set has fewer than 2 indexed images")
        self.training = TrainingSet(ws, ws.read_config().image_size, ids, vecs, meta)
        self.scorers = prepare_scorers(self.training)
        self.extractor = make_extractor(ws, spec_from_meta(meta), batch=batch)
        self.setup_seconds = time.perf_counter() - started

    def _at_training_size(self, images: np.ndarray) -> np.ndarray:
        size = self.training.size
        if images.shape[1] == size:
            return images
        from PIL import Image

        return np.stack([np.asarray(Image.fromarray(im).resize(
            (size, size), Image.Resampling.LANCZOS)) for im in images])

    def evaluate(self, images: np.ndarray) -> dict[str, Any]:
        """Each scoring analysis's keys (NDB/K, JS, dropped and over-produced bins, copy rate),
        the number of samples, and the seconds each part took."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"samples must be uint8 (N, S, S, 3), got {images.dtype} "
                             f"{images.shape}")
        t0 = time.perf_counter()
        images = self._at_training_size(images)
        samples = Samples(images, self.extractor(images),
                          np.arange(len(images), dtype=np.int64))
        seconds = {"features": round(time.perf_counter() - t0, 3)}
        row = score_samples(self.scorers, samples, seconds)
        return {**row, "n_samples": len(images), "seconds": seconds}
