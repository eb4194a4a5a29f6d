"""Closing the loop: which run a retrain is compared with, its lineage record, and the
comparison against that parent (indexer/run_compare.py) written when the retrain job ends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modescope.app.analyses import Analysis, current_versions, run_kinds, store_analysis
from modescope.core.errors import InputError, ModescopeError
from modescope.core.lineage import lineage_record
from modescope.core.training import TrainConfig, TrainRequest, dataset_record, training_files
from modescope.core.workspace import Workspace
from modescope.indexer.run_compare import Side, summary


def inspected(ws: Workspace, run: str) -> bool:
    """Whether any analysis of the run's samples is stored (fresh or not)."""
    folder = ws.run(run)
    return any(folder.inspection_path(kind).is_file() for kind in run_kinds())


def curated_version(ws: Workspace) -> str | None:
    """The dataset version (sha256 of dataset.json's file list) a retrain would train on now;
    None before any ingest."""
    if not ws.catalog_path.is_file():
        return None
    files = training_files(ws, TrainRequest(run="curated"))  # the one curated-set rule
    return str(dataset_record(files)["sha256"])


def default_parent(ws: Workspace) -> str | None:
    """The run a retrain is compared with unless the user picks one: the last trained run (by
    when its training started) with stored analyses, preferring one trained on another dataset
    version than the curated set's now (the flags changed since); None when no run qualifies."""
    candidates: list[tuple[float, str, str | None]] = []
    for name in ws.run_names():
        folder = ws.run(name)
        if not folder.dataset_path.is_file() or not inspected(ws, name):
            continue
        version = (folder.dataset() or {}).get("sha256")
        candidates.append((folder.dataset_path.stat().st_mtime, name, version))
    if not candidates:
        return None
    now = curated_version(ws)
    earlier = [c for c in candidates if c[2] != now]
    return max(earlier or candidates)[1]


def parent_config(ws: Workspace, parent: str | None) -> TrainConfig | None:
    """The training options of a parent run, which a retrain keeps (None: no parent, or one
    with imported samples)."""
    if parent is None or not ws.run(parent).config_path.is_file():
        return None
    return ws.run(parent).read_config()


def check_parent(ws: Workspace, parent: str) -> str:
    """A parent the user picked: an existing run with samples."""
    folder = ws.run(parent)
    if not folder.exists() or not folder.has_samples():
        raise InputError(f"parent run {parent} has no samples to compare with; pick another")
    return parent


def record_lineage(ws: Workspace, parent: str, run: str) -> dict[str, Any]:
    """lineage.json of a retrained run: its parent and the flags between their datasets."""
    record = lineage_record(parent, ws.run(parent).dataset(), ws.run(run).dataset())
    ws.run(run).write_lineage(record)
    return record


def lineage_between(ws: Workspace, a: str, b: str) -> dict[str, Any] | None:
    """The lineage record that links the two runs (either retrained from the other), if any."""
    for child, parent in ((b, a), (a, b)):
        record = ws.run(child).lineage()
        if record is not None and record.get("parent") == parent:
            return {**record, "run": child}
    return None


def stored_side(ws: Workspace, run: str) -> Side:
    """A run's stored analyses (fresh or not) for the comparison."""
    folder = ws.run(run)
    stored = {kind: rec for kind in run_kinds() if (rec := folder.inspection(kind)) is not None
              and isinstance(rec.get("result"), dict)}
    return Side(run, {k: r["result"] for k, r in stored.items()},
                {k: r.get("versions") or {} for k, r in stored.items()})


def analyses_side(run: str, found: dict[str, Analysis | None]) -> Side:
    """A run's analyses as the compare page has them."""
    have = {k: a for k, a in found.items() if a is not None}
    return Side(run, {k: a.result for k, a in have.items()},
                {k: a.versions for k, a in have.items()})


def record_comparison(ws: Workspace, parent: str, run: str) -> dict[str, Any]:
    """Bring the parent's analyses up to date (the flags changed since they were computed, and
    both runs must be measured against the same curated set), compare, write comparison.json."""
    for kind in run_kinds():
        stored = ws.run(parent).inspection(kind)
        if stored is None or stored.get("versions") != current_versions(ws, parent, kind):
            try:
                store_analysis(ws, parent, kind)
            except ModescopeError:
                pass  # the row says the parent's analysis is missing
    record = {**summary(stored_side(ws, parent), stored_side(ws, run)),
              "computed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    ws.run(run).write_comparison(record)
    return record
