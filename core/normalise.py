"""Decode one source file and normalise it to an RGB square at the training size.

Rules (docs/workspace.md has the table):
- EXIF orientation is applied; animations keep their first frame.
- Every colour mode becomes 8-bit sRGB: ICC profiles are honoured, 16-bit and float greys are
  scaled to 0..255, transparent areas are composited on white.
- ``crop`` resizes the shorter side to the size and cuts the centre; ``pad`` resizes the longer
  side and centres the image on white.
- Rejected (never raised past the caller): empty, undecodable or truncated files, images over the
  pixel limit (decompression bombs), images whose shorter side is under a quarter of the training
  size, and aspect ratios over ``max_aspect``. Images between a quarter and the full size are
  upscaled and accepted with a warning.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from modescope.core.errors import InputError
from modescope.core.workspace import Fit

DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485  # Pillow's own default
DEFAULT_MAX_ASPECT = 4.0
WHITE = (255, 255, 255)
_SRGB = ImageCms.createProfile("sRGB")
# white (or fully transparent) padding in each mode fit_square sees
_PAD: dict[str, int | tuple[int, ...]] = {
    "L": 255, "LA": (255, 0), "RGB": WHITE, "RGBA": (255, 255, 255, 0), "CMYK": (0, 0, 0, 0),
}


class Rejected(InputError):
    """The file cannot become a training image; ``str(exc)`` is the reason shown to users
    (ingest records it against the file and carries on)."""


@dataclass(frozen=True)
class NormaliseOptions:
    size: int
    fit: Fit = "crop"
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_aspect: float = DEFAULT_MAX_ASPECT


@dataclass(frozen=True)
class Normalised:
    image: Image.Image  # RGB, size x size
    width: int  # source size after EXIF orientation
    height: int
    format: str | None
    mode: str
    warning: str | None


def normalise(data: bytes, opts: NormaliseOptions) -> Normalised:
    """Turn a file's bytes into the training image, or raise ``Rejected`` with the reason."""
    if not data:
        raise Rejected("empty file: 0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = _open_unchecked(data)
    except UnidentifiedImageError:
        raise Rejected(
            "not an image: the content is no image format Pillow can read "
            "(is it a renamed text or document file?)"
        ) from None
    except Exception as exc:  # Pillow raises many types for broken headers
        raise Rejected(f"unreadable image header: {exc}") from None
    fmt, src_mode = img.format, img.mode
    w, h = img.size
    _check_geometry(w, h, opts)
    _draft(img, w, h, opts)
    try:
        img.seek(0)
        img.load()
    except Exception as exc:
        raise Rejected(f"truncated or corrupt image data: {exc}") from None
    notes: list[str] = []
    icc = img.info.get("icc_profile")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception as exc:
        notes.append(f"EXIF orientation unreadable ({exc}); used the image as stored")
    # resize first, convert colours after: ICC transforms then touch size^2 pixels, not 12 MP
    out = to_rgb(fit_square(_resizable(img), opts.size, opts.fit), icc, notes)
    short = min(w, h) if opts.fit == "crop" else max(w, h)
    if short < opts.size:
        notes.append(f"upscaled {opts.size / short:.1f}x from {w}x{h} px")
    return Normalised(
        image=out, width=img.width, height=img.height, format=fmt, mode=src_mode,
        warning="; ".join(notes) or None,
    )


def _open_unchecked(data: bytes) -> Image.Image:
    """Open without Pillow's process-wide pixel limit: ``_check_geometry`` applies ours."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        return Image.open(io.BytesIO(data))
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _check_geometry(w: int, h: int, opts: NormaliseOptions) -> None:
    if w * h > opts.max_pixels:
        raise Rejected(
            f"decompression bomb: {w}x{h} = {w * h:,} pixels is over the limit of "
            f"{opts.max_pixels:,}; if the image is genuine, raise --max-pixels"
        )
    short, long_ = min(w, h), max(w, h)
    if short * 4 < opts.size:
        raise Rejected(
            f"too small: {w}x{h} px; the shorter side must be at least "
            f"{math.ceil(opts.size / 4)} px to train at {opts.size} px "
            "(more than 4x upscaling only adds blur)"
        )
    if long_ > opts.max_aspect * short:
        raise Rejected(
            f"extreme aspect ratio: {w}x{h} px is {long_ / short:.1f}:1, over the limit of "
            f"{opts.max_aspect:g}:1; raise --max-aspect to accept it"
        )


def _draft(img: Image.Image, w: int, h: int, opts: NormaliseOptions) -> None:
    """Let JPEG decode at 1/2, 1/4 or 1/8 scale when that still covers the target size.

    A 12k x 9k photo then decodes to ~1.5k x 1.1k instead of 324 MB of pixels.
    """
    scale = opts.size / (min(w, h) if opts.fit == "crop" else max(w, h))
    if scale < 0.5:
        img.draft(None, (math.ceil(w * scale * 2), math.ceil(h * scale * 2)))


def _resizable(img: Image.Image) -> Image.Image:
    """A mode that resamples correctly: palettes expand, deep and float greys become 8-bit."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_to_uint8(np.asarray(img)), "L")
    if mode in ("P", "PA"):
        return img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    if mode in ("L", "RGB") and "transparency" in img.info:
        return img.convert("LA" if mode == "L" else "RGBA")
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return img
    try:
        return img.convert("RGB")
    except ValueError:
        raise Rejected(f"unsupported colour mode {mode}: convert the file to RGB") from None


def to_rgb(img: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    """L, LA, RGB, RGBA or CMYK -> 8-bit sRGB, honouring an ICC profile; alpha on white."""
    alpha = img.getchannel("A") if img.mode in ("LA", "RGBA") else None
    base = img.convert("RGB" if img.mode == "RGBA" else "L") if alpha is not None else img
    if icc and base.mode in ("RGB", "CMYK"):
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(base, src, _SRGB, outputMode="RGB")
            assert converted is not None
            base = converted
        except Exception:
            notes.append("embedded ICC profile unreadable; colours converted without it")
    rgb = base.convert("RGB")
    if alpha is None:
        return rgb
    white = Image.new("RGB", rgb.size, WHITE)
    return Image.composite(rgb, white, alpha)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale 16-bit, 32-bit or float greys to 0..255."""
    a = arr.astype(np.float64)
    if arr.dtype.kind == "f":
        hi = 1.0 if a.size and np.nanmax(a) <= 1.0 else 255.0
        a = np.nan_to_num(a) * (255.0 / hi)
    else:
        peak = a.max() if a.size else 0
        if peak > 255:  # 16-bit data (or wider): map the type's range onto 8 bits
            full = 65535.0 if peak <= 65535 else float(peak)
            a = a * (255.0 / full)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def fit_square(img: Image.Image, size: int, fit: Fit) -> Image.Image:
    """Centre-crop or pad to a square of ``size`` px with a high-quality, memory-light resize."""
    w, h = img.size
    if fit == "crop":
        side = min(w, h)
        left, top = (w - side) / 2, (h - side) / 2
        return img.resize(
            (size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side),
            reducing_gap=3.0,
        )
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = img.resize((nw, nh), Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new(img.mode, (size, size), _PAD[img.mode])
    canvas.paste(small, ((size - nw) // 2, (size - nh) // 2))
    return canvas


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # 2x faster than 6, files ~9 % larger
    return buf.getvalue()
