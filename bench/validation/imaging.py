"""Image transforms the harness applies: preparing set images, jitter, blur.

Every transform takes its randomness from the caller's seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

WHITE = (255, 255, 255)
SET_SIZE = 128  # px: the side of every prepared set image (the workspace trains smaller)


def flatten(img: Image.Image) -> Image.Image:
    """RGB on white: transparent icon, emoji and clip-art backgrounds become white."""
    rgba = img.convert("RGBA")
    out = Image.new("RGB", rgba.size, WHITE)
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def square(img: Image.Image, size: int = SET_SIZE) -> Image.Image:
    """Pad to a square on white (nothing is cropped away), then resize to ``size``."""
    w, h = img.size
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def prepare(src: Path, dst: Path) -> None:
    """A set image: the source flattened on white, padded square, ``SET_SIZE`` px, PNG."""
    with Image.open(src) as img:
        img.load()
        out = square(flatten(img))
    dst.parent.mkdir(parents=True, exist_ok=True)
    out.save(dst)


def background(img: Image.Image) -> tuple[int, int, int]:
    """The image's border colour (median of its outermost pixels): what a generator paints
    where a turn or a shift uncovers the canvas. White for the prepared icon, emoji and clip-art
    images; the demo's masks sit on dark grounds, where white corners would be a difference no
    generator makes."""
    a = np.asarray(img.convert("RGB"))
    edge = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    r, g, b = (int(v) for v in np.median(edge, axis=0))
    return r, g, b


def _rotate(img: Image.Image, degrees: float) -> Image.Image:
    return img.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=background(img))


def _shift(img: Image.Image, dx: int, dy: int) -> Image.Image:
    return img.transform(img.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy),
                         fillcolor=background(img))


def copy_jitter(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A GAN's copy of a training image, as the issue states it: colour x1.1 and a 2-degree
    rotation (direction drawn)."""
    out = ImageEnhance.Color(img.convert("RGB")).enhance(1.1)
    return _rotate(out, 2.0 if rng.random() < 0.5 else -2.0)


def draw_jitter(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One draw of a collapsed generator around a real image: colour x[0.9, 1.1], rotation
    within +-3 degrees, a shift within +-1/32 of the side."""
    out = ImageEnhance.Color(img.convert("RGB")).enhance(float(rng.uniform(0.9, 1.1)))
    out = _rotate(out, float(rng.uniform(-3.0, 3.0)))
    reach = max(1, img.size[0] // 32)
    dx, dy = (int(v) for v in rng.integers(-reach, reach + 1, 2))
    return _shift(out, dx, dy)


def soften(img: Image.Image) -> Image.Image:
    """A soft (blurry) generator's version of a real image: Gaussian blur, radius 1/32 of the
    side (2 px at 64 px)."""
    rgb = img.convert("RGB")
    return rgb.filter(ImageFilter.GaussianBlur(radius=max(1.0, rgb.size[0] / 32)))


def fit(img: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square and resize (as ingest's default ``--fit crop`` does)."""
    return ImageOps.fit(img.convert("RGB"), (size, size), Image.Resampling.LANCZOS)
