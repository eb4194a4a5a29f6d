"""``modescope demo-data``: a synthetic "mask" data set whose modes, noise and duplicates are known.

Eight mode families cross four silhouettes (what VGG16's block5 sees) with four palette-and-
pattern styles (what block1 sees); each silhouette appears in two styles and each style on two
silhouettes, so only both layers together separate all eight. About 5 % of the files are
off-topic noise, about 1 % exact byte copies and 1 % near duplicates (re-encoded, nudged).
``truth.json`` records every file's mode, noise kind and duplicate origin; the same seed always
writes the same files; ``off-topic.txt`` lists the noise files for ``modescope flag --paths``.

``--modes 16`` draws every silhouette in every style, ``--modes 32`` each of those on a light or a
dark background: many known modes for the mode-count benchmark (bench/modes_bench.py), in the
spirit of stacked MNIST (Metz et al. 2017).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from modescope.core.errors import InputError
from modescope.core.files import atomic_write_bytes

Color = tuple[int, int, int]
SHAPES = ("oval", "shield", "long", "sun")
STYLES: dict[str, tuple[str, list[Color]]] = {
    "earth-stripes": ("stripes", [(122, 70, 38), (186, 124, 64), (228, 190, 140), (86, 48, 24)]),
    "vivid-dots": ("dots", [(214, 38, 38), (250, 200, 28), (36, 158, 72), (28, 28, 28)]),
    "ink-zigzag": ("zigzag", [(236, 234, 226), (22, 22, 22), (128, 128, 124), (236, 234, 226)]),
    "teal-grid": ("grid", [(24, 112, 132), (70, 176, 186), (204, 232, 232), (12, 40, 72)]),
}
MODES: list[tuple[str, str]] = [
    ("oval", "earth-stripes"), ("oval", "vivid-dots"),
    ("shield", "ink-zigzag"), ("shield", "earth-stripes"),
    ("long", "teal-grid"), ("long", "vivid-dots"),
    ("sun", "ink-zigzag"), ("sun", "teal-grid"),
]
# unequal like real collections: the rarest family has under half the commonest's share
MODE_WEIGHTS = np.array([1.4, 1.2, 1.1, 1.0, 1.0, 0.9, 0.8, 0.6])
NOISE_KINDS = ("landscape", "text", "static", "checker", "blobs")
BACKGROUNDS: list[Color] = [(222, 214, 196), (150, 146, 140), (70, 58, 50), (196, 206, 214)]
TONES: dict[str, tuple[int, int]] = {"light": (0, 3), "dark": (1, 2)}  # BACKGROUNDS by tone
MODE_COUNTS = (8, 16, 32)
OFF_TOPIC = "off-topic.txt"  # the noise files, one per line: `modescope flag --paths` reads it
NOISE_SHARE, DUP_SHARE, NEAR_SHARE = 0.05, 0.01, 0.01
MIN_N = 20
SS = 2  # supersampling factor for anti-aliased edges

ProgressFn = Callable[[int, int], None]


def mode_name(shape: str, style: str) -> str:
    return f"{shape}-{style}"


@dataclass(frozen=True)
class Mode:
    shape: str
    style: str
    tone: str | None = None  # "light" or "dark" background; None: any of the four

    @property
    def name(self) -> str:
        return mode_name(self.shape, self.style) + (f"-{self.tone}" if self.tone else "")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"shape": self.shape, "style": self.style,
                               "pattern": STYLES[self.style][0]}
        return out | ({"tone": self.tone} if self.tone else {})


def mode_table(count: int = 8) -> tuple[list[Mode], np.ndarray]:
    """The ``count`` modes and their relative weights: the eight families (default), every
    silhouette x style (16), or those on a light or dark background (32); weights unequal like
    real collections, the rarest under half the commonest."""
    if count not in MODE_COUNTS:
        raise InputError(f"--modes {count}: use one of {', '.join(map(str, MODE_COUNTS))}")
    if count == 8:
        return [Mode(shape, style) for shape, style in MODES], MODE_WEIGHTS
    pairs = [Mode(shape, style) for shape in SHAPES for style in STYLES]
    modes = pairs if count == 16 else [Mode(m.shape, m.style, tone) for m in pairs
                                       for tone in TONES]
    return modes, np.linspace(1.4, 0.6, count)


@dataclass
class Truth:
    seed: int
    n: int
    modes: list[Mode] = field(default_factory=lambda: mode_table()[0])
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        entries = self.files.values()
        return {
            "files": len(self.files),
            "modes": len({e["mode"] for e in entries if e["mode"]}),
            "noise": sum(e["noise"] for e in entries),
            "duplicates": sum(e["duplicate_of"] is not None for e in entries),
            "near_duplicates": sum(e["near_duplicate_of"] is not None for e in entries),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "generator": "modescope demo-data",
            "version": 1,
            "seed": self.seed,
            "n": self.n,
            "modes": {mode.name: mode.as_json() for mode in self.modes},
            "noise_kinds": list(NOISE_KINDS),
            "files": self.files,
        }


def write_demo_data(
    out: Path, *, n: int = 2000, seed: int = 0, modes: int = 8,
    progress: ProgressFn | None = None,
) -> Truth:
    """Write ``n`` files under ``out/<silhouette>/`` and ``out/truth.json``."""
    table, weights = mode_table(modes)
    least = max(MIN_N, 2 * modes)
    if n < least:
        raise InputError(f"--n {n} is too few: {modes} modes need at least {least} files")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty; give a new folder so nothing in it is overwritten")
    plan = _plan(n, seed, weights)
    truth = Truth(seed=seed, n=n, modes=table)
    written: dict[str, bytes] = {}
    for i, item in enumerate(plan):
        rng = np.random.default_rng([seed, i])
        rel, data, entry = _make(item, i, rng, written, truth)
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written[rel] = data
        truth.files[rel] = entry
        if progress:
            progress(i + 1, n)
    payload = json.dumps(truth.as_json(), indent=1, sort_keys=True) + "\n"
    atomic_write_bytes(out / "truth.json", payload.encode("utf-8"))
    off_topic = "".join(f"{rel}\n" for rel, e in truth.files.items() if e["noise"])
    atomic_write_bytes(out / OFF_TOPIC, off_topic.encode("utf-8"))
    return truth


def _plan(n: int, seed: int, weights: np.ndarray) -> list[tuple[str, int]]:
    """What each file will be: ("mode", k), ("noise", k), ("dup", 0) or ("near", 0)."""
    rng = np.random.default_rng([seed, 1 << 30])
    n_noise = max(1, round(n * NOISE_SHARE))
    n_dup = max(1, round(n * DUP_SHARE))
    n_near = max(1, round(n * NEAR_SHARE))
    n_mode = n - n_noise - n_dup - n_near
    modes = list(range(len(weights))) + list(
        rng.choice(len(weights), n_mode - len(weights), p=weights / weights.sum())
    )
    items: list[tuple[str, int]] = [("mode", int(k)) for k in modes]
    items += [("noise", k % len(NOISE_KINDS)) for k in range(n_noise)]
    order = rng.permutation(len(items))
    body = [items[j] for j in order]
    # copies come after their originals: spread them over the second half
    tail: list[tuple[str, int]] = [("dup", 0)] * n_dup + [("near", 0)] * n_near
    for j, extra in enumerate(tail):
        at = len(body) // 2 + (j * (len(body) // 2)) // max(1, len(tail))
        body.insert(at + j, extra)
    return body


def _make(
    item: tuple[str, int], i: int, rng: np.random.Generator, written: dict[str, bytes],
    truth: Truth,
) -> tuple[str, bytes, dict[str, Any]]:
    kind, k = item
    files = truth.files
    entry: dict[str, Any] = {
        "mode": None, "noise": False, "noise_kind": None, "duplicate_of": None,
        "near_duplicate_of": None,
    }
    if kind in ("dup", "near"):
        originals = sorted(
            r for r, e in files.items()
            if e["mode"] and not e["duplicate_of"] and not e["near_duplicate_of"]
        )
        source = originals[int(rng.integers(len(originals)))]
        entry["mode"] = files[source]["mode"]
        label = SHAPES[int(rng.integers(len(SHAPES)))] if kind == "dup" else source.split("/")[0]
        if kind == "dup":
            entry["duplicate_of"] = source
            data, ext = written[source], Path(source).suffix
        else:
            entry["near_duplicate_of"] = source
            data, ext = _nudge(written[source], rng), ".jpg"
        return f"{label}/{i:05d}{ext}", data, entry
    if kind == "noise":
        img = _draw_noise(NOISE_KINDS[k], rng)
        entry.update(noise=True, noise_kind=NOISE_KINDS[k])
        label = SHAPES[int(rng.integers(len(SHAPES)))]
    else:
        mode = truth.modes[k]
        img = _draw_mask(mode.shape, mode.style, rng, mode.tone)
        entry["mode"] = mode.name
        label = mode.shape
    data, ext = _encode(img, rng)
    return f"{label}/{i:05d}{ext}", data, entry


def _encode(img: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if rng.random() < 0.2:
        img.save(buf, format="PNG")
        return buf.getvalue(), ".png"
    img.save(buf, format="JPEG", quality=int(rng.integers(80, 96)))
    return buf.getvalue(), ".jpg"


def _nudge(data: bytes, rng: np.random.Generator) -> bytes:
    """A near duplicate: a 1-3 px crop, a small brightness change and a new JPEG encoding."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    d = int(rng.integers(1, 4))
    img = img.crop((d, d, w - d, h - d)).resize((w, h), Image.Resampling.BICUBIC)
    img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.94, 1.06)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(70, 88)))
    return buf.getvalue()


