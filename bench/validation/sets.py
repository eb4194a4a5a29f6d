"""The image sets: real ones from Debian packages, grouped the way their makers grouped them, and
the synthetic demo set.

Each set is written once to ``WORK/sets/NAME/``: ``test/GROUP/*.png`` (never ingested: the
honest generator and the sources of the collapsed and soft ones), ``ingest/GROUP/*.png`` (the
workspace's images, about 5 % of them injected off-topic images) and ``manifest.json`` (every
file's group, which ingested files are off-topic). Fixed seeds: the same packages give the same
files. Images of one family (an emoji and its skin tones) stay on one side of the split.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .imaging import flatten, prepare, square

TEST_SHARE = 0.25  # of each group's images (whole families), never ingested
OFFTOPIC_SHARE = 0.05  # of the ingested images
MAX_PIXELS = 16_000_000
GROUP_CAP = 300  # images per group at most, so no group swamps a set
ICONS = Path("/usr/share/icons")
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
CLIPART = Path("/usr/share/openclipart/png")
# off-topic for icon and emoji sets: maps, buildings and plants drawn as clip art
OFFTOPIC_CATEGORIES = ("geography", "buildings", "plants")
CLIPART_CATEGORIES = ("animals", "computer", "food", "office", "people", "recreation", "tools",
                      "transportation")
# the freedesktop icon contexts with enough icons in both themes
ICON_CONTEXTS = ("actions", "apps", "categories", "devices", "emotes", "mimetypes", "places",
                 "status")
# the Unicode emoji groups, less "Component" (skin-tone swatches) and "Flags" (eight are needed;
# flags are near-identical rectangles)
EMOJI_GROUPS = ("Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink",
                "Travel & Places", "Activities", "Objects", "Symbols")
SKIN_TONES = {0x1F3FB, 0x1F3FC, 0x1F3FD, 0x1F3FE, 0x1F3FF}


@dataclass(frozen=True)
class Item:
    """One image of a set before it is written: its group, its family and how to write it."""

    group: str
    family: str
    name: str
    write: Callable[[Path], None]


@dataclass
class Manifest:
    name: str
    source: str
    groups: list[str]
    test: dict[str, str] = field(default_factory=dict)  # path under test/ -> group
    ingest: dict[str, str] = field(default_factory=dict)  # path under ingest/ -> group
    offtopic: list[str] = field(default_factory=list)  # paths under ingest/

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls(**json.loads(path.read_text()))


@dataclass(frozen=True)
class SetSpec:
    source: str  # what it is made of, for the report
    packages: tuple[str, ...]  # Debian packages it needs
    collect: Callable[[np.random.Generator], tuple[list[Item], list[Item]]]  # (items, off-topic)


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def _prepared(src: Path) -> Callable[[Path], None]:
    return lambda dst: prepare(src, dst)


def _shuffled_groups(items: list[Item], rng: np.random.Generator
                     ) -> Iterator[tuple[list[Item], list[str]]]:
    """Per group (sorted): its members and its families in a seeded random order."""
    for group in sorted({i.group for i in items}):
        members = [i for i in items if i.group == group]
        families = sorted({i.family for i in members})
        rng.shuffle(families)
        yield members, families


def _capped(items: list[Item], rng: np.random.Generator, cap: int = GROUP_CAP) -> list[Item]:
    """At most ``cap`` images per group, drawn by whole families."""
    out: list[Item] = []
    for members, families in _shuffled_groups(items, rng):
        kept: set[str] = set()
        count = 0
        for fam in families:
            size = sum(1 for i in members if i.family == fam)
            if count + size > cap and count:
                continue
            kept.add(fam)
            count += size
        out += [i for i in members if i.family in kept]
    return out


def _small(path: Path) -> bool:
    """Whether the image has at most MAX_PIXELS (some clip art is posters of 600 megapixels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as img:
                return img.size[0] * img.size[1] <= MAX_PIXELS
        except (OSError, Image.DecompressionBombError):
            return False


def _files(folder: Path) -> list[Path]:
    """Readable, not huge PNG files under ``folder`` (symbolic links left out: they repeat
    another file)."""
    return sorted(f for f in folder.rglob("*.png") if not f.is_symlink() and _small(f))


def _flat(path: Path, under: Path) -> str:
    """A file name unique under ``under``: the path below it, folders joined by '-'."""
    return "-".join(path.relative_to(under).with_suffix("").parts)


def clipart_offtopic(rng: np.random.Generator) -> list[Item]:
    files = [f for c in OFFTOPIC_CATEGORIES for f in _files(CLIPART / c)]
    return [Item("offtopic", f.stem, f"clipart-{_flat(f, CLIPART)}", _prepared(f))
            for f in files]


def icon_offtopic() -> list[Item]:
    files = _files(ICONS / "oxygen" / "base" / "128x128")
    return [Item("offtopic", f.stem, f"icon-{f.stem}", _prepared(f)) for f in files]


def clipart(rng: np.random.Generator) -> tuple[list[Item], list[Item]]:
    """Clip art of eight categories; off-topic: Oxygen icons."""
    items = [Item(c, f.stem, _flat(f, CLIPART / c), _prepared(f))
             for c in CLIPART_CATEGORIES for f in _files(CLIPART / c)]
    return _capped(items, rng, 250), icon_offtopic()


def icon_theme(root: Path) -> Callable[[np.random.Generator], tuple[list[Item], list[Item]]]:
    """One image per icon name and context: the largest PNG of sizes 48 to 256 px."""

    def collect(rng: np.random.Generator) -> tuple[list[Item], list[Item]]:
        best: dict[tuple[str, str], tuple[int, Path]] = {}
        for png in root.glob("*x*/*/*.png"):
            side = int(png.parent.parent.name.split("x")[0])
            context = png.parent.name
            if context in ICON_CONTEXTS and 48 <= side <= 256 and not png.is_symlink():
                key = (context, png.stem)
                if key not in best or best[key][0] < side:
                    best[key] = (side, png)
        items = [Item(ctx, stem, stem, _prepared(path))
                 for (ctx, stem), (_, path) in sorted(best.items())]
        return _capped(items, rng, 400), clipart_offtopic(rng)

    return collect


def _emoji_entries() -> list[tuple[str, str]]:
    """(group, emoji) for every fully-qualified emoji of the chosen groups."""
    out: list[tuple[str, str]] = []
    group = ""
    for line in EMOJI_TEST.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif "; fully-qualified" in line and group in EMOJI_GROUPS:
            codes = line.split(";")[0].split()
            out.append((group, "".join(chr(int(c, 16)) for c in codes)))
    return out


def _render_emoji(text: str, dst: Path) -> None:
    font = ImageFont.truetype(str(EMOJI_FONT), 109)  # the font's one bitmap size
    canvas = Image.new("RGBA", (160, 160), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((8, 8), text, font=font, embedded_color=True)
    box = canvas.getchannel("A").getbbox()
    if box is None:
        raise ValueError(f"emoji {text!r} renders empty")
    dst.parent.mkdir(parents=True, exist_ok=True)
    square(flatten(canvas.crop(box))).save(dst)


def _rendered(text: str) -> Callable[[Path], None]:
    return lambda dst: _render_emoji(text, dst)


def emoji(rng: np.random.Generator) -> tuple[list[Item], list[Item]]:
    items = []
    for group, text in _emoji_entries():
        codes = [ord(c) for c in text]
        family = "-".join(f"{c:x}" for c in codes if c not in SKIN_TONES)
        name = "-".join(f"{c:x}" for c in codes)
        items.append(Item(group.split()[0].lower(), family, name, _rendered(text)))
    return _capped(items, rng), clipart_offtopic(rng)


SETS: dict[str, SetSpec] = {
    "clipart": SetSpec("Openclipart PNGs, 8 categories", ("openclipart-png",
                       "oxygen-icon-theme"), clipart),
    "oxygen": SetSpec("Oxygen icon theme, 8 freedesktop contexts", ("oxygen-icon-theme",
                      "openclipart-png"), icon_theme(ICONS / "oxygen" / "base")),
    "emoji": SetSpec("Noto Color Emoji rendered by Pillow, 8 Unicode groups",
                     ("fonts-noto-color-emoji", "unicode-data", "openclipart-png"), emoji),
}


def _split(items: list[Item], rng: np.random.Generator) -> tuple[list[Item], list[Item]]:
    """(test, ingest): per group, whole families to test until TEST_SHARE of its images."""
    test: list[Item] = []
    ingest: list[Item] = []
    for members, families in _shuffled_groups(items, rng):
        chosen: set[str] = set()
        for fam in families:
            if sum(1 for i in members if i.family in chosen) >= TEST_SHARE * len(members):
                break
            chosen.add(fam)
        test += [i for i in members if i.family in chosen]
        ingest += [i for i in members if i.family not in chosen]
    return test, ingest


def _thumb_key(path: Path) -> str:
    """The same picture in two files (clip art filed twice, an icon under two names): equal
    32-px thumbnails at 5 bits per channel."""
    with Image.open(path) as img:
        a = np.asarray(img.convert("RGB").resize((32, 32), Image.Resampling.BOX)) // 8
    return hashlib.sha1(a.tobytes()).hexdigest()


def _same_picture_families(items: list[Item], staged: Path) -> list[Item]:
    """Items whose pictures are equal join one family, so the split keeps them on one side."""
    parent: dict[str, str] = {}

    def root(f: str) -> str:
        while parent.setdefault(f, f) != f:
            f = parent[f]
        return f

    first: dict[str, str] = {}
    for item in items:
        key = _thumb_key(staged / item.group / f"{item.name}.png")
        a, b = root(item.family), root(first.setdefault(key, item.family))
        parent[max(a, b)] = min(a, b)
    return [replace(i, family=root(i.family)) for i in items]


def build_set(name: str, root: Path, demo_n: int = 1600) -> Manifest:
    """Write set NAME under ``root/NAME`` (once: an existing manifest is reused). Harness runs
    that share a work folder (one per weights) take turns: a lock per set."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        out = root / name
        if (out / "manifest.json").exists():
            return Manifest.load(out / "manifest.json")
        if name == "demo":
            return build_demo(out, demo_n)
        return _build(name, out)


def _build(name: str, out: Path) -> Manifest:
    spec = SETS[name]
    rng = np.random.default_rng(seed_of(name))
    items, pool = spec.collect(rng)
    if not items or not pool:
        raise SystemExit(
            f"set {name}: found no {'images' if not items else 'off-topic images'} "
            f"({spec.source}); install its Debian packages: apt-get install -y "
            f"--no-install-recommends {' '.join(spec.packages)}")
    shutil.rmtree(out, ignore_errors=True)
    staged = out / "all"
    for item in items:
        item.write(staged / item.group / f"{item.name}.png")
    test, ingest = _split(_same_picture_families(items, staged), rng)
    groups = sorted({i.group for i in items})
    n_off = round(OFFTOPIC_SHARE * len(ingest) / (1 - OFFTOPIC_SHARE))
    offtopic = [pool[int(k)] for k in rng.choice(len(pool), n_off, replace=False)]
    m = Manifest(name, spec.source, groups)
    for part, members, files in (("test", test, m.test), ("ingest", ingest, m.ingest)):
        for item in members:
            rel = f"{item.group}/{item.name}.png"
            (out / part / item.group).mkdir(parents=True, exist_ok=True)
            (staged / rel).rename(out / part / rel)
            files[rel] = item.group
    shutil.rmtree(staged)
    for item in offtopic:  # into the groups' folders, as strays are in real collections
        rel = f"{groups[int(rng.integers(len(groups)))]}/{item.name}.png"
        item.write(out / "ingest" / rel)
        m.ingest[rel] = "offtopic"
        m.offtopic.append(rel)
    m.save(out / "manifest.json")
    return m


def build_demo(out: Path, n: int = 1600, seed: int = 11) -> Manifest:
    """The demo data: groups are its eight modes, off-topic its own noise files; its planted
    exact and near duplicates (and their originals) are all ingested."""
    raw = out.parent / f"{out.name}-raw"
    shutil.rmtree(raw, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "modescope", "demo-data", str(raw), "--n", str(n),
                    "--seed", str(seed)], check=True, capture_output=True)
    truth: dict[str, dict[str, Any]] = json.loads((raw / "truth.json").read_text())["files"]
    rng = np.random.default_rng(seed_of("demo"))
    tied = {f for f, e in truth.items() if e["duplicate_of"] or e["near_duplicate_of"]}
    tied |= {e[k] for e in truth.values() for k in ("duplicate_of", "near_duplicate_of") if e[k]}
    items = [Item(e["mode"], f, f, lambda dst: None) for f, e in sorted(truth.items())
             if e["mode"] and f not in tied]
    test, _ = _split(items, rng)
    test_files = {i.family for i in test}
    m = Manifest("demo", f"modescope demo-data --n {n} --seed {seed}",
                 sorted({e["mode"] for e in truth.values() if e["mode"]}))
    shutil.rmtree(out, ignore_errors=True)
    for f, e in sorted(truth.items()):
        group = e["mode"] or "offtopic"
        folder = e["mode"] or str(rng.choice(m.groups))
        rel = f"{folder}/{Path(f).name}"
        dst = out / ("test" if f in test_files else "ingest") / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(raw / f, dst)
        if f in test_files:
            m.test[rel] = group
        else:
            m.ingest[rel] = group
            if e["noise"]:
                m.offtopic.append(rel)
    shutil.rmtree(raw)
    m.save(out / "manifest.json")
    return m
