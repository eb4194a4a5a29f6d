"""The run folder: paths, log, stats, progress.json, sample grids and checkpoints.

``progress.json`` is the contract with the web app (docs/training.md): written atomically (temp
name + rename) at most about once a second while training and once at the end.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modescope.core.files import atomic_write_bytes

PROGRESS_KEYS = ("status", "step", "total_steps", "epoch", "total_epochs", "d_loss", "g_loss",
                 "images_per_s", "eta_s", "size", "updated_at", "pid")


def image_grid(images: np.ndarray, cols: int | None = None) -> Image.Image:
    """uint8 (N, H, W, 3) -> one grid image, row-major."""
    n, h, w, _ = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = Image.new("RGB", (cols * w, rows * h), (255, 255, 255))
    for i, img in enumerate(images):
        grid.paste(Image.fromarray(img), ((i % cols) * w, (i // cols) * h))
    return grid


def to_pixels(x: Any) -> np.ndarray:
    """Model space [-1, 1] -> uint8 pixels (the inverse of the input pipeline's scaling)."""
    return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def save_png(img: Image.Image, path: Path) -> None:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue(), durable=False)


class Run:
    """Paths and writers of one run folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._last_progress = 0.0

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def log(self, message: str) -> None:
        with open(self.path("log.txt"), "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")

    def stat(self, row: dict[str, Any]) -> None:
        with open(self.path("stats.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def metric(self, row: dict[str, Any]) -> None:
        """A row of metrics.jsonl: the generator's scores at a checkpoint (append-only)."""
        with open(self.path("metrics.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def progress(self, info: dict[str, Any], *, force: bool = False) -> bool:
        """Write progress.json if a second has passed since the last write (or ``force``)."""
        now = time.monotonic()
        if not force and now - self._last_progress < 1.0:
            return False
        self._last_progress = now
        write_progress(self.root, info)
        return True


def write_progress(run_dir: Path, info: dict[str, Any]) -> None:
    """progress.json with every contract key (None where unknown) plus any extras (``error``)."""
    row: dict[str, Any] = {key: info.get(key) for key in PROGRESS_KEYS}
    row.update({k: v for k, v in info.items() if k not in row})
    row["updated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    row["pid"] = os.getpid()
    atomic_write_bytes(Path(run_dir) / "progress.json",
                       (json.dumps(row, indent=1) + "\n").encode(), durable=False)


def save_checkpoint(run: Run, name: str, g: Any, d: Any, opt_g: Any, opt_d: Any,
                    state: dict[str, Any]) -> None:
    """Write a whole checkpoint folder to a temp name, then swap it in."""
    final = run.path("checkpoints", name)
    tmp = run.path("checkpoints", f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    g.save_weights(str(tmp / "generator.weights.h5"))
    d.save_weights(str(tmp / "discriminator.weights.h5"))
    arrays = {**{f"g{i}": np.asarray(v) for i, v in enumerate(opt_g.variables)},
              **{f"d{i}": np.asarray(v) for i, v in enumerate(opt_d.variables)}}
    np.savez(tmp / "optimizers.npz", allow_pickle=False, **arrays)
    (tmp / "state.json").write_text(json.dumps(state))
    old = run.path("checkpoints", f".{name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path, g: Any, d: Any, opt_g: Any, opt_d: Any) -> None:
    g.load_weights(str(folder / "generator.weights.h5"))
    d.load_weights(str(folder / "discriminator.weights.h5"))
    with np.load(folder / "optimizers.npz") as z:
        for i, v in enumerate(opt_g.variables):
            v.assign(z[f"g{i}"])
        for i, v in enumerate(opt_d.variables):
            v.assign(z[f"d{i}"])
