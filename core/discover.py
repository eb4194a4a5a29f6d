"""Find the files an ingest should look at, without opening any of them.

Hidden entries (a leading dot) and files whose extension is no image format are skipped and
counted; broken symlinks, symlink loops, non-regular files, unreadable folders and images in a
format this Pillow build cannot read (SVG, HEIC, camera RAW: named, with what would read them)
become rejected records, so the user sees them.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from modescope.core.catalog import FileRecord


def image_extensions() -> frozenset[str]:
    """Extensions of every format this Pillow build can open (``.jpg``, ``.png``, ``.webp``…)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


_RASTERISE = ("{name} is vector art: rasterise it first, e.g. `rsvg-convert -w 512 IN -o OUT.png`"
              " (Debian package librsvg2-bin) or Inkscape's export, then ingest the PNGs")
_PLUGIN = ("{name} needs a Pillow plugin: `pip install {plugin}` in modescope's environment, then "
           "ingest again")
_DEVELOP = ("camera RAW ({name}) is not an image Pillow reads: develop it to JPEG, PNG or TIFF "
            "first (e.g. `darktable-cli IN OUT.jpg` or `dcraw -T`), then ingest those")
UNSUPPORTED: dict[str, str] = {
    ".svg": _RASTERISE.format(name="SVG"), ".svgz": _RASTERISE.format(name="SVG"),
    ".ai": _RASTERISE.format(name="Illustrator art"), ".pdf": _RASTERISE.format(name="PDF"),
    ".heic": _PLUGIN.format(name="HEIC", plugin="pillow-heif"),
    ".heif": _PLUGIN.format(name="HEIF", plugin="pillow-heif"),
    ".hif": _PLUGIN.format(name="HEIF", plugin="pillow-heif"),
    ".jxl": _PLUGIN.format(name="JPEG XL", plugin="pillow-jxl-plugin"),
    ".avif": "AVIF needs Pillow 11.2 or later built with libavif: `pip install -U pillow`",
    ".webp": "WebP needs Pillow built with libwebp: `pip install -U pillow`",
    **{ext: _DEVELOP.format(name=ext[1:].upper()) for ext in (
        ".cr2", ".cr3", ".nef", ".arw", ".dng", ".orf", ".rw2", ".raf", ".srw", ".pef")},
}


def unsupported_reason(suffix: str) -> str | None:
    """Why a file with this extension cannot be read here, and what would read it; None for
    extensions that are no image format modescope knows of (those are skipped)."""
    why = UNSUPPORTED.get(suffix.lower())
    return f"unsupported format: {why}" if why else None


def display_path(path: Path) -> str:
    """The path as stored in the catalog: undecodable bytes are shown as \\x escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Candidate:
    path: Path
    key: str  # display_path(path): the catalog's unique key
    label: str | None
    size: int
    mtime_ns: int


@dataclass
class Discovery:
    candidates: list[Candidate] = field(default_factory=list)
    problems: list[FileRecord] = field(default_factory=list)
    skipped: int = 0


def discover(root: Path, *, exclude: Path | None = None) -> Discovery:
    """Walk ``root`` (following folder symlinks once each) in a stable, sorted order."""
    exts = image_extensions()
    found = Discovery()
    seen_dirs: set[tuple[int, int]] = set()
    excluded = exclude.resolve() if exclude else None
    st = root.stat()
    seen_dirs.add((st.st_dev, st.st_ino))
    stack: list[Path] = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError as exc:
            found.problems.append(_problem(folder, root, f"unreadable folder: {exc.strerror}"))
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                found.skipped += 1
                continue
            try:
                st = path.stat()  # follows symlinks
            except OSError as exc:
                found.problems.append(_problem(path, root, _link_reason(path, exc)))
                continue
            if stat.S_ISDIR(st.st_mode):
                ident = (st.st_dev, st.st_ino)
                if excluded is not None and path.resolve() == excluded:
                    continue
                if ident in seen_dirs:
                    if entry.is_symlink():
                        found.problems.append(_problem(
                            path, root, "symlink loop: this folder link points back to a folder "
                            "already walked; skipped",
                        ))
                    continue
                seen_dirs.add(ident)
                stack.append(path)
                continue
            if path.suffix.lower() not in exts:
                why = unsupported_reason(path.suffix)
                if why and stat.S_ISREG(st.st_mode):
                    found.problems.append(_problem(path, root, why))
                else:
                    found.skipped += 1
                continue
            if not stat.S_ISREG(st.st_mode):
                found.problems.append(
                    _problem(path, root, "not a regular file (a pipe, socket or device)")
                )
                continue
            key = display_path(path)
            found.candidates.append(
                Candidate(path, key, label_of(path, root), st.st_size, st.st_mtime_ns)
            )
    found.candidates.sort(key=lambda c: c.key)
    return found


def label_of(path: Path, root: Path) -> str | None:
    """The first-level subfolder under the ingested folder, or None for files at its top."""
    parts = path.relative_to(root).parts
    return display_path(Path(parts[0])) if len(parts) > 1 else None


def _link_reason(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop: the link resolves to itself; fix or remove the link"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return f"broken symlink: its target {os.readlink(path)!s} does not exist"
    return f"unreadable: {exc.strerror}"


def _problem(path: Path, root: Path, reason: str) -> FileRecord:
    size: int | None = None
    mtime: int | None = None
    try:
        lst = path.lstat()
        size, mtime = lst.st_size, lst.st_mtime_ns
    except OSError:
        pass
    return FileRecord(
        path=display_path(path), label=label_of(path, root) if path != root else None,
        status="rejected", reason=reason, file_size=size, mtime_ns=mtime,
    )
