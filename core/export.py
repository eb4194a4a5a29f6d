"""The curated set (ok training images without a flag) as CSV, JSON or a folder of images.

The same rows feed ``modescope export`` and the app's /export/curated.csv|json, so a file
downloaded from the browser and one written by the CLI are identical.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from modescope.core.catalog import Catalog
from modescope.core.errors import InputError, WorkspaceError
from modescope.core.workspace import Workspace

COLUMNS = ("id", "label", "file_name", "sha256", "normalised_file")
UNLABELLED = "_unlabelled"


@dataclass(frozen=True)
class CuratedRow:
    id: int
    label: str | None
    file_name: str  # the source file's name (no folder)
    sha256: str
    normalised_file: str  # relative to the workspace


def curated_rows(ws: Workspace) -> list[CuratedRow]:
    if not ws.catalog_path.is_file():
        raise WorkspaceError(f"{ws.root} has no catalog yet; run `modescope ingest DIR "
                             f"--workspace {ws.root}` first")
    with Catalog.reading(ws.catalog_path) as catalog:
        return [CuratedRow(c.id, c.label, PurePosixPath(c.path).name, c.sha256, c.file)
                for c in catalog.curated()]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A text cell that a spreadsheet would run as a formula (OWASP "CSV injection": file names
    and labels come from the user's folders) gets a leading apostrophe; JSON keeps the raw."""
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(rows: list[CuratedRow]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r.id, spreadsheet_safe(r.label or ""), spreadsheet_safe(r.file_name),
                         r.sha256, r.normalised_file])
    return buf.getvalue()


def to_json(rows: list[CuratedRow]) -> str:
    return json.dumps({"count": len(rows), "images": [asdict(r) for r in rows]},
                      indent=2, ensure_ascii=False) + "\n"


def label_folder(label: str | None) -> str:
    """A safe folder name for a label: never empty, hidden, '..' or containing a separator."""
    if not label:
        return UNLABELLED
    name = "".join("_" if ch in "/\\\0" else ch for ch in label)
    return "_" + name if name.startswith(".") else name


def to_folder(ws: Workspace, rows: list[CuratedRow], out: Path) -> int:
    """Copy each curated image to ``out/<label>/<id>.png``. ``out`` must not exist or be empty;
    the copies are made in a temp folder beside it and renamed into place, so an interrupted
    export leaves nothing half-written at ``out``."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out} exists and is not an empty folder; choose a new path")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        for r in rows:
            src = ws.resolve(r.normalised_file)
            if not src.is_file():
                raise WorkspaceError(f"image {r.id}'s normalised file {src} is missing; rerun "
                                     "`modescope ingest`")
            dest = tmp / label_folder(r.label) / f"{r.id}.png"
            dest.parent.mkdir(exist_ok=True)
            shutil.copyfile(src, dest)
        (tmp / "curated.csv").write_text(to_csv(rows), encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return len(rows)
