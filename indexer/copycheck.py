"""Pixel verification of memorisation candidates: is a sample a near-copy of a training image?

Feature-space neighbours say *which* training image a sample is closest to; they cannot say
whether it is a copy, because two different images of one mode can be as close in descriptor
space as a copy is to its source (docs/inspection.md measures this). The check here compares
pixels, as copy-detection pipelines verify their retrieved candidates:

1. both images at the training size, blurred with a Gaussian of sigma = size / 32 px (a GAN's
   copy is never pixel-aligned: sub-pixel shifts and noise must not count);
2. aligned by the integer shift within +-size / 32 px, the horizontal mirror (training used
   flips) and a small rotation (``ANGLES``: -3 to 3 degrees; a copy is seldom upright to the
   pixel) that minimise the mean absolute difference, leaving out a border of the shift radius,
   then refined by half a pixel on each axis (a copy is seldom on the pixel grid either);
3. the aligned training image's colours are matched to the sample's, per channel, by the gain
   and offset that fit them best (least squares; gains within ``GAIN_RANGE``): a copy whose
   colours drifted (saturation, white balance, contrast, as a GAN's copies do) is still the same
   picture, while a change in one part of the image (another face, a sign's symbol) cannot be
   undone by one map for the whole image;
4. the difference is averaged over patches of size / 8 px; the score is the **largest patch
   difference** on 0-255 RGB. A copy matches everywhere; a different image of the same mode
   differs somewhere (a face, a sun, a pattern), so one patch suffices to say "not a copy".

The rotations are of the training image (``turned``, kept in the callers' caches: a training
image is compared with many samples). What score makes two images one picture is the
memorisation analysis's rule (``PIXEL_TWIN`` in indexer/memorisation.py, chosen by
bench/validate.py on real images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, rotate

ANGLES = (0, -1, 1, -2, 2, -3, 3)  # degrees the training image is turned by (0 first: ties)
GAIN_RANGE = (2 / 3, 3 / 2)  # per-channel colour gains the comparison may apply


@dataclass(frozen=True)
class Match:
    score: float  # largest patch difference after blur and alignment (0-255)
    shift: tuple[float, float]  # (dy, dx): where the training image sits in the sample
    mirrored: bool
    angle: int = 0  # degrees the training image was turned by (counter-clockwise)
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)  # the colour map's gain per channel


@dataclass(frozen=True)
class Turned:
    """A blurred training image turned by each of ``ANGLES`` (the first unturned)."""

    images: tuple[np.ndarray, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.images[0].shape

    @property
    def nbytes(self) -> int:
        return sum(image.nbytes for image in self.images)


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


def turned(train: np.ndarray) -> Turned:
    """A ``blurred`` training image turned by each of ``ANGLES`` about its centre (bilinear;
    the corners it uncovers take the nearest edge's colour)."""
    return Turned(tuple(train if a == 0 else
                        rotate(train, a, axes=(1, 0), reshape=False, order=1, mode="nearest")
                        for a in ANGLES))


def compare(sample: np.ndarray, train: np.ndarray | Turned) -> Match:
    """Both already ``blurred`` and of one size: the best-aligned largest patch difference.

    Each orientation of the training image (``turned``; a bare array is turned here) has its
    centre (a border of the shift radius left out) compared with every shifted window of the
    sample and of its mirror image."""
    t = train if isinstance(train, Turned) else turned(train)
    if sample.shape != t.shape:
        raise ValueError(f"sample {sample.shape} and training image {t.shape} differ in size")
    size = t.shape[0]
    r, patch = max(1, size // 32), max(2, size // 8)
    m = size - 2 * r
    best: tuple[float, int, int, bool, int] | None = None
    for mirrored in (False, True):
        s = np.ascontiguousarray(sample[:, ::-1]) if mirrored else sample
        for k, image in enumerate(t.images):
            centre = image[r:size - r, r:size - r]
            for i in range(2 * r + 1):  # a loop of whole-window differences: faster in numpy
                for j in range(2 * r + 1):  # than one strided pass over every shift
                    mean = float(np.abs(s[i:i + m, j:j + m] - centre).mean())
                    if best is None or mean < best[0]:
                        best = (mean, i - r, j - r, mirrored, k)
    assert best is not None
    _, dy, dx, mirrored, k = best
    s = sample[:, ::-1] if mirrored else sample
    centre = t.images[k][r:size - r, r:size - r]
    aligned, (fy, fx) = _half_pixel(s, centre, r, dy, dx)
    matched, gains = colour_matched(centre, aligned)
    diff = np.abs(aligned - matched).mean(axis=2)
    rows, cols = diff.shape[0] // patch, diff.shape[1] // patch
    patches = diff[:rows * patch, :cols * patch].reshape(rows, patch, cols, patch).mean((1, 3))
    return Match(round(float(patches.max()), 3), (dy + fy, dx + fx), mirrored, ANGLES[k], gains)


def _half_pixel(s: np.ndarray, centre: np.ndarray, r: int, dy: int, dx: int
                ) -> tuple[np.ndarray, tuple[float, float]]:
    """The sample's window at the integer shift (dy, dx) refined by half a pixel on each axis
    (bilinear: the mean of the neighbouring windows) where that lowers the mean absolute
    difference: a generator's copy sits off the pixel grid as often as on it, and at the
    training size a half-pixel offset of a sharp edge leaves a difference the blur alone does
    not hide. Returns the window and the half-pixel offset (fy, fx)."""
    size = s.shape[0]

    def window(a: int, b: int) -> np.ndarray:
        return s[r + a:size - r + a, r + b:size - r + b]

    best = window(dy, dx)
    best_mean, offset = float(np.abs(best - centre).mean()), (0.0, 0.0)
    for fy in (-0.5, 0.0, 0.5):
        for fx in (-0.5, 0.0, 0.5):
            ys = (dy,) if fy == 0 else (dy, dy + int(np.sign(fy)))
            xs = (dx,) if fx == 0 else (dx, dx + int(np.sign(fx)))
            if (fy, fx) == (0.0, 0.0) or max(map(abs, ys + xs)) > r:
                continue
            w = np.mean([window(a, b) for a in ys for b in xs], axis=0)
            mean = float(np.abs(w - centre).mean())
            if mean < best_mean:
                best, best_mean, offset = w, mean, (fy, fx)
    return best, offset


def colour_matched(train: np.ndarray, sample: np.ndarray
                   ) -> tuple[np.ndarray, tuple[float, float, float]]:
    """``train`` with each channel mapped by the gain (within ``GAIN_RANGE``) and offset that
    bring it closest to ``sample``'s in the least-squares sense, clipped to 0-255; the gains."""
    a = train.reshape(-1, 3).astype(np.float64)
    b = sample.reshape(-1, 3).astype(np.float64)
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    var = ((a - ma) ** 2).mean(axis=0)
    cov = ((a - ma) * (b - mb)).mean(axis=0)
    gain = np.where(var > 1e-6, cov / np.maximum(var, 1e-6), 1.0).clip(*GAIN_RANGE)
    out = ((a - ma) * gain + mb).clip(0.0, 255.0).reshape(train.shape).astype(np.float32)
    g = [round(float(v), 3) for v in gain]
    return out, (g[0], g[1], g[2])
