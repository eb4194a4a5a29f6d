"""Pixel verification of memorisation candidates: is a sample a near-copy of a training image?

Feature-space neighbours say *which* training image a sample is closest to; they cannot say
whether it is a copy, because two different images of one mode can be as close in descriptor
space as a copy is to its source (docs/inspection.md measures this). The check here compares
pixels, as copy-detection pipelines verify their retrieved candidates:

1. both images at the training size, blurred with a Gaussian of sigma = size / 32 px (a GAN's
   copy is never pixel-aligned: sub-pixel shifts and noise must not count);
2. aligned by the integer shift within +-size / 32 px (and the horizontal mirror, since training
   used flips) that minimises the mean absolute difference, leaving out a border that wide;
3. the difference is averaged over patches of size / 8 px; the score is the **largest patch
   difference** on 0-255 RGB. A copy matches everywhere; a different image of the same mode
   differs somewhere (a face, a sun, a pattern), so one patch suffices to say "not a copy".

Score < ``PIXEL_COPY`` -> the sample is a near-copy of that training image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

PIXEL_COPY = 10.0  # largest 8x8-patch mean |difference| (0-255) at 64 px; docs/inspection.md


@dataclass(frozen=True)
class Match:
    score: float  # largest patch difference after blur and alignment (0-255)
    shift: tuple[int, int]  # (dy, dx): where the training image sits in the sample
    mirrored: bool


def load_rgb(path: Path, size: int | None = None) -> np.ndarray:
    """An image file -> float32 (size, size, 3) in 0-255 (resized when it is another size)."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        if size is not None and rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(rgb, np.float32)


def blurred(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
        raise ValueError(f"expected a square (S, S, 3) image, got shape {image.shape}")
    sigma = image.shape[0] / 32
    return gaussian_filter(image.astype(np.float32, copy=False), (sigma, sigma, 0))


def compare(sample: np.ndarray, train: np.ndarray) -> Match:
    """Both already ``blurred`` and of one size: the best-aligned largest patch difference.

    The training image's centre (a border of the shift radius left out) is compared with every
    shifted window of the sample in one vectorised pass per orientation."""
    if sample.shape != train.shape:
        raise ValueError(f"sample {sample.shape} and training image {train.shape} differ in size")
    size = train.shape[0]
    r, patch = max(1, size // 32), max(2, size // 8)
    centre = train[r:size - r, r:size - r]
    best: tuple[float, int, int, bool] | None = None
    for mirrored in (False, True):
        s = np.ascontiguousarray(sample[:, ::-1]) if mirrored else sample
        windows = np.lib.stride_tricks.sliding_window_view(s, centre.shape[:2], axis=(0, 1))
        # windows: (2r+1, 2r+1, 3, S-2r, S-2r); centre as (3, S-2r, S-2r)
        means = np.abs(windows - centre.transpose(2, 0, 1)).mean(axis=(2, 3, 4))
        i, j = np.unravel_index(int(means.argmin()), means.shape)
        if best is None or means[i, j] < best[0]:
            best = (float(means[i, j]), int(i) - r, int(j) - r, mirrored)
    assert best is not None
    _, dy, dx, mirrored = best
    s = sample[:, ::-1] if mirrored else sample
    aligned = s[r + dy:size - r + dy, r + dx:size - r + dx]
    diff = np.abs(aligned - centre).mean(axis=2)
    rows, cols = diff.shape[0] // patch, diff.shape[1] // patch
    patches = diff[:rows * patch, :cols * patch].reshape(rows, patch, cols, patch).mean((1, 3))
    return Match(round(float(patches.max()), 3), (dy, dx), mirrored)
