"""Files written whole (a temp name in the same folder, then a rename: a crash never leaves half a
file), one flush of a whole filesystem for callers that write many files, and tolerant readers
(a missing or half-written JSON file, the tail of a log)."""

from __future__ import annotations

import ctypes
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename.

    A crash or kill never leaves half a file at ``path``. ``durable=False`` skips the fsync
    (callers that write many files call ``sync_filesystem`` once before they commit).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sync_filesystem(path: Path) -> None:
    """Flush every written file on ``path``'s filesystem to disk (one call for many files)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "syncfs"):  # pragma: no cover - not in CPython yet
            os.syncfs(fd)
        elif sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).syncfs(fd)
        else:
            os.sync()
    finally:
        os.close(fd)


def read_json(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of an append-only JSON-lines file; a half-written last line is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a (log) file, reading at most its last 16 KiB."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
