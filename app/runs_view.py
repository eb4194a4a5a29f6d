"""What the run pages read from ``runs/<RUN>/`` (the trainer and the pipeline are the writers).

Everything is addressed by run name (checked by ``check_run_name``) and numbers (sample n,
epoch e): no path from a URL ever reaches the file system.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modescope.app.analyses import Analyses, current_versions
from modescope.core.errors import InputError, NotFound
from modescope.core.runfolder import RunFolder
from modescope.core.workspace import Workspace
from modescope.indexer.analyses.memorisation import MemorisationResult
from modescope.indexer.analyses.modes import ModesResult
from modescope.indexer.store import IndexStore


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
    lineage: dict[str, Any] | None = None  # lineage.json of a retrained run


class RunsView:
    def __init__(self, ws: Workspace, analyses: Analyses) -> None:
        self.ws = ws
        self.analyses = analyses
        self._numbers: dict[str, tuple[int, list[int]]] = {}

    def run(self, run: str) -> RunFolder:
        """An existing run's folder, or a 404 (a bad name is a 404 too: no such run)."""
        try:
            folder = self.ws.run(run)
        except InputError as exc:
            raise NotFound(str(exc)) from None
        if not folder.exists():
            raise NotFound(f"no run named {run} in {self.ws.root}")
        return folder

    def names(self) -> list[str]:
        return self.ws.run_names()

    def sample_numbers(self, run: str) -> list[int]:
        """A run's sample numbers, listed again only when the folder changes (its mtime)."""
        folder = self.run(run)
        try:
            stamp = folder.generated_dir.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        hit = self._numbers.get(run)
        if hit is not None and hit[0] == stamp:
            return list(hit[1])
        numbers = folder.sample_numbers()
        self._numbers[run] = (stamp, numbers)
        return list(numbers)

    def sample_file(self, run: str, n: int) -> Path:
        path = self.run(run).sample_path(n)
        if path is None:
            raise NotFound(f"run {run} has no sample {n}")
        return path

    def epoch_file(self, run: str, epoch: int) -> Path:
        path = self.run(run).grid_path(epoch)
        if not path.is_file():
            raise NotFound(f"run {run} has no sample grid for epoch {epoch}")
        return path

    def metrics(self, run: str) -> Metrics:
        """The run's modes and memorisation figures (stored, fresh or not), or before either
        is stored, its last checkpoint's scores."""
        versions = current_versions(self.ws, run)
        modes, modes_fresh = self.analyses.stored(run, "modes", versions)
        mem, mem_fresh = self.analyses.stored(run, "memorisation", versions)
        if modes is None and mem is None:  # not inspected: the last checkpoint's scores
            rows = self.run(run).metrics()
            if rows and isinstance(rows[-1].get("ndb_over_k"), int | float):
                last = rows[-1]
                return Metrics(ndb_over_k=last["ndb_over_k"], js=last.get("js"),
                               k=last.get("k"), copy_rate=last.get("copy_rate"),
                               modes_fresh=True, memorisation_fresh=True,
                               checkpoint_epoch=last.get("epoch"))
        m: ModesResult | None = modes.value if modes else None
        c: MemorisationResult | None = mem.value if mem else None
        return Metrics(
            ndb_over_k=m.ndb_over_k if m else None, js=m.js if m else None,
            k=m.k if m else None, dropped=list(m.dropped) if m else [],
            copy_rate=c.copy_rate if c else None, copies=c.copies if c else None,
            modes_fresh=modes_fresh, memorisation_fresh=mem_fresh)

    def summary(self, run: str) -> RunSummary:
        folder = self.run(run)
        progress = folder.progress() if folder.is_trained() else None
        status = progress.get("status", "unknown") if progress else folder.status()
        return RunSummary(
            name=run, kind="trained" if folder.is_trained() else "imported", status=status,
            epoch=progress.get("epoch") if progress else None,
            total_epochs=progress.get("total_epochs") if progress else None,
            samples=len(self.sample_numbers(run)),
            indexed=IndexStore(self.ws, f"generated:{run}").meta_path.is_file(),
            metrics=self.metrics(run))

    def list_runs(self) -> list[RunSummary]:
        return [self.summary(name) for name in self.names()]

    def detail(self, run: str) -> RunDetail:
        folder = self.run(run)
        dataset = folder.dataset()
        if dataset is not None:
            dataset = {"count": dataset.get("count"), "sha256": dataset.get("sha256")}
        imported = folder.samples_record()
        return RunDetail(
            summary=self.summary(run), config=folder.config_json(), dataset=dataset,
            stats=folder.stats(), epochs=folder.grid_epochs(), metrics_rows=folder.metrics(),
            progress=folder.progress() if folder.is_trained() else None,
            tensorboard=str(folder.tensorboard_dir) if folder.tensorboard_dir.is_dir()
            else None,
            checkpoints=folder.checkpoint_names(),
            imported_from=imported.get("source") if imported else None,
            log_tail=folder.log_tail(), lineage=folder.lineage())
