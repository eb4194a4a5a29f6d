"""The workspace folder: the contract between app, indexer and trainer (docs/workspace.md).

Layout::

    <workspace>/
      workspace.json          format version, training size, fit
      catalog.sqlite          SQLite (WAL) catalog of every file ever ingested
      images/train/ab/<sha256>.png   normalised copies, named by the source file's sha256
      locks/                  advisory locks (one ingest at a time)
      index/<source>/         feature chunks and FAISS indexes (indexer/store.py)
      runs/<RUN>/             one run's files (core/runfolder.py)
      experiments/<NAME>.json sweeps of runs (core/experiment.py)
      app.sqlite              the web app's jobs and login throttle

``Workspace`` names these paths; nothing else builds them from literals.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from modescope.core.errors import InputError, WorkspaceError
from modescope.core.files import atomic_write_bytes
from modescope.core.runfolder import RunFolder, check_run_name

FORMAT_VERSION = 1
SIZES = (32, 64, 128, 256)
DEFAULT_SIZE = 64
DEFAULT_HOLDOUT = 0.1
Fit = Literal["crop", "pad"]
DEFAULT_WORKSPACE = "modescope-workspace"
WORKSPACE_ENV = "MODESCOPE_WORKSPACE"


@dataclass(frozen=True)
class WorkspaceConfig:
    """What every image in the workspace was normalised to; fixed by the first ingest."""

    image_size: int = DEFAULT_SIZE
    fit: Fit = "crop"
    version: int = FORMAT_VERSION
    holdout: float = DEFAULT_HOLDOUT  # share of ok images held out (core/holdout.py)

    def __post_init__(self) -> None:
        if self.image_size not in SIZES:
            raise WorkspaceError(
                f"training size {self.image_size} is not supported; use one of "
                f"{', '.join(map(str, SIZES))}"
            )
        if self.fit not in ("crop", "pad"):
            raise WorkspaceError(f"fit {self.fit!r} is not supported; use crop or pad")
        if not 0 <= self.holdout < 0.5:
            raise WorkspaceError(f"held-out share {self.holdout} is not supported; use a share "
                                 "in [0, 0.5), e.g. 0.1 (0 turns the held-out split off)")


class Workspace:
    """Paths inside one workspace folder. Creating the object touches nothing on disk."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().absolute()

    @property
    def config_path(self) -> Path:
        return self.root / "workspace.json"

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def app_db_path(self) -> Path:
        """The web app's own state (jobs, login failures); the catalog stays the data's."""
        return self.root / "app.sqlite"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def experiments_dir(self) -> Path:
        return self.root / "experiments"

    def run(self, name: str) -> RunFolder:
        """The folder of run ``name`` (checked as a safe name; nothing is created)."""
        return RunFolder(self, name)

    def run_names(self) -> list[str]:
        """Every run folder, by name."""
        if not self.runs_dir.is_dir():
            return []
        out = []
        for p in sorted(self.runs_dir.iterdir()):
            try:
                check_run_name(p.name)
            except InputError:
                continue
            if p.is_dir():
                out.append(p.name)
        return out

    @property
    def train_dir(self) -> Path:
        return self.root / "images" / "train"

    @property
    def lock_dir(self) -> Path:
        return self.root / "locks"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def train_file(self, sha256: str) -> Path:
        """Where the normalised copy of a source file with this content hash lives."""
        return self.train_dir / sha256[:2] / f"{sha256}.png"

    def relative(self, path: Path) -> str:
        """How the catalog and the jobs table record a path: relative to the workspace."""
        return path.relative_to(self.root).as_posix()

    def resolve(self, relative: str) -> Path:
        """The file behind a path recorded relative to the workspace (``relative``'s inverse)."""
        return self.root / relative

    def read_config(self) -> WorkspaceConfig:
        try:
            raw = json.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WorkspaceError(
                f"{self.root} is not a modescope workspace (no workspace.json); "
                "run `modescope ingest DIR --workspace ...` to create one"
            ) from None
        except (OSError, ValueError) as exc:
            raise WorkspaceError(
                f"cannot read {self.config_path}: {exc}; fix or remove the file"
            ) from None
        if raw.get("version") != FORMAT_VERSION:
            raise WorkspaceError(
                f"{self.config_path} has format version {raw.get('version')!r}; this modescope "
                f"reads version {FORMAT_VERSION}: upgrade modescope or use a new workspace"
            )
        return WorkspaceConfig(image_size=int(raw["image_size"]), fit=raw["fit"],
                               holdout=float(raw.get("holdout", DEFAULT_HOLDOUT)))

    def open_or_create(self, size: int | None, fit: Fit | None,
                       holdout: float | None = None) -> WorkspaceConfig:
        """Return the workspace's config, creating the folder on first use.

        An existing workspace keeps its size and fit: asking for others is an error, since
        mixing sizes would silently break the indexes and the trainer. The held-out share may
        change (the next ingest moves images in or out of the held-out split).
        """
        if self.exists():
            config = self.read_config()
            if size is not None and size != config.image_size:
                raise WorkspaceError(
                    f"workspace {self.root} holds {config.image_size}-px images; ingest with "
                    f"--size {config.image_size} or choose a new --workspace for {size} px"
                )
            if fit is not None and fit != config.fit:
                raise WorkspaceError(
                    f"workspace {self.root} was ingested with --fit {config.fit}; use it again "
                    f"or choose a new --workspace for --fit {fit}"
                )
            if holdout is None or holdout == config.holdout:
                return config
            config = replace(config, holdout=holdout)
            self._write_config(config)
            return config
        config = WorkspaceConfig(image_size=size or DEFAULT_SIZE, fit=fit or "crop",
                                 holdout=DEFAULT_HOLDOUT if holdout is None else holdout)
        try:
            self.train_dir.mkdir(parents=True, exist_ok=True)
            self.lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"cannot create workspace {self.root}: {exc.strerror}") from None
        self._write_config(config)
        return config

    def _write_config(self, config: WorkspaceConfig) -> None:
        payload = json.dumps(asdict(config), indent=2) + "\n"
        atomic_write_bytes(self.config_path, payload.encode("utf-8"))

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold an exclusive advisory lock, or fail at once naming who holds it."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        path = self.lock_dir / f"{name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise WorkspaceError(
                    f"another {name} is running on workspace {self.root} (pid {holder}); "
                    "wait for it to finish or stop it"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)
