"""``modescope ingest``: every file in a folder becomes a catalog row; good ones a training PNG.

Data flow: discover (main process) -> decode + normalise + write PNG (worker processes, in
order) -> record rows in batches (main process, the catalog's one writer). A PNG is written to a
temp name and renamed before its row is committed, so a crash at any moment leaves whole files
only; a rerun redoes the uncommitted files and the catalog's unique path key prevents doubles.
"""

from __future__ import annotations

import ctypes
import hashlib
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modescope.core.catalog import Catalog, FileRecord
from modescope.core.discover import Candidate, discover
from modescope.core.errors import InputError
from modescope.core.files import atomic_write_bytes, sync_filesystem
from modescope.core.normalise import (
    DEFAULT_MAX_ASPECT,
    DEFAULT_MAX_PIXELS,
    NormaliseOptions,
    Rejected,
    normalise,
    png_bytes,
)
from modescope.core.workspace import Fit, Workspace

ProgressFn = Callable[[int, int], None]
BATCH = 64  # rows per catalog transaction
INLINE_BELOW = 48  # fewer files than this are not worth starting worker processes


@dataclass
class IngestReport:
    root: str
    workspace: str
    image_size: int
    fit: str
    ok: int = 0
    duplicate: int = 0
    rejected: int = 0
    unchanged: int = 0
    skipped: int = 0
    seconds: float = 0.0
    rejected_files: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    unchanged_readable: int = 0  # unchanged files that are ok or duplicate
    held_out: int = 0  # ok images held out after this ingest (core/holdout.py)
    holdout_share: float = 0.0

    @property
    def processed(self) -> int:
        return self.ok + self.duplicate + self.rejected

    @property
    def nothing_readable(self) -> bool:
        return self.ok + self.duplicate + self.unchanged_readable == 0

    def summary(self) -> str:
        rate = f" in {self.seconds:.1f} s ({self.processed / self.seconds:.0f} files/s)" if (
            self.processed and self.seconds > 0) else ""
        held = (f"; {self.held_out} images held out (never trained on: the reference for "
                "the copy verdicts)" if self.held_out else "")
        return (
            f"{self.ok} ok, {self.duplicate} duplicate, {self.rejected} rejected"
            f" ({self.unchanged} unchanged, {self.skipped} skipped as hidden or not images){rate}"
            f"{held}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "root": self.root, "workspace": self.workspace, "image_size": self.image_size,
            "fit": self.fit, "ok": self.ok, "duplicate": self.duplicate,
            "rejected": self.rejected, "unchanged": self.unchanged, "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            "files_per_s": round(self.processed / self.seconds, 1) if self.seconds else None,
            "rejected_files": self.rejected_files, "duplicates": self.duplicates,
            "warnings": self.warnings, "held_out": self.held_out,
            "holdout_share": self.holdout_share,
        }


def ingest(
    root: Path,
    workspace: Workspace,
    *,
    size: int | None = None,
    fit: Fit | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_aspect: float = DEFAULT_MAX_ASPECT,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    holdout: float | None = None,
) -> IngestReport:
    root = Path(root).expanduser().absolute()
    if not root.exists():
        raise InputError(f"folder {root} does not exist; give the folder of your training images")
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; give the folder that holds the images")
    if max_pixels < 1 or max_aspect < 1:
        raise InputError("--max-pixels must be at least 1 and --max-aspect at least 1.0")
    if holdout is not None and not 0 <= holdout < 0.5:
        raise InputError(f"--holdout {holdout}: give a share in [0, 0.5), e.g. 0.1; 0 turns "
                         "the held-out split off")
    config = workspace.open_or_create(size, fit, holdout)
    opts = NormaliseOptions(config.image_size, config.fit, max_pixels, max_aspect)
    report = IngestReport(str(root), str(workspace.root), config.image_size, config.fit)
    started = time.perf_counter()
    with workspace.lock("ingest"):
        _remove_temp_files(workspace.train_dir)
        catalog = Catalog.open(workspace.catalog_path)
        try:
            found = discover(root, exclude=workspace.root)
            report.skipped = found.skipped
            known = catalog.known_files()

            def unchanged(key: str, size: int | None, mtime: int | None) -> bool:
                old = known.get(key)
                if old is None or old[0] != size or old[1] != mtime:
                    return False
                report.unchanged += 1
                report.unchanged_readable += old[2] != "rejected"
                return True

            problems = [
                p for p in found.problems if not unchanged(p.path, p.file_size, p.mtime_ns)
            ]
            todo = [c for c in found.candidates if not unchanged(c.key, c.size, c.mtime_ns)]
            ingest_id = catalog.start_ingest(str(root))
            _record(catalog, problems, report, workspace)
            done = 0
            batch: list[FileRecord] = []
            for rec in _process_all(todo, workspace, opts, workers):
                batch.append(rec)
                done += 1
                if len(batch) >= BATCH:
                    _record(catalog, batch, report, workspace)
                    batch = []
                if progress:
                    progress(done, len(todo))
            _record(catalog, batch, report, workspace)
            catalog.update_holdout(config.holdout)
            report.held_out, report.holdout_share = len(catalog.held_out_ids()), config.holdout
            catalog.finish_ingest(ingest_id, report.as_json())
        finally:
            catalog.close()
    report.seconds = time.perf_counter() - started
    return report


