"""What both anchors accept as training images: the check their input pipelines share."""

from __future__ import annotations

import numpy as np

SIZE = 64  # both examples train at 64 x 64 px


def check_images(images: np.ndarray, batch_size: int, size: int = SIZE) -> None:
    """``images`` must be N x size x size x 3 uint8 with at least one full batch."""
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, not {images.dtype}")
    if images.ndim != 4 or images.shape[1:] != (size, size, 3):
        raise ValueError(f"images must be N x {size} x {size} x 3, not {images.shape}")
    if not 0 < batch_size <= len(images):
        raise ValueError(f"batch size {batch_size} needs 1..{len(images)} images")
