"""Neighbour quality against ground truth: leave-one-out precision@k of same-label neighbours."""

from __future__ import annotations

import numpy as np


def precision_at_k(vectors: np.ndarray, labels: np.ndarray, k: int = 24) -> float:
    """Mean share of each vector's k nearest others (cosine) that carry its label.

    ``vectors`` must be L2-normalised (n, d) float32; ``labels`` (n,) of any comparable type.
    """
    if vectors.ndim != 2 or len(vectors) != len(labels):
        raise ValueError(f"need (n, d) vectors and n labels, got {vectors.shape}, {len(labels)}")
    if len(vectors) <= k:
        raise ValueError(f"need more than k={k} vectors, got {len(vectors)}")
    labels = np.asarray(labels)
    hits = 0
    for start in range(0, len(vectors), 1024):
        sims = vectors[start:start + 1024] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # leave the query itself out
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        hits += int((labels[top] == labels[start:start + 1024, None]).sum())
    return hits / (len(vectors) * k)


def raw_pixels(images: np.ndarray, side: int = 16) -> np.ndarray:
    """The raw-pixel baseline: box-downsampled to side x side RGB, centred, L2-normalised."""
    n, h, w, _ = images.shape
    if h % side or w % side:
        raise ValueError(f"image size {h}x{w} is not a multiple of {side}")
    small = images.reshape(n, side, h // side, side, w // side, 3).mean(axis=(2, 4))
    flat = small.reshape(n, -1).astype(np.float32) / 127.5 - 1.0
    return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
