"""The catalog's SQLite file: its schema, and connections to it (WAL; kept per thread).

One writer at a time; readers use WAL and never block it (docs/workspace.md).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Literal

SCHEMA_VERSION = 1
Status = Literal["ok", "duplicate", "rejected"]
FLAG_REASONS = ("noisy", "duplicate", "off-topic", "other")

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL UNIQUE,
    label        TEXT,
    sha256       TEXT,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'duplicate', 'rejected')),
    reason       TEXT,
    warning      TEXT,
    duplicate_of INTEGER REFERENCES images(id),
    width        INTEGER,
    height       INTEGER,
    format       TEXT,
    mode         TEXT,
    file         TEXT,
    file_size    INTEGER,
    mtime_ns     INTEGER,
    ingested_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS images_one_ok_per_content
    ON images(sha256) WHERE status = 'ok';
CREATE INDEX IF NOT EXISTS images_status ON images(status, id);
CREATE TABLE IF NOT EXISTS flags (
    image_id   INTEGER PRIMARY KEY REFERENCES images(id),
    reason     TEXT NOT NULL CHECK (reason IN ('noisy', 'duplicate', 'off-topic', 'other')),
    note       TEXT,
    flagged_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kept (
    image_id INTEGER PRIMARY KEY REFERENCES images(id),
    kept_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS holdout (
    image_id  INTEGER PRIMARY KEY REFERENCES images(id),
    chosen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ingests (
    id          INTEGER PRIMARY KEY,
    root        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    ok          INTEGER NOT NULL DEFAULT 0,
    duplicate   INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0
);
"""



def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the catalog; the writer creates the schema, readers never write."""
    if readonly:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    if not readonly:
        with conn:
            conn.executescript(SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return conn


class KeptConnection:
    """One connection to a catalog file, kept open between uses; a new file under the same
    path (another device/inode: restored, re-created) gets a new connection. Not locked: use it
    from one thread, or under the caller's lock."""

    def __init__(self, path: Path, *, readonly: bool) -> None:
        self.path, self.readonly = path, readonly
        self._key: tuple[int, int] | None = None
        self._conn: sqlite3.Connection | None = None

    def get(self) -> tuple[sqlite3.Connection, bool]:
        """(the connection, whether it was opened just now); FileNotFoundError without a
        catalog."""
        st = self.path.stat()
        key = (st.st_dev, st.st_ino)
        if self._conn is not None and key == self._key:
            return self._conn, False
        self.close()
        self._conn, self._key = connect(self.path, readonly=self.readonly), key
        return self._conn, True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._key = None


class _ThreadReaders(threading.local):
    """Each thread's kept read-only connections, by catalog path."""

    LIMIT = 8

    def __init__(self) -> None:
        self.conns: dict[Path, KeptConnection] = {}


_readers = _ThreadReaders()


def kept_reader(path: Path) -> KeptConnection:
    """This thread's kept read-only connection to the catalog at ``path`` (at most
    ``_ThreadReaders.LIMIT`` catalogs per thread)."""
    conns = _readers.conns
    kept = conns.get(path)
    if kept is None:
        if len(conns) >= _ThreadReaders.LIMIT:
            for old in conns.values():
                old.close()
            conns.clear()
        kept = conns[path] = KeptConnection(path, readonly=True)
    return kept
