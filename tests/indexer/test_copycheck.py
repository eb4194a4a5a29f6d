"""The pixel check's compiled parts against the plain computations they replace (house style
6: brute force on seeded data): the turned training image against scipy's rotate, the chosen
alignment against a search of every window in numpy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import rotate

from modescope.indexer import copycheck


def _image(seed: int, size: int) -> np.ndarray:
    """Blobs of colour on a ground, blurred as the check takes them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    img = np.full((size, size, 3), rng.uniform(0, 255, 3), np.float32)
    for _ in range(6):
        cy, cx, rad = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < rad ** 2] = rng.uniform(0, 255, 3)
    return copycheck.blurred(img)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_turned_is_scipys_rotation(size: int) -> None:
    image = _image(size, size)
    t = copycheck.turned(image)
    assert t.stack.dtype == np.float32 and t.shape == image.shape
    for angle, got in zip(copycheck.ANGLES, t.stack, strict=True):
        want = image if angle == 0 else rotate(image, angle, axes=(1, 0), reshape=False,
                                               order=1, mode="nearest")
        np.testing.assert_allclose(got, want, atol=1e-3)


def _every_window(sample: np.ndarray, t: copycheck.Turned) -> np.ndarray:
    """Mean absolute difference of every (mirrored, orientation, i, j) window, in numpy."""
    size = sample.shape[0]
    r = max(1, size // 32)
    m, n = size - 2 * r, 2 * r + 1
    out = np.empty((2, len(t.stack), n, n))
    for mirrored, s in enumerate((sample, sample[:, ::-1])):
        for k, image in enumerate(t.stack):
            centre = image[r:size - r, r:size - r].astype(np.float64)
            for i in range(n):
                for j in range(n):
                    out[mirrored, k, i, j] = np.abs(s[i:i + m, j:j + m] - centre).mean()
    return out


@pytest.mark.parametrize("size", [32, 64])
def test_chosen_alignment_has_the_least_difference_of_every_window(size: int) -> None:
    """Unrelated pairs and turned, shifted, mirrored copies: the alignment the compiled search
    picks is one whose mean difference is the least of all 2 x 7 x (2r + 1)^2 windows (to
    float32 rounding: near-ties may go either way)."""
    r = max(1, size // 32)
    pairs = [(_image(s, size), _image(s + 100, size)) for s in range(6)]
    for s in range(6):
        src = _image(200 + s, size)
        copy = np.roll(rotate(src, (-2, 1, 3)[s % 3], axes=(1, 0), reshape=False, order=1,
                              mode="nearest"), (s % 3 - 1, 1 - s % 2), axis=(0, 1))
        pairs.append((np.ascontiguousarray(copy[:, ::-1]) if s % 2 else copy, src))
    for sample, train in pairs:
        t = copycheck.turned(train)
        means = _every_window(sample, t)
        mirrored, k, dy, dx = copycheck.alignment(sample, t)
        assert means[int(mirrored), k, dy + r, dx + r] <= means.min() * (1 + 1e-5) + 1e-4
        assert copycheck.compare(sample, t).mirrored == mirrored
