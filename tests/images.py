"""Real image files for tests, drawn with Pillow (no mocks)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw


def picture(w: int = 96, h: int = 96, color: tuple[int, int, int] = (200, 60, 40),
            seed: int = 0) -> Image.Image:
    """A small RGB picture with a distinct pattern per seed (so contents differ)."""
    img = Image.new("RGB", (w, h), color)
    d = ImageDraw.Draw(img)
    for k in range(6):
        x = (seed * 37 + k * 53) % max(1, w - 10)
        y = (seed * 17 + k * 29) % max(1, h - 10)
        d.ellipse((x, y, x + 10 + k, y + 10 + k), fill=((seed * 40 + k * 30) % 256, 120, 200))
    return img


def save(img: Image.Image, path: Path, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def encoded(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG file that claims ``width`` x ``height``: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))
