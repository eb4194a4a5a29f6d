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
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from modescope.indexer.compiled import compiled

ANGLES = (0, -1, 1, -2, 2, -3, 3)  # degrees the training image is turned by (0 first: ties)
GAIN_RANGE = (2 / 3, 3 / 2)  # per-channel colour gains the comparison may apply
_COS, _SIN = np.cos(np.deg2rad(ANGLES)), np.sin(np.deg2rad(ANGLES))  # the turns, for _rotated


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
    """The image blurred by a Gaussian of sigma = size / 32 px on both axes: the geometry of
    ``scipy.ndimage.gaussian_filter(image, (sigma, sigma, 0))`` (its kernel of radius
    4 sigma, mode "reflect"; tests/indexer/test_copycheck.py holds it to that), compiled
    (``_blurred``) because each comparison blurs a new training image (scipy took 0.12 ms at
    64 px, holding the GIL the comparisons' threads share; compiled 0.04 ms)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
        raise ValueError(f"expected a square (S, S, 3) image, got shape {image.shape}")
    out = np.empty(image.shape, np.float32)
    _blurred(np.ascontiguousarray(image, np.float32), _blur_weights(image.shape[0]), out)
    return out


@lru_cache(maxsize=16)
def _blur_weights(size: int) -> np.ndarray:
    """The Gaussian's taps for images of ``size`` px: sigma = size / 32, radius 4 sigma."""
    sigma = size / 32
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    weights /= weights.sum()
    weights.flags.writeable = False
    return weights


