"""The web process's one writer of user state in the catalog: flags (curation).

Writes go through ``Catalog.flag`` / ``Catalog.unflag`` (one transaction each) under a lock,
so the web process never has two writers racing; SQLite's WAL lets readers (the pages, the CLI,
the analyses) carry on meanwhile. Reads use each worker thread's own read-only
connection (``Catalog.reused``): thread-safe, and they see writes made by the CLI
(`modescope flag`) or another server process at once. The writer's connection is kept open too
(opening one runs the schema script on every flag).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from annotated_types import Ge, Le

from modescope.core.catalog import Catalog, ImageRow
from modescope.core.catalog_db import FLAG_REASONS, KeptConnection
from modescope.core.errors import InputError, WorkspaceError
from modescope.core.workspace import Workspace

MAX_IDS_PER_CHANGE = 10_000
# a row id as it arrives in a URL or a form: SQLite stores 64-bit integers, and a bigger one
# raised OverflowError inside the query (a 500); bounded here it is a 422 at the edge
RowId = Annotated[int, Ge(-(2**63)), Le(2**63 - 1)]
MAX_NOTE_CHARS = 500
_ROW = "i.id, i.path, i.label, i.sha256, i.status, i.reason, i.warning, i.duplicate_of, " \
       "i.width, i.height, i.file"


@dataclass(frozen=True)
class Flag:
    image_id: int
    reason: str
    note: str | None
    flagged_at: str


@dataclass(frozen=True)
class FlagChange:
    changed: list[int]
    not_training: list[int]


def _change(ids: list[int], unknown: list[int]) -> FlagChange:
    """What a flag or keep changed: the ids asked for but those that are no training image."""
    missing = set(unknown)
    return FlagChange([i for i in ids if i not in missing], unknown)


class _FlagsVersion:
    """A hash of the flagged ids, recomputed only when the catalog has changed.

    One read connection per catalog, kept open: SQLite's ``PRAGMA data_version`` on it changes
    whenever any other connection (this process's flag writer, another server process, the
    CLI) commits, so the flags are read again only after a commit (a sample page used to read
    every flag on each request)."""

    def __init__(self, path: Path) -> None:
        self._kept = KeptConnection(path, readonly=True)
        self._lock = threading.Lock()
        self._seen: tuple[int, str] | None = None  # (data_version, hash)

    def get(self) -> str:
        with self._lock:
            conn, opened = self._kept.get()  # FileNotFoundError: no catalog
            if opened:  # data_version compares only within one connection
                self._seen = None
            version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            if self._seen is None or self._seen[0] != version:
                flags = Catalog(conn).flagged_ids()
                text = ",".join(map(str, sorted(flags)))
                self._seen = (version, hashlib.sha256(text.encode()).hexdigest()[:16])
            return self._seen[1]


_flag_versions: dict[Path, _FlagsVersion] = {}
_flag_versions_lock = threading.Lock()


def flags_version(ws: Workspace) -> str:
    """A hash of the set of flagged ids (the curated set): the analyses' cache key and the
    suggestion cache's; the hash of no flags when there is no catalog."""
    with _flag_versions_lock:
        tracker = _flag_versions.setdefault(ws.catalog_path, _FlagsVersion(ws.catalog_path))
    try:
        return tracker.get()
    except FileNotFoundError:
        return hashlib.sha256(b"").hexdigest()[:16]


