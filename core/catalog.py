"""The catalog: one row per source file ever ingested, and the flags (docs/workspace.md).

One writer at a time (ingest holds the workspace's ingest lock); readers (the web app) use WAL
and never block it. Every multi-row change is one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modescope.core.catalog_db import FLAG_REASONS, Status, connect, kept_reader


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FileRecord:
    """What ingest learned about one source file (a row of ``images`` before it has an id)."""

    path: str
    label: str | None
    status: Status
    sha256: str | None = None
    reason: str | None = None
    warning: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    file: str | None = None
    file_size: int | None = None
    mtime_ns: int | None = None
    duplicate_of: int | None = None  # set by Catalog.record


@dataclass(frozen=True)
class ImageRow:
    id: int
    path: str
    label: str | None
    sha256: str | None
    status: Status
    reason: str | None
    warning: str | None
    duplicate_of: int | None
    width: int | None
    height: int | None
    file: str | None


@dataclass(frozen=True)
class CuratedImage:
    """A training image of the curated set (see ``Catalog.curated``)."""

    id: int
    label: str | None
    path: str  # the source file, as ingested
    sha256: str
    file: str  # the normalised copy, relative to the workspace


_ROW_COLUMNS = "id, path, label, sha256, status, reason, warning, duplicate_of, width, height, file"


class Catalog:
    """Typed access to the catalog tables; callers never write SQL."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> Catalog:
        return cls(connect(path, readonly=readonly))

    def close(self) -> None:
        self.conn.close()

    @classmethod
    @contextmanager
    def reading(cls, path: Path) -> Iterator[Catalog]:
        """A read-only catalog for the length of a ``with`` block."""
        catalog = cls.open(path, readonly=True)
        try:
            yield catalog
        finally:
            catalog.close()

    @classmethod
    @contextmanager
    def reused(cls, path: Path) -> Iterator[Catalog]:
        """Like ``reading``, but the connection stays open for this thread's next read.

        Opening a WAL catalog costs more than a page's queries, and the web server's worker
        threads read many times a second (docs/reliability.md). Each statement still starts a
        fresh read (autocommit), so commits by any writer are seen at once. A new catalog file under
        the same path (another inode) gets a new connection; a read that fails drops its
        connection, so no half-read statement keeps an old snapshot alive.
        """
        kept = kept_reader(path)
        conn, _ = kept.get()  # FileNotFoundError when there is no catalog
        try:
            yield cls(conn)
        except BaseException:
            kept.close()
            raise

    # -- ingest side -------------------------------------------------------------------------

    def known_files(self) -> dict[str, tuple[int | None, int | None, Status]]:
        """path -> (file_size, mtime_ns, status) of every file already in the catalog."""
        rows = self.conn.execute("SELECT path, file_size, mtime_ns, status FROM images")
        return {r["path"]: (r["file_size"], r["mtime_ns"], r["status"]) for r in rows}

    def record(self, records: Iterable[FileRecord]) -> list[FileRecord]:
        """Insert or update rows in one transaction; return each record's final status.

        A readable image whose content an ``ok`` row already holds becomes a duplicate of it.
        """
        stamp = now()
        final: list[FileRecord] = []
        with self.conn:
            for rec in records:
                final.append(self._record_one(rec, stamp))
        return final

    def _record_one(self, rec: FileRecord, stamp: str) -> FileRecord:
        c = self.conn
        old = c.execute(
            "SELECT id, sha256, status FROM images WHERE path = ?", (rec.path,)
        ).fetchone()
        old_id = old["id"] if old else None
        duplicate_of = None
        if rec.status == "ok":
            hit = c.execute(
                "SELECT id FROM images WHERE sha256 = ? AND status = 'ok' AND id IS NOT ?",
                (rec.sha256, old_id),
            ).fetchone()
            if hit:
                duplicate_of = hit["id"]
                rec = replace(rec, status="duplicate", file=None, duplicate_of=duplicate_of)
        values = (
            rec.label, rec.sha256, rec.status, rec.reason, rec.warning, duplicate_of, rec.width,
            rec.height, rec.format, rec.mode, rec.file, rec.file_size, rec.mtime_ns, stamp,
        )
        if old is None:
            c.execute(
                "INSERT INTO images (label, sha256, status, reason, warning, duplicate_of, width,"
                " height, format, mode, file, file_size, mtime_ns, ingested_at, path)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, rec.path),
            )
            return rec
        if old["status"] == "ok" and old["sha256"] != rec.sha256:
            self._promote_duplicate(old["id"], old["sha256"])
        c.execute(
            "UPDATE images SET label = ?, sha256 = ?, status = ?, reason = ?, warning = ?,"
            " duplicate_of = ?, width = ?, height = ?, format = ?, mode = ?, file = ?,"
            " file_size = ?, mtime_ns = ?, ingested_at = ? WHERE id = ?",
            (*values, old_id),
        )
        return rec

    def _promote_duplicate(self, old_id: int, sha256: str) -> None:
        """The ok copy of some content changed: its first duplicate takes over as the ok row."""
        c = self.conn
        heir = c.execute(
            "SELECT id FROM images WHERE duplicate_of = ? AND sha256 = ? ORDER BY id LIMIT 1",
            (old_id, sha256),
        ).fetchone()
        if heir is None:
            return
        file = c.execute("SELECT file FROM images WHERE id = ?", (old_id,)).fetchone()["file"]
        # free the content's one-ok slot before the heir takes it; the caller rewrites old_id
        c.execute("UPDATE images SET sha256 = NULL WHERE id = ?", (old_id,))
        c.execute(
            "UPDATE images SET status = 'ok', duplicate_of = NULL, file = ? WHERE id = ?",
            (file, heir["id"]),
        )
        c.execute(
            "UPDATE images SET duplicate_of = ? WHERE duplicate_of = ? AND sha256 = ?",
            (heir["id"], old_id, sha256),
        )

    def start_ingest(self, root: str) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO ingests (root, started_at) VALUES (?, ?)", (root, now())
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_ingest(self, ingest_id: int, counts: dict[str, int]) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE ingests SET finished_at = ?, ok = ?, duplicate = ?, rejected = ?,"
                " unchanged = ?, skipped = ? WHERE id = ?",
                (
                    now(), counts["ok"], counts["duplicate"], counts["rejected"],
                    counts["unchanged"], counts["skipped"], ingest_id,
                ),
            )

    # -- read side ---------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "duplicate": 0, "rejected": 0}
        for r in self.conn.execute("SELECT status, COUNT(*) AS n FROM images GROUP BY status"):
            out[r["status"]] = r["n"]
        out["total"] = sum(out.values())
        out["held_out"] = len(self.held_out_ids())
        return out

    def path_of(self, image_id: int) -> str | None:
        r = self.conn.execute("SELECT path FROM images WHERE id = ?", (image_id,)).fetchone()
        return r["path"] if r else None

    def ok_files(self) -> list[tuple[int, str, str]]:
        """(id, sha256, normalised file) of every training image, by id."""
        rows = self.conn.execute(
            "SELECT id, sha256, file FROM images WHERE status = 'ok' ORDER BY id")
        return [(r["id"], r["sha256"], r["file"]) for r in rows]

    def curated(self, *, include_flagged: bool = False) -> list[CuratedImage]:
        """The curated set: every ok (ingested, not duplicate) image that is neither flagged
        nor held out, by id. The one definition that training, export and the analyses share;
        ``include_flagged`` gives every ok image that is not held out (the uncurated
        baseline). Held-out images are never training data (core/holdout.py)."""
        skip = self.held_out_ids() | (set() if include_flagged else self.flagged_ids())
        return [c for c in self._ok_images() if c.id not in skip]

    def held_out(self) -> list[CuratedImage]:
        """The held-out reference: held-out ok images without a flag, by id."""
        held, flagged = self.held_out_ids(), self.flagged_ids()
        return [c for c in self._ok_images() if c.id in held and c.id not in flagged]

    def held_out_ids(self) -> set[int]:
        try:
            return {r[0] for r in self.conn.execute("SELECT image_id FROM holdout")}
        except sqlite3.OperationalError:  # a catalog from before the held-out split
            return set()

    def _ok_images(self) -> list[CuratedImage]:
        rows = self.conn.execute(
            "SELECT id, label, path, sha256, file FROM images WHERE status = 'ok' ORDER BY id")
        return [CuratedImage(r["id"], r["label"], r["path"], r["sha256"], r["file"])
                for r in rows]

    def update_holdout(self, share: float) -> tuple[int, int]:
        """Grow or shrink the held-out split to ``share`` of the ok images (core/holdout.py),
        in one transaction; returns (added, removed)."""
        from modescope.core import holdout

        with self.conn:
            self.conn.execute("DELETE FROM holdout WHERE image_id NOT IN"
                              " (SELECT id FROM images WHERE status = 'ok')")
            held, flagged = self.held_out_ids(), self.flagged_ids()
            ok = {c.id: c.sha256 for c in self._ok_images()}
            current = {i: sha for i, sha in ok.items() if i in held}
            eligible = {i: sha for i, sha in ok.items() if i not in held and i not in flagged}
            add, remove = holdout.plan(current, eligible, len(ok), share)
            stamp = now()
            self.conn.executemany("INSERT INTO holdout (image_id, chosen_at) VALUES (?, ?)",
                                  [(i, stamp) for i in add])
            self.conn.executemany("DELETE FROM holdout WHERE image_id = ?",
                                  [(i,) for i in remove])
        return len(add), len(remove)

    def images(self, status: Status, *, limit: int, offset: int = 0) -> list[ImageRow]:
        rows = self.conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM images WHERE status = ? ORDER BY id LIMIT ? OFFSET ?",
            (status, limit, offset),
        )
        return [ImageRow(**dict(r)) for r in rows]

    def image(self, image_id: int) -> ImageRow | None:
        r = self.conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM images WHERE id = ?", (image_id,)
        ).fetchone()
        return ImageRow(**dict(r)) if r else None

    def reasons(self) -> list[tuple[str, int]]:
        """Rejections counted by kind (a reason's text before its first colon), most first."""
        kinds: dict[str, int] = {}
        for r in self.conn.execute("SELECT reason FROM images WHERE status = 'rejected'"):
            kind = (r["reason"] or "unknown").split(":", 1)[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        return sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))

    def rejected_under(self, root: str) -> int:
        """Rejected rows whose source path lies under the folder ``root``."""
        prefix = root.rstrip("/") + "/"
        r = self.conn.execute(
            "SELECT COUNT(*) FROM images WHERE status = 'rejected' AND substr(path, 1, ?) = ?",
            (len(prefix), prefix),
        ).fetchone()
        return int(r[0])

    def exact_duplicate_pairs(self) -> list[tuple[int, int]]:
        """(duplicate id, id of the ok copy) for every exact duplicate ingest recorded."""
        rows = self.conn.execute(
            "SELECT id, duplicate_of FROM images WHERE status = 'duplicate' ORDER BY id")
        return [(r[0], r[1]) for r in rows]

    def ok_id_for_path(self, path: str) -> int | None:
        r = self.conn.execute(
            "SELECT id FROM images WHERE path = ? AND status = 'ok'", (path,)).fetchone()
        return int(r["id"]) if r else None

    # -- flags (curation): the images a user set aside; they stay in the indexes -------------

    def flag(self, ids: Iterable[int], reason: str, note: str | None = None) -> list[int]:
        """Flag ok images; returns the ids that are not training images (nothing flagged)."""
        if reason not in FLAG_REASONS:
            raise ValueError(f"reason must be one of {', '.join(FLAG_REASONS)}")
        ids = list(ids)
        stamp = now()
        with self.conn:
            known = self._ok_ids(ids)
            self.conn.executemany(
                "INSERT INTO flags (image_id, reason, note, flagged_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(image_id) DO UPDATE SET reason = excluded.reason,"
                " note = excluded.note, flagged_at = excluded.flagged_at",
                [(i, reason, note, stamp) for i in ids if i in known],
            )
            self.conn.executemany("DELETE FROM kept WHERE image_id = ?",
                                  [(i,) for i in ids if i in known])
        return [i for i in ids if i not in known]

    def keep(self, ids: Iterable[int]) -> list[int]:
        """Mark ok images as reviewed and kept (they belong in the training set: good examples
        for "more like these", never suggested again); a flag on them is taken off. Returns the
        ids that are not training images (nothing kept)."""
        ids = list(ids)
        stamp = now()
        with self.conn:
            known = self._ok_ids(ids)
            mine = [(i,) for i in ids if i in known]
            self.conn.executemany(
                "INSERT INTO kept (image_id, kept_at) VALUES (?, ?) ON CONFLICT(image_id) "
                "DO UPDATE SET kept_at = excluded.kept_at",
                [(i, stamp) for (i,) in mine])
            self.conn.executemany("DELETE FROM flags WHERE image_id = ?", mine)
        return [i for i in ids if i not in known]

    def kept_ids(self) -> set[int]:
        try:
            return {r[0] for r in self.conn.execute("SELECT image_id FROM kept")}
        except sqlite3.OperationalError:  # a catalog from before the kept table
            return set()

    def unflag(self, ids: Iterable[int]) -> int:
        with self.conn:
            cur = self.conn.executemany("DELETE FROM flags WHERE image_id = ?",
                                        [(i,) for i in ids])
        return cur.rowcount

    def flag_count(self) -> int:
        try:
            return int(self.conn.execute("SELECT COUNT(*) FROM flags").fetchone()[0])
        except sqlite3.OperationalError:  # a catalog from before flags existed
            return 0

    def flagged_ids(self) -> set[int]:
        try:
            return {r[0] for r in self.conn.execute("SELECT image_id FROM flags")}
        except sqlite3.OperationalError:  # a catalog from before flags existed
            return set()

    def _ok_ids(self, ids: list[int]) -> set[int]:
        out: set[int] = set()
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            out |= {r[0] for r in self.conn.execute(
                f"SELECT id FROM images WHERE status = 'ok' AND id IN ({marks})", part)}
        return out

    def last_ingest(self) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM ingests ORDER BY id DESC LIMIT 1").fetchone()
        return dict(r) if r else None
