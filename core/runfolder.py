"""``runs/<RUN>/``: one run's files, and the only code that names them (docs/workspace.md).

    config.json        the training options (TrainConfig); its presence makes a run "trained"
    dataset.json       the curated file list and its hash: the dataset version
    evaluation.json    how often and on how many fixed samples the run is scored
    progress.json      live status for the pages (written at most about once a second)
    stats.jsonl        one row per epoch (append-only)
    metrics.jsonl      the generator's scores at checkpoints (append-only)
    log.txt            the trainer's log
    preview.png        the first real batch as the model receives it
    noise.npy          the fixed noise of every epoch's grid
    samples/epoch-NNNN.png   the fixed-noise grid after each epoch
    checkpoints/latest/, checkpoints/epoch-NNNN/   G, D, optimisers and state.json
    tensorboard/       TensorFlow summaries
    generated/NNNNNN.png     generated (or imported) samples
    samples.json       where imported samples came from
    inspection/<ANALYSIS>.json   cached analyses of the samples
    lineage.json       a retrained run's parent and the flags in between (core/lineage.py)
    comparison.json    what changed against the parent, as the retrain job measured it
    job-<ID>.log       a web job's output

The trainer, the indexer, the app and the CLI all read and write a run through ``RunFolder``.
Whole files are written to a temp name and renamed (``atomic_write_bytes``), so a reader never
sees half of one; the JSON-lines files are append-only and a half-written last line is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modescope.core.errors import InputError
from modescope.core.files import atomic_write_bytes, read_json, read_jsonl, tail
from modescope.core.process import pid_alive
from modescope.core.training import TrainConfig

if TYPE_CHECKING:
    from modescope.core.workspace import Workspace

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LATEST = "latest"
CHECKPOINT_NAME = re.compile(r"^(latest|epoch-\d{4,})$")
GRID_FILE = re.compile(r"^epoch-(\d{4,})\.png$")
PROGRESS_KEYS = ("status", "step", "total_steps", "epoch", "total_epochs", "d_loss", "g_loss",
                 "images_per_s", "eta_s", "size", "updated_at", "pid")


def check_run_name(run: str) -> str:
    """A run name is a safe folder name: 1-64 letters, digits, '.', '_' or '-'."""
    if not RUN_NAME.fullmatch(run):
        raise InputError(f"run name {run!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return run


def _json_bytes(payload: Any, indent: int | None = 1) -> bytes:
    return (json.dumps(payload, indent=indent) + "\n").encode("utf-8")


class RunFolder:
    """One run's folder. Creating the object touches nothing on disk."""

    def __init__(self, ws: Workspace, name: str) -> None:
        self.name = check_run_name(name)
        self.root = ws.runs_dir / name
        self._last_progress = 0.0

    def __repr__(self) -> str:
        return f"RunFolder({self.root})"

    # -- paths ----------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def dataset_path(self) -> Path:
        return self.root / "dataset.json"

    @property
    def evaluation_path(self) -> Path:
        return self.root / "evaluation.json"

    @property
    def progress_path(self) -> Path:
        return self.root / "progress.json"

    @property
    def stats_path(self) -> Path:
        return self.root / "stats.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.root / "log.txt"

    @property
    def preview_path(self) -> Path:
        return self.root / "preview.png"

    @property
    def noise_path(self) -> Path:
        return self.root / "noise.npy"

    @property
    def grids_dir(self) -> Path:
        return self.root / "samples"

    def grid_path(self, epoch: int) -> Path:
        return self.grids_dir / f"epoch-{epoch:04d}.png"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint_dir(self, name: str = LATEST) -> Path:
        if not CHECKPOINT_NAME.fullmatch(name):
            raise InputError(f"checkpoint {name!r}: use latest or epoch-NNNN")
        return self.checkpoints_dir / name

    @staticmethod
    def epoch_checkpoint(epoch: int) -> str:
        return f"epoch-{epoch:04d}"

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / "tensorboard"

    @property
    def generated_dir(self) -> Path:
        return self.root / "generated"

    @staticmethod
    def sample_name(n: int) -> str:
        return f"{n:06d}.png"

    @property
    def samples_record_path(self) -> Path:
        """samples.json: where imported samples came from."""
        return self.root / "samples.json"

    def inspection_path(self, analysis: str) -> Path:
        if not RUN_NAME.fullmatch(analysis):
            raise ValueError(f"analysis name {analysis!r} is not a safe file name")
        return self.root / "inspection" / f"{analysis}.json"

    @property
    def lineage_path(self) -> Path:
        """lineage.json: the run this one was retrained from, and the flags in between."""
        return self.root / "lineage.json"

    @property
    def comparison_path(self) -> Path:
        """comparison.json: the measures against the parent when the retrain job ended."""
        return self.root / "comparison.json"

    def job_log_path(self, job_id: int) -> Path:
        return self.root / f"job-{int(job_id)}.log"

    # -- what the run is --------------------------------------------------------------------

    def exists(self) -> bool:
        return self.root.is_dir()

    def is_trained(self) -> bool:
        """A run that ``modescope train`` started (it has a config), not imported samples."""
        return self.config_path.is_file()

    def is_imported(self) -> bool:
        return self.samples_record_path.is_file()

    def has_checkpoint(self, name: str = LATEST) -> bool:
        return (self.checkpoint_dir(name) / "state.json").is_file()

    def has_samples(self) -> bool:
        return self.generated_dir.is_dir()

    def checkpoint_names(self) -> list[str]:
        if not self.checkpoints_dir.is_dir():
            return []
        return sorted(p.name for p in self.checkpoints_dir.iterdir()
                      if CHECKPOINT_NAME.fullmatch(p.name))

    def checkpoint_state(self, name: str = LATEST) -> dict[str, Any]:
        """state.json of a checkpoint: epoch, step, stage, size, wall_s."""
        path = self.checkpoint_dir(name) / "state.json"
        try:
            state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"run {self.name} has no checkpoint {name!r}") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{path} is unreadable ({exc}); resume from another checkpoint "
                             "or start a new run") from None
        return state

    def grid_epochs(self) -> list[int]:
        """Epochs that have a fixed-noise grid, in order."""
        if not self.grids_dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.grids_dir.iterdir()
                      if (m := GRID_FILE.match(p.name)))

    def sample_numbers(self) -> list[int]:
        """Numbers n of the samples ``generated/<n>.png``, in order."""
        try:
            with os.scandir(self.generated_dir) as entries:
                return sorted(int(e.name[:-4]) for e in entries
                              if e.name.endswith(".png") and e.name[:-4].isdigit())
        except FileNotFoundError:
            return []

    def sample_path(self, n: int) -> Path | None:
        """The file of sample n (written as 000042.png; an older run may hold 42.png)."""
        for name in (self.sample_name(n), f"{n}.png"):
            path = self.generated_dir / name
            if path.is_file():
                return path
        return None

    def sample_paths(self) -> list[tuple[int, Path]]:
        """(n, file) of every sample, in order."""
        return [(int(p.stem), p) for p in sorted(self.generated_dir.glob("*.png"))
                if p.stem.isdigit()]

    # -- readers ----------------------------------------------------------------------------

    def config_json(self) -> dict[str, Any] | None:
        raw = read_json(self.config_path)
        return raw if isinstance(raw, dict) else None

    def read_config(self) -> TrainConfig:
        try:
            return TrainConfig.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"run {self.name} has no config.json: it was not trained here"
                             ) from None

    def dataset(self) -> dict[str, Any] | None:
        raw = read_json(self.dataset_path)
        return raw if isinstance(raw, dict) else None

    def evaluation(self) -> dict[str, Any] | None:
        raw = read_json(self.evaluation_path)
        return raw if isinstance(raw, dict) else None

    def samples_record(self) -> dict[str, Any] | None:
        raw = read_json(self.samples_record_path)
        return raw if isinstance(raw, dict) else None

    def stats(self) -> list[dict[str, Any]]:
        return read_jsonl(self.stats_path)

    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics_path)

    def inspection(self, analysis: str) -> dict[str, Any] | None:
        raw = read_json(self.inspection_path(analysis))
        return raw if isinstance(raw, dict) else None

    def lineage(self) -> dict[str, Any] | None:
        raw = read_json(self.lineage_path)
        return raw if isinstance(raw, dict) else None

    def comparison(self) -> dict[str, Any] | None:
        raw = read_json(self.comparison_path)
        return raw if isinstance(raw, dict) else None

    def progress(self) -> dict[str, Any] | None:
        """The trainer's progress.json (a "running" run whose process is gone reads
        "interrupted"), or, before it exists, what the last stats.jsonl row says."""
        progress = read_json(self.progress_path)
        if isinstance(progress, dict):
            if progress.get("status") == "running" and not pid_alive(progress.get("pid")):
                progress = {**progress, "status": "interrupted"}
            return progress
        stats = self.stats()
        if not stats:
            return None
        config = self.config_json() or {}
        last = stats[-1]
        total = config.get("epochs")
        if config.get("progressive"):
            total = sum(config.get("stage_epochs") or []) or total
        done = total is not None and last.get("epoch", 0) >= total
        return {"status": "finished" if done else "stopped", "epoch": last.get("epoch"),
                "total_epochs": total, "step": last.get("step"), "d_loss": last.get("d_loss"),
                "g_loss": last.get("g_loss"), "images_per_s": last.get("images_per_s"),
                "eta_s": None, "from": "stats.jsonl"}

    def status(self) -> str:
        """planned (no folder), a training status, imported, or empty."""
        if not self.exists():
            return "planned"
        if self.is_trained():
            return (self.progress() or {}).get("status") or "unknown"
        return "imported" if self.is_imported() else "empty"

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)

    # -- writers ----------------------------------------------------------------------------

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: TrainConfig) -> None:
        atomic_write_bytes(self.config_path, config.dumps().encode("utf-8"), durable=False)

    def write_dataset(self, record: dict[str, Any]) -> None:
        atomic_write_bytes(self.dataset_path, _json_bytes(record), durable=False)

    def write_evaluation(self, settings: dict[str, Any]) -> None:
        atomic_write_bytes(self.evaluation_path, _json_bytes(settings), durable=False)

    def write_samples_record(self, record: dict[str, Any]) -> None:
        atomic_write_bytes(self.samples_record_path, _json_bytes(record))

    def write_inspection(self, analysis: str, record: dict[str, Any]) -> None:
        atomic_write_bytes(self.inspection_path(analysis), _json_bytes(record, indent=None))

    def write_lineage(self, record: dict[str, Any]) -> None:
        atomic_write_bytes(self.lineage_path, _json_bytes(record))

    def write_comparison(self, record: dict[str, Any]) -> None:
        atomic_write_bytes(self.comparison_path, _json_bytes(record))

    def write_png(self, path: Path, png: bytes) -> None:
        """A PNG of this run (a grid, the preview, a sample) written whole."""
        if self.root not in path.parents:
            raise ValueError(f"{path} is not inside run folder {self.root}")
        atomic_write_bytes(path, png, durable=False)

    def append_stat(self, row: dict[str, Any]) -> None:
        self._append(self.stats_path, row)

    def append_metric(self, row: dict[str, Any]) -> None:
        self._append(self.metrics_path, row)

    def _append(self, path: Path, row: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def log(self, message: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")

    def write_progress(self, info: dict[str, Any], *, force: bool = True) -> bool:
        """progress.json with every contract key (None where unknown) plus any extras
        (``error``); unless ``force``, at most once a second."""
        now = time.monotonic()
        if not force and now - self._last_progress < 1.0:
            return False
        self._last_progress = now
        row: dict[str, Any] = {key: info.get(key) for key in PROGRESS_KEYS}
        row.update({k: v for k, v in info.items() if k not in row})
        row["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        row["pid"] = os.getpid()
        atomic_write_bytes(self.progress_path, _json_bytes(row), durable=False)
        return True

    @contextmanager
    def writing_checkpoint(self, name: str, state: dict[str, Any]) -> Iterator[Path]:
        """A temp folder to write checkpoint ``name`` into; on success it replaces the old one
        whole, with ``state`` as its state.json (the last file: a checkpoint without it is
        not one)."""
        final = self.checkpoint_dir(name)
        tmp = self.checkpoints_dir / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            yield tmp
            (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = self.checkpoints_dir / f".{name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    @contextmanager
    def replacing_samples(self) -> Iterator[Path]:
        """A staging folder for a whole new set of samples; they appear at once on success."""
        staging = self.root / "generated.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(self.generated_dir, ignore_errors=True)
        staging.rename(self.generated_dir)