def _canvas_size(rng: np.random.Generator) -> tuple[int, int]:
    r = rng.random()
    if r < 0.7:
        return 128, 128
    if r < 0.85:
        return (128, 160) if rng.random() < 0.5 else (160, 128)
    return 192, 192


def _background(w: int, h: int, rng: np.random.Generator, tone: str | None = None
                ) -> Image.Image:
    pick = int(rng.integers(len(BACKGROUNDS))) if tone is None else TONES[tone][
        int(rng.integers(2))]
    base = np.array(BACKGROUNDS[pick], dtype=np.float32)
    ramp = np.linspace(-18, 18, h, dtype=np.float32)[:, None, None] * rng.choice([-1.0, 1.0])
    grain = rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    arr = np.clip(base[None, None, :] + ramp + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def _silhouette(shape: str, s: int, rng: np.random.Generator) -> Image.Image:
    """An L-mode mask (255 inside) of the silhouette on an s x s supersampled square."""
    m = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(m)
    j = lambda a: a * s * (1 + rng.uniform(-0.05, 0.05))  # noqa: E731
    c = s / 2
    if shape == "oval":
        d.ellipse((c - j(0.27), c - j(0.40), c + j(0.27), c + j(0.40)), fill=255)
    elif shape == "shield":
        top, bot, half = c - j(0.38), c + j(0.42), j(0.30)
        d.polygon([(c - half, top), (c + half, top), (c + half, c + j(0.08)), (c, bot),
                   (c - half, c + j(0.08))], fill=255)
        d.ellipse((c - half, top - j(0.1), c + half, top + j(0.1)), fill=255)
    elif shape == "long":
        d.rounded_rectangle((c - j(0.16), c - j(0.46), c + j(0.16), c + j(0.46)),
                            radius=int(s * 0.08), fill=255)
    else:  # sun: a disc with rays
        r, rays = j(0.24), int(rng.integers(10, 15))
        for t in range(rays):
            a0 = 2 * math.pi * t / rays
            pts = [(c + r * 0.9 * math.cos(a0 - 0.18), c + r * 0.9 * math.sin(a0 - 0.18)),
                   (c + r * 1.75 * math.cos(a0), c + r * 1.75 * math.sin(a0)),
                   (c + r * 0.9 * math.cos(a0 + 0.18), c + r * 0.9 * math.sin(a0 + 0.18))]
            d.polygon(pts, fill=255)
        d.ellipse((c - r, c - r, c + r, c + r), fill=255)
    return m


def _pattern(style: str, s: int, rng: np.random.Generator) -> Image.Image:
    pattern, palette = STYLES[style]
    img = Image.new("RGB", (s, s), palette[0])
    d = ImageDraw.Draw(img)
    step = int(s * rng.uniform(0.07, 0.10))
    if pattern == "stripes":
        for y in range(0, s, step):
            d.rectangle((0, y, s, y + step // 2), fill=palette[1 + (y // step) % 3])
    elif pattern == "dots":
        r = step * 0.3
        for y in range(step // 2, s, step):
            for x in range(step // 2, s, step):
                col = palette[1 + int(rng.integers(3))]
                d.ellipse((x - r, y - r, x + r, y + r), fill=col)
    elif pattern == "zigzag":
        for y in range(0, s + step, step):
            pts = [(x, y + (step // 2 if (x // step) % 2 else 0)) for x in range(0, s + step, step)]
            d.line(pts, fill=palette[1 + (y // step) % 2], width=max(2, step // 4))
    else:  # grid
        for t in range(0, s, step):
            d.line((t, 0, t, s), fill=palette[1], width=max(2, step // 5))
            d.line((0, t, s, t), fill=palette[3], width=max(2, step // 5))
    return img


def _features(d: ImageDraw.ImageDraw, s: int, dark: Color, light: Color,
              rng: np.random.Generator) -> None:
    """Eyes, nose and mouth, roughly where a mask has them."""
    c = s / 2
    ey, ex = c - s * rng.uniform(0.06, 0.12), s * rng.uniform(0.09, 0.13)
    ew, eh = s * rng.uniform(0.05, 0.08), s * rng.uniform(0.025, 0.045)
    for sx in (-1, 1):
        x = c + sx * ex
        d.ellipse((x - ew - 3 * SS, ey - eh - 3 * SS, x + ew + 3 * SS, ey + eh + 3 * SS),
                  fill=light)
        d.ellipse((x - ew, ey - eh, x + ew, ey + eh), fill=dark)
    d.polygon([(c, ey + s * 0.02), (c - s * 0.03, c + s * 0.1), (c + s * 0.03, c + s * 0.1)],
              fill=dark)
    my, mw = c + s * rng.uniform(0.17, 0.22), s * rng.uniform(0.06, 0.11)
    if rng.random() < 0.5:
        d.rectangle((c - mw, my - s * 0.02, c + mw, my + s * 0.02), fill=dark)
    else:
        d.ellipse((c - mw, my - s * 0.035, c + mw, my + s * 0.035), fill=dark)


def _draw_mask(shape: str, style: str, rng: np.random.Generator, tone: str | None = None
               ) -> Image.Image:
    w, h = _canvas_size(rng)
    side = min(w, h)
    s = side * SS
    mask = _silhouette(shape, s, rng)
    face = _pattern(style, s, rng)
    palette = STYLES[style][1]
    _features(ImageDraw.Draw(face), s, palette[3] if style != "ink-zigzag" else (0, 0, 0),
              palette[0], rng)
    angle = float(rng.uniform(-8, 8))
    scale = float(rng.uniform(0.85, 1.05))
    mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC)
    face = face.rotate(angle, resample=Image.Resampling.BICUBIC)
    small = (round(side * scale), round(side * scale))
    mask = mask.resize(small, Image.Resampling.LANCZOS)
    face = face.resize(small, Image.Resampling.LANCZOS)
    img = _background(w, h, rng, tone)
    dx = int((w - small[0]) / 2 + rng.uniform(-0.05, 0.05) * side)
    dy = int((h - small[1]) / 2 + rng.uniform(-0.05, 0.05) * side)
    img.paste(face, (dx, dy), mask)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.8))))
    return img


def _draw_noise(kind: str, rng: np.random.Generator) -> Image.Image:
    w, h = _canvas_size(rng)
    if kind == "static":
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    img = Image.new("RGB", (w, h), (250, 250, 248))
    d = ImageDraw.Draw(img)
    if kind == "landscape":
        sky = (int(rng.integers(90, 160)), int(rng.integers(150, 210)), 235)
        horizon = int(h * rng.uniform(0.45, 0.7))
        d.rectangle((0, 0, w, horizon), fill=sky)
        d.rectangle((0, horizon, w, h), fill=(int(rng.integers(40, 90)), 130, 50))
        r = int(w * 0.08)
        x = int(rng.integers(r, w - r))
        d.ellipse((x - r, 10, x + r, 10 + 2 * r), fill=(250, 220, 90))
    elif kind == "text":
        letters = "abcdefghijklmnopqrstuvwxyz     "
        for y in range(6, h - 10, 12):
            line = "".join(letters[int(rng.integers(len(letters)))] for _ in range(w // 6))
            d.text((4, y), line, fill=(20, 20, 20))
    elif kind == "checker":
        cell = int(rng.integers(8, 24))
        a, b = (tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(2))
        for y in range(0, h, cell):
            for x in range(0, w, cell):
                fill = a if (x // cell + y // cell) % 2 else b
                d.rectangle((x, y, x + cell, y + cell), fill=fill)
    else:  # blobs: abstract colour fields
        for _ in range(int(rng.integers(6, 14))):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            r = int(rng.integers(8, 40))
            col = tuple(int(v) for v in rng.integers(0, 256, 3))
            d.ellipse((x - r, y - r, x + r, y + r), fill=col)
    return img
