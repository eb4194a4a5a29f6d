"""Reading a run folder as its writers leave it: JSON files that may be missing, append-only
JSON-lines files whose last line may be half-written, and the live status in progress.json
(a "running" run whose process is gone is "interrupted"). Shared by the CLI (experiments) and
the web app, so both tell a run's state the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of an append-only JSON-lines file; a half-written last line is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def progress_of(folder: Path) -> dict[str, Any] | None:
    """The trainer's progress.json, or, before it exists, the last stats.jsonl row."""
    config = read_json(folder / "config.json") or {}
    progress = read_json(folder / "progress.json")
    if isinstance(progress, dict):
        if progress.get("status") == "running" and not pid_alive(progress.get("pid")):
            progress = {**progress, "status": "interrupted"}
        return progress
    stats = read_jsonl(folder / "stats.jsonl")
    if not stats:
        return None
    last = stats[-1]
    total = config.get("epochs")
    if config.get("progressive"):
        total = sum(config.get("stage_epochs") or []) or total
    done = total is not None and last.get("epoch", 0) >= total
    return {"status": "finished" if done else "stopped", "epoch": last.get("epoch"),
            "total_epochs": total, "step": last.get("step"), "d_loss": last.get("d_loss"),
            "g_loss": last.get("g_loss"), "images_per_s": last.get("images_per_s"),
            "eta_s": None, "from": "stats.jsonl"}