@compiled(fastmath=True)
def _blurred(image: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
    """``out`` = ``image`` correlated with ``weights`` down its rows, then along them (sums in
    float64, float32 between the passes, as scipy's correlate1d), edges mirrored about the
    outer pixels' edges (scipy's "reflect": d c b a | a b c d | d c b a)."""
    n, r = image.shape[0], len(weights) // 2
    width = 3 * n  # a row's values (x, then channel)
    mirror = np.empty(n + 2 * r, np.int64)  # padded position -> pixel
    for p in range(n + 2 * r):
        i = p - r
        while i < 0 or i >= n:
            i = -i - 1 if i < 0 else 2 * n - i - 1
        mirror[p] = i
    flat = image.reshape(n, width)
    rows = np.empty((n, width), np.float32)
    line = np.empty(width)  # one output row's sums, in the order of the taps
    for y in range(n):
        line[:] = 0.0
        for t in range(2 * r + 1):
            source, w = flat[mirror[y + t]], weights[t]
            for i in range(width):
                line[i] += w * source[i]
        for i in range(width):
            rows[y, i] = line[i]
    padded = np.empty(width + 6 * r, np.float32)  # a row with its mirrored edges
    result = out.reshape(n, width)
    for y in range(n):
        for p in range(n + 2 * r):
            for c in range(3):
                padded[3 * p + c] = rows[y, 3 * mirror[p] + c]
        line[:] = 0.0
        for t in range(2 * r + 1):
            w = weights[t]
            for i in range(width):
                line[i] += w * padded[3 * t + i]
        for i in range(width):
            result[y, i] = line[i]


def turned(train: np.ndarray) -> Turned:
    """A ``blurred`` training image turned by each of ``ANGLES`` about its centre (bilinear;
    the corners it uncovers take the nearest edge's colour): the geometry of
    ``scipy.ndimage.rotate(train, angle, axes=(1, 0), reshape=False, order=1, mode="nearest")``
    (tests/indexer/test_copycheck.py holds it to that), compiled (``_rotated``) because a
    training image is turned for each new comparison."""
    image = np.ascontiguousarray(train, np.float32)
    out = np.empty((len(ANGLES), *image.shape), np.float32)
    _rotated(image, _COS, _SIN, out)
    return Turned(out)


@compiled(fastmath=True)
def _rotated(image: np.ndarray, cos: np.ndarray, sin: np.ndarray, out: np.ndarray) -> None:
    """out[a] = image turned by the angle of (cos[a], sin[a]): each output pixel (y, x) takes
    the bilinear value at (c y + s x, -s y + c x) about the centre, coordinates clamped to the
    image (scipy's affine_transform with its rotate's matrix, order 1, mode "nearest")."""
    h, w = image.shape[0], image.shape[1]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    for a in range(len(cos)):
        c, s = cos[a], sin[a]
        if c == 1.0 and s == 0.0:  # unturned
            out[a] = image
            continue
        for y in range(h):
            by = c * (y - cy) + cy - s * cx  # the row's source coordinates: by + s x, bx + c x
            bx = -s * (y - cy) + cx - c * cx
            for x in range(w):
                yi, xi = by + s * x, bx + c * x
                # floor, for coordinates above -h (a turn of a few degrees keeps them there)
                y0, x0 = int(yi + h) - h, int(xi + w) - w
                fy, fx = yi - y0, xi - x0
                ya, yb = min(max(y0, 0), h - 1), min(max(y0 + 1, 0), h - 1)
                xa, xb = min(max(x0, 0), w - 1), min(max(x0 + 1, 0), w - 1)
                w00, w01 = (1 - fy) * (1 - fx), (1 - fy) * fx
                w10, w11 = fy * (1 - fx), fy * fx
                for ch in range(3):
                    out[a, y, x, ch] = (w00 * image[ya, xa, ch] + w01 * image[ya, xb, ch]
                                        + w10 * image[yb, xa, ch] + w11 * image[yb, xb, ch])


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
    both = _both(sample)
    mirrored, k, dy, dx = alignment(sample, t, both)
    s = both[int(mirrored)]
    centre = np.ascontiguousarray(t.stack[k, r:size - r, r:size - r])
    score, sy, sx, gains = _refined(s, centre, r, dy, dx, patch, *GAIN_RANGE)
    g = [round(float(v), 3) for v in gains]
    return Match(round(float(score), 3), (dy + sy / 2, dx + sx / 2), mirrored, ANGLES[k],
                 (g[0], g[1], g[2]))


def alignment(sample: np.ndarray, t: Turned, both: np.ndarray | None = None
              ) -> tuple[bool, int, int, int]:
    """(mirrored, orientation, dy, dx): the whole-pixel alignment with the least mean absolute
    difference between the sample's window (of its mirror image when mirrored) shifted by
    (dy, dx), |dy|, |dx| <= r = size / 32, and the orientation's centre (``_aligned``).
    ``both``: the sample and its mirror image (``_both``) where the caller has them."""
    size = t.shape[0]
    r = max(1, size // 32)
    pair = (_both(sample) if both is None else both).reshape(2, size, -1)
    mirrored, k, i, j = _aligned(pair, t.stack.reshape(len(t.stack), size, -1), r)
    return bool(mirrored), int(k), int(i) - r, int(j) - r


def _both(sample: np.ndarray) -> np.ndarray:
    """(2, S, S, 3) float32: the sample, then its mirror image."""
    both = np.empty((2, *sample.shape), np.float32)
    both[0], both[1] = sample, sample[:, ::-1]
    return both


@compiled(fastmath=True)
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


@compiled()
def _refined(s: np.ndarray, centre: np.ndarray, r: int, dy: int, dx: int, patch: int,
             low: float, high: float) -> tuple[float, int, int, np.ndarray]:
    """(score, sy, sx, gains) of the sample ``s`` (mirrored already where the alignment said
    so) against the turned training image's ``centre`` at the whole-pixel shift (dy, dx):

    1. the shift refined by half a pixel on each axis (sy, sx in -1, 0, 1: half a pixel
       towards the neighbouring window, bilinear: the mean of the two or four windows) where
       that lowers the mean absolute difference: a generator's copy sits off the pixel grid
       as often as on it, and at the training size a half-pixel offset of a sharp edge leaves
       a difference the blur alone does not hide (ties keep the whole pixel, then the first
       in the order of sy, then sx);
    2. the centre's colours mapped, per channel, by the gain (within ``low``, ``high``) and
       offset that bring them closest to the window's in the least-squares sense, clipped to
       0-255;
    3. the score: the largest mean over ``patch`` x ``patch`` patches of the window's mean
       absolute difference (over RGB) from the mapped centre.

    Compiled (0.12 ms at 64 px against 0.49 ms in numpy, whose many small calls also held
    the GIL the comparisons' threads share); tests/indexer/test_copycheck.py holds it to the
    plain numpy computation."""
    m = centre.shape[0]
    y0, x0 = r + dy, r + dx
    aligned = np.empty((m, m, 3), np.float32)
    trial = np.empty((m, m, 3), np.float32)
    _window(s, y0, x0, 0, 0, aligned)
    best, best_sy, best_sx = _difference(aligned, centre), 0, 0
    for sy in range(-1, 2):
        for sx in range(-1, 2):
            if (sy == 0 and sx == 0) or abs(dy + sy) > r or abs(dx + sx) > r:
                continue
            _window(s, y0, x0, sy, sx, trial)
            d = _difference(trial, centre)
            if d < best:
                best, best_sy, best_sx = d, sy, sx
    if best_sy != 0 or best_sx != 0:
        _window(s, y0, x0, best_sy, best_sx, aligned)
    n = m * m
    gains = np.empty(3)
    diff = np.zeros((m, m))
    for c in range(3):
        ma, mb = 0.0, 0.0
        for y in range(m):
            for x in range(m):
                ma += centre[y, x, c]
                mb += aligned[y, x, c]
        ma, mb = ma / n, mb / n
        var, cov = 0.0, 0.0
        for y in range(m):
            for x in range(m):
                da = centre[y, x, c] - ma
                var += da * da
                cov += da * (aligned[y, x, c] - mb)
        var, cov = var / n, cov / n
        gain = min(max(cov / max(var, 1e-6) if var > 1e-6 else 1.0, low), high)
        gains[c] = gain
        for y in range(m):
            for x in range(m):
                mapped = np.float32(min(max((centre[y, x, c] - ma) * gain + mb, 0.0), 255.0))
                diff[y, x] += abs(aligned[y, x, c] - mapped)
    score = 0.0
    for py in range(m // patch):
        for px in range(m // patch):
            total = 0.0
            for y in range(py * patch, (py + 1) * patch):
                for x in range(px * patch, (px + 1) * patch):
                    total += diff[y, x]
            score = max(score, total / (3 * patch * patch))
    return score, best_sy, best_sx, gains


@compiled()
def _window(s: np.ndarray, y0: int, x0: int, sy: int, sx: int, out: np.ndarray) -> None:
    """``out`` = the sample's window at (y0, x0) averaged with the ones moved by ``sy`` and
    ``sx`` pixels (half a pixel towards them, bilinear), summed in numpy's order of a mean over
    the windows (float32)."""
    half, quarter = np.float32(0.5), np.float32(0.25)
    y1, x1 = y0 + sy, x0 + sx
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            for c in range(3):
                a = s[y0 + y, x0 + x, c]
                if sy == 0 and sx == 0:
                    out[y, x, c] = a
                elif sy == 0:
                    out[y, x, c] = (a + s[y0 + y, x1 + x, c]) * half
                elif sx == 0:
                    out[y, x, c] = (a + s[y1 + y, x0 + x, c]) * half
                else:
                    out[y, x, c] = (((a + s[y0 + y, x1 + x, c]) + s[y1 + y, x0 + x, c])
                                    + s[y1 + y, x1 + x, c]) * quarter


@compiled()
def _difference(a: np.ndarray, b: np.ndarray) -> float:
    """The summed absolute difference of two (m, m, 3) arrays (float64 sum)."""
    total = 0.0
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            for c in range(3):
                total += abs(a[y, x, c] - b[y, x, c])
    return total
