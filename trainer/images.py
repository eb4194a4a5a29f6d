"""Model outputs as pixels and pictures: ``to_pixels`` (model space -> uint8), ``image_grid``
(a row-major grid of images), ``png_bytes`` (what ``RunFolder.write_png`` takes) and
``sample_images`` (a generator's images for given latent vectors)."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from PIL import Image


def to_pixels(x: Any) -> np.ndarray:
    """Model space [-1, 1] -> uint8 pixels (the inverse of the input pipeline's scaling)."""
    return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, cols: int | None = None) -> Image.Image:
    """uint8 (N, H, W, 3) -> one grid image, row-major."""
    n, h, w, _ = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = Image.new("RGB", (cols * w, rows * h), (255, 255, 255))
    for i, img in enumerate(images):
        grid.paste(Image.fromarray(img), ((i % cols) * w, (i // cols) * h))
    return grid


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sample_images(g: Any, z: np.ndarray, batch: int = 256) -> np.ndarray:
    """uint8 images of generator ``g`` for latent vectors ``z`` (N, latent_dim)."""
    parts = [to_pixels(g(z[i:i + batch], training=False)) for i in range(0, len(z), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 0, 0, 3), np.uint8)
