"""The pixel check's compiled parts against the plain computations they replace (house style
6: brute force on seeded data): the turned training image against scipy's rotate, the chosen
alignment against a search of every window in numpy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, rotate

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


@pytest.mark.parametrize("size", [8, 32, 64, 128])
def test_blurred_is_scipys_gaussian_filter(size: int) -> None:
    image = np.random.default_rng(size).uniform(0, 255, (size, size, 3)).astype(np.float32)
    sigma = size / 32
    want = gaussian_filter(image, (sigma, sigma, 0))  # radius 4 sigma, mode "reflect"
    got = copycheck.blurred(image)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-3)
    with pytest.raises(ValueError, match="square"):
        copycheck.blurred(image[:, :-1])


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


def colour_matched(train: np.ndarray, sample: np.ndarray
                   ) -> tuple[np.ndarray, tuple[float, ...]]:
    """The colour map in numpy: ``train``'s channels each mapped by the gain (within
    GAIN_RANGE) and offset closest to ``sample``'s (least squares), clipped to 0-255."""
    a = train.reshape(-1, 3).astype(np.float64)
    b = sample.reshape(-1, 3).astype(np.float64)
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    var = ((a - ma) ** 2).mean(axis=0)
    cov = ((a - ma) * (b - mb)).mean(axis=0)
    gain = np.where(var > 1e-6, cov / np.maximum(var, 1e-6), 1.0).clip(*copycheck.GAIN_RANGE)
    out = ((a - ma) * gain + mb).clip(0.0, 255.0).reshape(train.shape).astype(np.float32)
    return out, tuple(round(float(v), 3) for v in gain)


def _plain_refinement(s: np.ndarray, centre: np.ndarray, r: int, dy: int, dx: int, patch: int
                      ) -> tuple[float, tuple[float, float], tuple[float, ...]]:
    """What the compiled ``_refined`` computes, in numpy: the half-pixel refinement (the mean
    of neighbouring windows where it lowers the mean difference), the colour map, the largest
    patch difference."""
    size = s.shape[0]

    def window(a: int, b: int) -> np.ndarray:
        return s[r + a:size - r + a, r + b:size - r + b]

    best = window(dy, dx)
    best_mean, offset = float(np.abs(best - centre).astype(np.float64).mean()), (0.0, 0.0)
    for fy in (-0.5, 0.0, 0.5):
        for fx in (-0.5, 0.0, 0.5):
            ys = (dy,) if fy == 0 else (dy, dy + int(np.sign(fy)))
            xs = (dx,) if fx == 0 else (dx, dx + int(np.sign(fx)))
            if (fy, fx) == (0.0, 0.0) or max(map(abs, ys + xs)) > r:
                continue
            w = np.mean([window(a, b) for a in ys for b in xs], axis=0)
            mean = float(np.abs(w - centre).astype(np.float64).mean())
            if mean < best_mean:
                best, best_mean, offset = w, mean, (fy, fx)
    matched, gains = colour_matched(centre, best)
    diff = np.abs(best - matched).mean(axis=2)
    rows = diff.shape[0] // patch
    patches = diff[:rows * patch, :rows * patch].reshape(rows, patch, rows, patch).mean((1, 3))
    return float(patches.max()), offset, gains


@pytest.mark.parametrize("size", [32, 64, 128])
def test_compiled_refinement_equals_numpys(size: int) -> None:
    """Unrelated pairs, and copies moved by whole and half pixels, recoloured (a gain inside
    and one beyond GAIN_RANGE), mirrored: the compiled refinement, colour map and patch score
    give numpy's shift, gains and score (to float rounding)."""
    from scipy.ndimage import shift as moved

    r, patch = max(1, size // 32), max(2, size // 8)
    pairs = [(_image(s, size), _image(s + 50, size)) for s in range(4)]
    for s in range(6):
        src = _image(300 + s, size)
        copy = moved(src, ((0.5, -1.5, 1.0)[s % 3], (-0.5, 0.5, 0.0)[s % 2], 0), order=1,
                     mode="nearest")
        copy = np.clip((copy - 128) * (0.9, 2.0, 0.5)[s % 3] + 128 + 7 * s, 0, 255)
        pairs.append(((copy[:, ::-1] if s % 2 else copy).astype(np.float32), src))
    refined = 0
    for sample, train in pairs:
        t = copycheck.turned(train)
        mirrored, k, dy, dx = copycheck.alignment(sample, t)
        s = np.ascontiguousarray(sample[:, ::-1] if mirrored else sample)
        centre = t.stack[k, r:size - r, r:size - r]
        score, offset, gains = _plain_refinement(s, centre, r, dy, dx, patch)
        got = copycheck.compare(sample, t)
        assert got.shift == (dy + offset[0], dx + offset[1])
        assert got.score == pytest.approx(score, abs=2e-3)
        np.testing.assert_allclose(got.gains, gains, atol=1e-3)
        refined += offset != (0.0, 0.0)
    assert refined >= 3  # the half-pixel steps were exercised


def test_kernels_compile_where_numba_cannot_keep_them_on_disk(tmp_path: Path) -> None:
    """No folder numba may write its cache to (here: no locator applies outside IPython):
    numba raises as the kernels are decorated, and they are compiled in the process instead."""
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"}
    code = ("import numpy as np\n"
            "from modescope.indexer import copycheck as c\n"
            "a = c.blurred(np.random.default_rng(0).uniform(0, 255, (32, 32, 3)))\n"
            "assert c.compare(a, a).score < 1e-3\n"
            "assert c._refined._cache.__class__.__name__ == 'NullCache'\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