def _record(catalog: Catalog, records: list[FileRecord], report: IngestReport,
            workspace: Workspace) -> None:
    """Commit a batch of rows, after their PNGs are on disk (one syncfs, not one fsync each)."""
    if not records:
        return
    if any(r.file for r in records):
        sync_filesystem(workspace.train_dir)
    for rec in catalog.record(records):
        if rec.status == "ok":
            report.ok += 1
        elif rec.status == "duplicate":
            report.duplicate += 1
            original = catalog.path_of(rec.duplicate_of) if rec.duplicate_of else None
            report.duplicates.append({"path": rec.path, "duplicate_of": original})
        else:
            report.rejected += 1
            report.rejected_files.append({"path": rec.path, "reason": rec.reason or ""})
        if rec.warning:
            report.warnings.append({"path": rec.path, "warning": rec.warning})


def _process_all(
    todo: list[Candidate], workspace: Workspace, opts: NormaliseOptions, workers: int | None
) -> Iterator[FileRecord]:
    n_workers = max(1, workers or multiprocessing.cpu_count())
    args = [(c, workspace.root, opts) for c in todo]
    if n_workers == 1 or len(todo) < INLINE_BELOW:
        yield from (process_file(*a) for a in args)
        return
    ctx = multiprocessing.get_context("spawn")  # no inherited locks or sqlite handles
    with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_worker_init) as pool:
        try:
            yield from pool.map(_process_packed, args, chunksize=8)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _process_packed(args: tuple[Candidate, Path, NormaliseOptions]) -> FileRecord:
    return process_file(*args)


def _worker_init() -> None:
    """Workers die with the ingest process (kill -9 included) instead of writing on alone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def process_file(cand: Candidate, ws_root: Path, opts: NormaliseOptions) -> FileRecord:
    """Read, hash, normalise and store one file; every failure becomes a rejected record."""
    base: dict[str, Any] = {
        "path": cand.key, "label": cand.label, "file_size": cand.size, "mtime_ns": cand.mtime_ns,
    }
    try:
        with open(cand.path, "rb") as fh:
            data = fh.read()
    except PermissionError:
        return FileRecord(**base, status="rejected",
                          reason="unreadable file: permission denied; check its permissions")
    except OSError as exc:
        return FileRecord(**base, status="rejected", reason=f"unreadable file: {exc.strerror}")
    sha = hashlib.sha256(data).hexdigest()
    try:
        norm = normalise(data, opts)
    except Rejected as exc:
        return FileRecord(**base, status="rejected", sha256=sha, reason=str(exc))
    except MemoryError:
        return FileRecord(**base, status="rejected", sha256=sha,
                          reason="out of memory while decoding; lower --max-pixels")
    ws = Workspace(ws_root)
    dest = ws.train_file(sha)
    if not dest.exists():  # content-addressed: an existing file is already this image
        atomic_write_bytes(dest, png_bytes(norm.image), durable=False)  # synced per batch
    return FileRecord(
        **base, status="ok", sha256=sha, warning=norm.warning, width=norm.width,
        height=norm.height, format=norm.format, mode=norm.mode, file=ws.relative(dest),
    )


def _remove_temp_files(train_dir: Path) -> None:
    """Temp files left by a killed ingest (we hold the ingest lock, so none is in use)."""
    if train_dir.is_dir():
        for tmp in train_dir.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)