class FlagStore:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._write_lock = threading.Lock()
        self._writer_conn = KeptConnection(workspace.catalog_path, readonly=False)  # under the lock

    # -- reads --------------------------------------------------------------------------------

    def _require_catalog(self) -> None:
        if not self.workspace.catalog_path.is_file():
            raise WorkspaceError(
                f"{self.workspace.root} has no catalog yet; run "
                f"`modescope ingest DIR --workspace {self.workspace.root}`")

    @contextmanager
    def reading(self) -> Iterator[Catalog]:
        self._require_catalog()
        with Catalog.reused(self.workspace.catalog_path) as catalog:
            yield catalog

    def flags(self, ids: Iterable[int] | None = None) -> dict[int, Flag]:
        """The flags of ``ids`` (all flags when None)."""
        with self.reading() as catalog:
            if ids is None:
                rows = list(catalog.conn.execute(
                    "SELECT image_id, reason, note, flagged_at FROM flags"))
            else:
                wanted = sorted(set(ids))
                rows = []
                for start in range(0, len(wanted), 500):
                    part = wanted[start:start + 500]
                    rows += catalog.conn.execute(
                        "SELECT image_id, reason, note, flagged_at FROM flags WHERE image_id IN "
                        f"({','.join('?' * len(part))})", part).fetchall()
        return {r[0]: Flag(r[0], r[1], r[2], r[3]) for r in rows}

    def flagged_ids(self) -> set[int]:
        with self.reading() as catalog:
            return catalog.flagged_ids()

    def version(self) -> str:
        """Changes whenever the set of flagged ids changes (keys the suggestion cache)."""
        self._require_catalog()
        return flags_version(self.workspace)

    def flagged_page(self, limit: int, offset: int) -> tuple[list[ImageRow], int]:
        """Flagged training images, most recently flagged first, and how many there are.
        CROSS JOIN makes SQLite walk the flags, not all images (docs/curation.md)."""
        with self.reading() as catalog:
            total = int(catalog.conn.execute(
                "SELECT COUNT(*) FROM flags f CROSS JOIN images i ON i.id = f.image_id "
                "WHERE i.status = 'ok'").fetchone()[0])
            rows = catalog.conn.execute(
                f"SELECT {_ROW} FROM flags f CROSS JOIN images i ON i.id = f.image_id "
                "WHERE i.status = 'ok' ORDER BY f.flagged_at DESC, f.image_id "
                "LIMIT ? OFFSET ?", (limit, offset))
            return [ImageRow(**dict(r)) for r in rows], total

    def images(self, ids: list[int]) -> dict[int, ImageRow]:
        """Catalog rows by id (any status), for the ids of one page."""
        out: dict[int, ImageRow] = {}
        with self.reading() as catalog:
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                for r in catalog.conn.execute(
                        f"SELECT {_ROW} FROM images i WHERE i.id IN "
                        f"({','.join('?' * len(part))})", part):
                    out[r["id"]] = ImageRow(**dict(r))
        return out

    # -- the writer ---------------------------------------------------------------------------

    def flag(self, ids: list[int], reason: str, note: str | None = None) -> FlagChange:
        ids = self._check_ids(ids)
        if reason not in FLAG_REASONS:
            raise InputError(f"reason {reason!r} is not one of {', '.join(FLAG_REASONS)}")
        note = (note or "").strip() or None
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise InputError(f"the note has {len(note)} characters; keep it under "
                             f"{MAX_NOTE_CHARS}")
        with self._write_lock, self._writer() as catalog:
            return _change(ids, catalog.flag(ids, reason, note))

    def keep(self, ids: list[int]) -> FlagChange:
        """Reviewed and kept: a good example for "more like these" (its flag, if any, off)."""
        ids = self._check_ids(ids)
        with self._write_lock, self._writer() as catalog:
            return _change(ids, catalog.keep(ids))

    def kept_ids(self) -> set[int]:
        with self.reading() as catalog:
            return catalog.kept_ids()

    def unflag(self, ids: list[int]) -> FlagChange:
        ids = self._check_ids(ids)
        with self._write_lock, self._writer() as catalog:
            flagged = catalog.flagged_ids() & set(ids)
            catalog.unflag(sorted(flagged))
        return FlagChange(sorted(flagged), [])

    @contextmanager
    def _writer(self) -> Iterator[Catalog]:
        """The writer's catalog (call under ``_write_lock``): opened once, again only for a new
        catalog file, and dropped after a failed change."""
        try:
            conn, _ = self._writer_conn.get()
        except FileNotFoundError:
            raise WorkspaceError(f"{self.workspace.root} has no catalog yet; run "
                                 "`modescope ingest` first") from None
        try:
            yield Catalog(conn)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the writer's connection (it is opened again on the next change)."""
        self._writer_conn.close()

    @staticmethod
    def _check_ids(ids: list[int]) -> list[int]:
        if not ids:
            raise InputError("no image selected: tick at least one image, then flag or unflag")
        if len(ids) > MAX_IDS_PER_CHANGE:
            raise InputError(f"{len(ids)} images in one change; at most {MAX_IDS_PER_CHANGE}")
        return list(dict.fromkeys(ids))
