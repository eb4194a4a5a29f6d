"""A retrained run's lineage: which run it was retrained from, and which training images the
flags added or removed in between (``runs/<RUN>/lineage.json``, written through ``RunFolder``).

Both runs' ``dataset.json`` (``core.training.dataset_record``) list the files they trained on;
the difference is the curation between them: a file the parent trained on and the new run does
not was flagged (or left the set), a file the new run trains on and the parent did not was
unflagged (or joined the set). Files are matched by name: normalised images are named by the
hash of their content (``images/train/ab/<sha256>.png``), while the record holds absolute paths,
which differ once a workspace is moved or copied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any


def flag_diff(parent: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(flagged, unflagged): files in the parent's dataset record and not in the new one, and
    the other way round, each sorted. Records without a file list (TFRecords runs) differ by
    nothing that can be named: a ValueError."""
    before, after = parent.get("files"), new.get("files")
    if not isinstance(before, list) or not isinstance(after, list):
        raise ValueError("both dataset records need a file list to tell which images changed")
    old = {PurePath(str(f)).name: str(f) for f in before}
    now = {PurePath(str(f)).name: str(f) for f in after}
    return (sorted(old[k] for k in old.keys() - now.keys()),
            sorted(now[k] for k in now.keys() - old.keys()))


def lineage_record(parent: str, parent_dataset: dict[str, Any] | None,
                   dataset: dict[str, Any] | None) -> dict[str, Any]:
    """lineage.json: the parent run, both dataset versions and the flags between them
    (``flagged``/``unflagged`` are None when either run has no file list)."""
    flagged: list[str] | None = None
    unflagged: list[str] | None = None
    if parent_dataset is not None and dataset is not None:
        try:
            flagged, unflagged = flag_diff(parent_dataset, dataset)
        except ValueError:
            pass
    return {"parent": parent,
            "parent_dataset": (parent_dataset or {}).get("sha256"),
            "dataset": (dataset or {}).get("sha256"),
            "flagged": flagged, "unflagged": unflagged,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}


def lineage_words(record: dict[str, Any]) -> str:
    """"retrained from X after N flags: +a flagged −b unflagged" (the run page, the compare
    page)."""
    parent = record.get("parent", "?")
    flagged, unflagged = record.get("flagged"), record.get("unflagged")
    if flagged is None or unflagged is None:
        return f"retrained from {parent} (which images changed is unknown: a run without a " \
               "file list)"
    n = len(flagged) + len(unflagged)
    if n == 0:
        return f"retrained from {parent} on the same images (no flags changed)"
    noun = "flag" if n == 1 else "flags"
    return (f"retrained from {parent} after {n} {noun}: +{len(flagged)} flagged "
            f"\u2212{len(unflagged)} unflagged")
