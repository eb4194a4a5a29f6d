"""What the run pages read from ``runs/<RUN>/`` (the trainer and the pipeline are the writers).

Everything is addressed by run name (checked by ``check_run_name``) and numbers (sample n,
epoch e): no path from a URL ever reaches the file system.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.analyses import Analyses, cache_path, current_versions
from app.errors import NotFound
from modescope.errors import InputError
from modescope.runfiles import progress_of, read_json, read_jsonl
from modescope.samples import check_run_name
from modescope.workspace import Workspace

EPOCH_FILE = re.compile(r"^epoch-(\d{4,})\.png$")
LOG_TAIL_LINES = 30


def safe_run(run: str) -> str:
    try:
        return check_run_name(run)
    except InputError as exc:
        raise NotFound(str(exc)) from None


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])



@dataclass(frozen=True)
class Metrics:
    ndb_over_k: float | None = None
    js: float | None = None
    k: int | None = None
    dropped: list[int] = field(default_factory=list)
    copy_rate: float | None = None
    copies: int | None = None
    modes_fresh: bool = False
    memorisation_fresh: bool = False
    checkpoint_epoch: int | None = None  # set when the figures are a checkpoint's scores


@dataclass(frozen=True)
class RunSummary:
    name: str
    kind: str  # "trained" or "imported"
    status: str
    epoch: int | None
    total_epochs: int | None
    samples: int
    indexed: bool
    metrics: Metrics


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    config: dict[str, Any] | None
    dataset: dict[str, Any] | None
    stats: list[dict[str, Any]]
    epochs: list[int]
    metrics_rows: list[dict[str, Any]]
    progress: dict[str, Any] | None
    tensorboard: str | None
    checkpoints: list[str]
    imported_from: str | None
    log_tail: str


class RunsView:
    def __init__(self, ws: Workspace, analyses: Analyses) -> None:
        self.ws = ws
        self.analyses = analyses
        self._numbers: dict[str, tuple[int, list[int]]] = {}

    @property
    def runs_root(self) -> Path:
        return self.ws.root / "runs"

    def folder(self, run: str) -> Path:
        path = self.runs_root / safe_run(run)
        if not path.is_dir():
            raise NotFound(f"no run named {run} in {self.ws.root}")
        return path

    def names(self) -> list[str]:
        if not self.runs_root.is_dir():
            return []
        out = []
        for p in sorted(self.runs_root.iterdir()):
            try:
                check_run_name(p.name)
            except InputError:
                continue
            if p.is_dir():
                out.append(p.name)
        return out

    def sample_numbers(self, run: str) -> list[int]:
        """A run's sample numbers, listed again only when the folder changes (its mtime)."""
        folder = self.folder(run) / "generated"
        try:
            stamp = folder.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        hit = self._numbers.get(run)
        if hit is not None and hit[0] == stamp:
            return list(hit[1])
        with os.scandir(folder) as entries:
            numbers = sorted(int(e.name[:-4]) for e in entries
                             if e.name.endswith(".png") and e.name[:-4].isdigit())
        self._numbers[run] = (stamp, numbers)
        return list(numbers)

    def sample_file(self, run: str, n: int) -> Path:
        folder = self.folder(run) / "generated"
        for name in (f"{n:06d}.png", f"{n}.png"):
            path = folder / name
            if path.is_file():
                return path
        raise NotFound(f"run {run} has no sample {n}")

    def epoch_numbers(self, run: str) -> list[int]:
        folder = self.folder(run) / "samples"
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir()
                      if (m := EPOCH_FILE.match(p.name)))

    def epoch_file(self, run: str, epoch: int) -> Path:
        path = self.folder(run) / "samples" / f"epoch-{epoch:04d}.png"
        if not path.is_file():
            raise NotFound(f"run {run} has no sample grid for epoch {epoch}")
        return path

    def metrics(self, run: str) -> Metrics:
        versions = current_versions(self.ws, run)
        found: dict[str, Any] = {}
        fresh: dict[str, bool] = {}
        for kind in ("modes", "memorisation"):
            record = self.analyses._read(cache_path(self.ws, run, kind))
            if record is not None:
                found[kind] = record["result"]
                fresh[kind] = record.get("versions") == versions
        modes, mem = found.get("modes"), found.get("memorisation")
        if modes is None and mem is None:  # not inspected: the last checkpoint's scores
            rows = read_jsonl(self.folder(run) / "metrics.jsonl")
            if rows and isinstance(rows[-1].get("ndb_over_k"), int | float):
                last = rows[-1]
                return Metrics(ndb_over_k=last["ndb_over_k"], js=last.get("js"),
                               k=last.get("k"), copy_rate=last.get("copy_rate"),
                               modes_fresh=True, memorisation_fresh=True,
                               checkpoint_epoch=last.get("epoch"))
        return Metrics(
            ndb_over_k=modes["ndb_over_k"] if modes else None, js=modes["js"] if modes else None,
            k=modes["k"] if modes else None, dropped=list(modes["dropped"]) if modes else [],
            copy_rate=mem["copy_rate"] if mem else None, copies=mem["copies"] if mem else None,
            modes_fresh=fresh.get("modes", False),
            memorisation_fresh=fresh.get("memorisation", False))

    def summary(self, run: str) -> RunSummary:
        folder = self.folder(run)
        trained = (folder / "config.json").is_file()
        progress = progress_of(folder) if trained else None
        status = progress.get("status", "unknown") if progress else (
            "imported" if (folder / "samples.json").is_file() else "empty")
        return RunSummary(
            name=run, kind="trained" if trained else "imported", status=status,
            epoch=progress.get("epoch") if progress else None,
            total_epochs=progress.get("total_epochs") if progress else None,
            samples=len(self.sample_numbers(run)),
            indexed=(self.ws.root / "index" / f"generated-{run}" / "meta.json").is_file(),
            metrics=self.metrics(run))

    def list_runs(self) -> list[RunSummary]:
        return [self.summary(name) for name in self.names()]

    def detail(self, run: str) -> RunDetail:
        folder = self.folder(run)
        dataset = read_json(folder / "dataset.json")
        if isinstance(dataset, dict):
            dataset = {"count": dataset.get("count"), "sha256": dataset.get("sha256")}
        imported = read_json(folder / "samples.json")
        checkpoints = sorted(p.name for p in (folder / "checkpoints").iterdir()
                             if not p.name.startswith(".")) \
            if (folder / "checkpoints").is_dir() else []
        return RunDetail(
            summary=self.summary(run), config=read_json(folder / "config.json"),
            dataset=dataset, stats=read_jsonl(folder / "stats.jsonl"),
            epochs=self.epoch_numbers(run), metrics_rows=read_jsonl(folder / "metrics.jsonl"),
            progress=progress_of(folder) if (folder / "config.json").is_file() else None,
            tensorboard=str(folder / "tensorboard") if (folder / "tensorboard").is_dir()
            else None,
            checkpoints=checkpoints,
            imported_from=imported.get("source") if isinstance(imported, dict) else None,
            log_tail=tail(folder / "log.txt"))
