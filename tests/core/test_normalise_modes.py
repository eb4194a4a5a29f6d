"""Every colour mode, EXIF orientation and animation becomes the right RGB training image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageCms

from modescope.core.normalise import NormaliseOptions, normalise
from tests.images import encoded

OPTS = NormaliseOptions(size=64)


def pixels(data: bytes, opts: NormaliseOptions = OPTS) -> np.ndarray:
    out = normalise(data, opts)
    assert out.image.mode == "RGB" and out.image.size == (opts.size, opts.size)
    return np.asarray(out.image).astype(int)


def test_transparent_areas_become_white_in_rgba_la_and_palette_images() -> None:
    rgba = Image.new("RGBA", (96, 96), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 96, 48))  # opaque blue top, transparent bottom
    for img in (rgba, rgba.convert("LA")):
        px = pixels(encoded(img, "PNG"))
        assert (px[56:, :] >= 250).all(), img.mode  # bottom: white, not the hidden red
        assert (px[:8, :] < 200).any()
    pal = Image.new("P", (96, 96), 0)
    pal.putpalette([0, 200, 0] + [255, 0, 0] * 255)
    pal.paste(1, (0, 48, 96, 96))
    px = pixels(encoded(pal, "PNG", transparency=1))
    assert (px[56:] >= 250).all() and (abs(px[:8] - [0, 200, 0]) < 3).all()


def test_16_bit_grey_is_scaled_not_clipped() -> None:
    arr = np.full((96, 96), 32768, dtype=np.uint16)
    arr[:48] = 65535
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    px = pixels(encoded(img, "PNG"))
    assert (abs(px[60:] - 128) <= 1).all()  # mid grey stays mid grey (clipping gives 255)
    assert (px[:8] == 255).all()


def test_float_and_bilevel_and_grey_modes_convert() -> None:
    f = Image.fromarray(np.full((80, 80), 0.5, dtype=np.float32), "F")
    assert abs(pixels(encoded(f, "TIFF")).mean() - 127.5) <= 1
    assert pixels(encoded(Image.new("1", (80, 80), 1), "PNG")).min() == 255
    assert (pixels(encoded(Image.new("L", (80, 80), 77), "PNG")) == 77).all()


def test_cmyk_jpeg_becomes_rgb() -> None:
    cyan = Image.new("CMYK", (80, 80), (255, 0, 0, 0))
    px = pixels(encoded(cyan, "JPEG", quality=95))
    assert px[..., 0].mean() < 30 and px[..., 1].mean() > 225 and px[..., 2].mean() > 225


def test_icc_profile_is_applied() -> None:
    """Pixels tagged with a non-sRGB profile (here: LAB-derived) are converted, not copied."""
    img = Image.new("RGB", (80, 80), (120, 120, 120))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    same = pixels(encoded(img, "PNG", icc_profile=srgb))
    assert (abs(same - 120) <= 1).all()
    broken = normalise(encoded(img, "PNG", icc_profile=b"not a profile"), OPTS)
    assert "ICC profile unreadable" in (broken.warning or "")


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (96, 96), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 48, 96))  # stored: left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    px = pixels(encoded(img, "JPEG", quality=95, exif=exif.tobytes()))
    assert px[:24, :, 0].mean() > 200 and px[40:, :, 2].mean() > 200  # red on top


def test_animation_keeps_its_first_frame() -> None:
    frames = [Image.new("RGB", (80, 80), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    px = pixels(data)
    assert px[..., 0].mean() > 200 and px[..., 2].mean() < 50


def test_crop_keeps_the_centre_and_pad_fits_all_on_white() -> None:
    img = Image.new("RGB", (192, 96), (0, 0, 255))
    img.paste((255, 0, 0), (48, 0, 144, 96))  # red centre square, blue sides
    crop = pixels(encoded(img, "PNG"))
    assert crop[..., 0].min() > 240  # the centre square only
    pad = pixels(encoded(img, "PNG"), NormaliseOptions(size=64, fit="pad"))
    assert (pad[:14] == 255).all() and (pad[-14:] == 255).all()  # white bands
    assert pad[32, 2, 2] > 240 and pad[32, 32, 0] > 240  # blue side and red centre kept


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_every_training_size(size: int) -> None:
    out = normalise(encoded(Image.new("RGB", (300, 200), (1, 2, 3)), "PNG"),
                    NormaliseOptions(size=size))
    assert out.image.size == (size, size) and (out.width, out.height) == (300, 200)
