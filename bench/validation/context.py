"""One set under one choice of weights: its workspace, its generated runs, the CLI's answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modescope.core.catalog import Catalog, CuratedImage
from modescope.core.workspace import Workspace

from .cli import has_option, modescope
from .sets import Manifest


@dataclass(frozen=True)
class Features:
    """How ``modescope index`` is called: weights, seed (random weights), input size."""

    weights: str  # "random" or a weights file
    seed: int = 0
    input_size: int = 64

    @property
    def tag(self) -> str:
        return "random" if self.weights == "random" else Path(self.weights).name.split(".")[0]

    def args(self) -> list[str]:
        seed = ["--seed", str(self.seed)] if self.weights == "random" else []
        return ["--weights", self.weights, *seed, "--input-size", str(self.input_size)]


@dataclass
class SetRun:
    name: str
    set_dir: Path  # the set's images: test/, ingest/, manifest.json
    root: Path  # this set under these weights: workspace/, cases/, done/, commands.log
    features: Features
    role: str  # "tuning" (thresholds chosen here) or "report"
    size: int = 64  # the workspace's training size
    draws: int = 500  # samples of a collapsed generator
    options: dict[str, list[str]] = field(default_factory=dict)  # analysis -> tuned CLI options
    _cache: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)

    @property
    def manifest(self) -> Manifest:
        return Manifest.load(self.set_dir / "manifest.json")

    @property
    def ws(self) -> Workspace:
        return Workspace(self.root / "workspace")

    def cli(self, *args: str | Path, json_out: bool = True) -> dict[str, Any]:
        self.root.mkdir(parents=True, exist_ok=True)
        return modescope(*args, "-w", self.ws.root, log=self.root / "commands.log",
                         json_out=json_out)

    def step(self, name: str) -> Path:
        """The marker file of a finished step (rerunning the harness skips finished steps)."""
        (self.root / "done").mkdir(parents=True, exist_ok=True)
        return self.root / "done" / name

    def inspect(self, analysis: str, run: str | None = None, *extra: str) -> dict[str, Any]:
        """``modescope inspect ANALYSIS [--run RUN] --json`` with the tuned options (cached)."""
        args = [*(["--run", run] if run else []), *self.options.get(analysis, []), *extra]
        key = (analysis, *args)
        if key not in self._cache:
            self._cache[key] = self.cli("inspect", analysis, *args)
        return self._cache[key]

    def training(self) -> list[CuratedImage]:
        """The training images: curated, held-out images (where the product holds some out)
        excluded."""
        with Catalog.reading(self.ws.catalog_path) as c:
            return c.curated()

    def held_out(self) -> list[CuratedImage]:
        """The workspace's held-out images (none flagged)."""
        with Catalog.reading(self.ws.catalog_path) as c:
            return c.held_out()

    def id_paths(self) -> dict[int, str]:
        """Catalog id -> source path of every ok image, held-out ones included."""
        with Catalog.reading(self.ws.catalog_path) as c:
            return {row.id: row.path for row in c.images("ok", limit=10**7)}

    def offtopic_paths(self) -> set[str]:
        return {str(self.set_dir / "ingest" / rel) for rel in self.manifest.offtopic}

    def test_files(self, groups: list[str] | None = None) -> list[tuple[Path, str]]:
        """(file, group) of the test images, of ``groups`` only when given."""
        return [(self.set_dir / "test" / rel, g) for rel, g in sorted(self.manifest.test.items())
                if groups is None or g in groups]

    def case_tags(self, case: str) -> dict[str, dict[str, Any]]:
        """File name -> what case CASE recorded about the file (its group, what it copies)."""
        tags: dict[str, dict[str, Any]] = json.loads(
            (self.root / "cases" / case / "tags.json").read_text())
        return tags

    def sample_info(self, run: str) -> dict[int, dict[str, Any]]:
        """Sample number -> what the case recorded about the file it came from."""
        record = self.ws.run(run).samples_record() or {}
        tags = self.case_tags(run)
        return {s["n"]: tags.get(Path(s["path"]).name, {}) for s in record.get("samples", [])}

    def prepare(self, holdout: float | None = None) -> None:
        """Ingest the set's ingested images, index them and flag the off-topic strays (each
        once). The strays are flagged as a user who had curated the set would: modes and
        memorisation then judge runs against the on-topic (curated) images, as the honest
        generator draws them; outliers still rank every indexed image."""
        if not self.step("ingest").exists():
            extra = (["--holdout", str(holdout)] if holdout is not None
                     and has_option(("ingest",), "--holdout") else [])
            self.cli("ingest", self.set_dir / "ingest", "--size", str(self.size), *extra)
            self.step("ingest").touch()
        if not self.step("index-train").exists():
            self.cli("index", *self.features.args())
            self.step("index-train").touch()
        if not self.step("flag-offtopic").exists():
            offtopic = self.offtopic_paths()
            ids = sorted(i for i, p in self.id_paths().items() if p in offtopic)
            if ids:
                self.cli("flag", *map(str, ids), "--reason", "off-topic", json_out=False)
            self.step("flag-offtopic").touch()
