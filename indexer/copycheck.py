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

import numba
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

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
    """A blurred training image turned by each of ``ANGLES`` (the first unturned): one
    contiguous (len(ANGLES), S, S, 3) float32 stack."""

    stack: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.stack.shape[1:]

    @property
    def nbytes(self) -> int:
        return int(self.stack.nbytes)


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
    the corners it uncovers take the nearest edge's colour): the geometry of
    ``scipy.ndimage.rotate(train, angle, axes=(1, 0), reshape=False, order=1, mode="nearest")``
    (tests/indexer/test_copycheck.py holds it to that), compiled (``_rotated``) because a
    training image is turned for each new comparison."""
    image = np.ascontiguousarray(train, np.float32)
    out = np.empty((len(ANGLES), *image.shape), np.float32)
    radians = np.deg2rad(np.asarray(ANGLES, np.float64))
    _rotated(image, np.cos(radians), np.sin(radians), out)
    return Turned(out)


@numba.njit(nogil=True)
def _rotated(image: np.ndarray, cos: np.ndarray, sin: np.ndarray, out: np.ndarray) -> None:
    """out[a] = image turned by the angle of (cos[a], sin[a]): each output pixel (y, x) takes
    the bilinear value at (c y + s x, -s y + c x) about the centre, coordinates clamped to the
    image (scipy's affine_transform with its rotate's matrix, order 1, mode "nearest")."""
    h, w = image.shape[0], image.shape[1]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    for a in range(len(cos)):
        c, s = cos[a], sin[a]
        for y in range(h):
            for x in range(w):
                yi = c * (y - cy) + s * (x - cx) + cy
                xi = -s * (y - cy) + c * (x - cx) + cx
                y0, x0 = int(np.floor(yi)), int(np.floor(xi))
                fy, fx = yi - y0, xi - x0
                ya, yb = min(max(y0, 0), h - 1), min(max(y0 + 1, 0), h - 1)
                xa, xb = min(max(x0, 0), w - 1), min(max(x0 + 1, 0), w - 1)
                for ch in range(3):
                    out[a, y, x, ch] = ((1 - fy) * ((1 - fx) * image[ya, xa, ch]
                                                    + fx * image[ya, xb, ch])
                                        + fy * ((1 - fx) * image[yb, xa, ch]
                                                + fx * image[yb, xb, ch]))


def compare(sample: np.ndarray, train: np.ndarray | Turned) -> Match:
    """Both already ``blurred`` and of one size: the best-aligned largest patch difference.

    Each orientation of the training image (``turned``; a bare array is turned here) has its
    centre (a border of the shift radius left out) compared with every shifted window of the
    sample and of its mirror image (``_aligned``)."""
    t = train if isinstance(train, Turned) else turned(train)
    if sample.shape != t.shape:
        raise ValueError(f"sample {sample.shape} and training image {t.shape} differ in size")
    size = t.shape[0]
    r, patch = max(1, size // 32), max(2, size // 8)
    mirrored, k, dy, dx = alignment(sample, t)
    s = sample[:, ::-1] if mirrored else sample
    centre = t.stack[k, r:size - r, r:size - r]
    aligned, (fy, fx) = _half_pixel(s, centre, r, dy, dx)
    matched, gains = colour_matched(centre, aligned)
    diff = np.abs(aligned - matched).mean(axis=2)
    rows, cols = diff.shape[0] // patch, diff.shape[1] // patch
    patches = diff[:rows * patch, :cols * patch].reshape(rows, patch, cols, patch).mean((1, 3))
    return Match(round(float(patches.max()), 3), (dy + fy, dx + fx), mirrored, ANGLES[k], gains)


def alignment(sample: np.ndarray, t: Turned) -> tuple[bool, int, int, int]:
    """(mirrored, orientation, dy, dx): the whole-pixel alignment with the least mean absolute
    difference between the sample's window (of its mirror image when mirrored) shifted by
    (dy, dx), |dy|, |dx| <= r = size / 32, and the orientation's centre (``_aligned``)."""
    size = t.shape[0]
    r = max(1, size // 32)
    both = np.stack([sample, sample[:, ::-1]]).astype(np.float32).reshape(2, size, -1)
    mirrored, k, i, j = _aligned(both, t.stack.reshape(len(t.stack), size, -1), r)
    return bool(mirrored), int(k), int(i) - r, int(j) - r


@numba.njit(nogil=True, fastmath=True)
def _aligned(samples: np.ndarray, stack: np.ndarray, r: int) -> tuple[int, int, int, int]:
    """(mirrored, orientation, i, j): the window at offset (i, j), 0 <= i, j <= 2r, of
    ``samples[mirrored]`` (the sample, then its mirror image; rows of S x 3 values) whose mean
    absolute difference from an orientation's centre (``stack``: rows of S x 3 values, a border
    of r left out) is least; ties go to the first in the order mirrored, orientation, i, j.
    Compiled: 2 x 7 x 25 windows of 60 x 60 x 3 at 64 px, each summed row by row and given up
    as soon as its sum passes the best one's (sums of non-negative terms only grow), which a
    whole-array numpy difference per window cannot do."""
    size, turns = samples.shape[1], stack.shape[0]
    m, n = size - 2 * r, 2 * r + 1
    width = 3 * m
    best = np.inf
    found = (0, 0, 0, 0)
    for mirrored in range(2):
        for k in range(turns):
            for i in range(n):
                for j in range(n):
                    total = 0.0
                    for y in range(m):
                        a = samples[mirrored, i + y, 3 * j:3 * j + width]
                        b = stack[k, r + y, 3 * r:3 * r + width]
                        row = np.float32(0.0)
                        for x in range(width):
                            row += abs(a[x] - b[x])
                        total += float(row)
                        if total >= best:
                            break
                    if total < best:
                        best, found = total, (mirrored, k, i, j)
    return found


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
