"""A tiny real training run on CPU: 32 px, two synthetic modes, a few hundred images."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import modescope_cmd, run_cli

pytestmark = pytest.mark.slow  # trains

TWO_MODES = ("oval-vivid-dots", "long-teal-grid")


def two_modes(folder: Path) -> int:
    """The demo data's images of two modes (red dotted ovals, teal gridded long masks)."""
    demo = folder.parent / "demo"
    assert run_cli("demo-data", demo, "--n", "700", "--seed", "3").code == 0
    truth = json.loads((demo / "truth.json").read_text())["files"]
    n = 0
    for rel, entry in truth.items():
        if entry["mode"] in TWO_MODES and not entry["duplicate_of"]:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes((demo / rel).read_bytes())
            n += 1
    return n


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    assert two_modes(root / "data") >= 150
    assert run_cli("ingest", root / "data", "-w", root / "ws", "--size", "32").code == 0
    return root / "ws"


def grid_tiles(path: Path, size: int) -> list[np.ndarray]:
    arr = np.asarray(Image.open(path).convert("RGB"))
    return [arr[r:r + size, c:c + size] for r in range(0, arr.shape[0], size)
            for c in range(0, arr.shape[1], size)]


def test_a_tiny_run_writes_its_folder_and_learns_the_colours(workspace: Path) -> None:
    res = run_cli("train", "-w", workspace, "--run", "tiny", "--epochs", "24", "--batch", "32",
                  "--json")
    assert res.code == 0, res.err
    out = res.json()
    run = workspace / "runs" / "tiny"
    n_images = json.loads((run / "dataset.json").read_text())["count"]
    assert out["status"] == "finished" and out["epoch"] == 24
    assert out["step"] == 24 * (n_images // 32)
    for name in ("config.json", "dataset.json", "preview.png", "noise.npy", "log.txt",
                 "samples/epoch-0001.png", "samples/epoch-0024.png",
                 "checkpoints/latest/generator.weights.h5", "checkpoints/latest/state.json"):
        assert (run / name).exists(), name
    conn = sqlite3.connect(workspace / "catalog.sqlite")
    assert n_images == conn.execute(  # the curated set: ok, not held out
        "SELECT COUNT(*) FROM images WHERE status = 'ok' AND id NOT IN"
        " (SELECT image_id FROM holdout)").fetchone()[0]
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [s["epoch"] for s in stats] == list(range(1, 25))
    assert all(np.isfinite([s["d_loss"], s["g_loss"]]).all() for s in stats)

    # the preview shows real training images exactly as fed (or mirrored by the flip)
    sources = [np.asarray(Image.open(p).convert("RGB"))
               for p in (workspace / "images" / "train").rglob("*.png")]
    tiles = grid_tiles(run / "preview.png", 32)[:32]
    for tile in tiles:
        assert any(np.array_equal(tile, s) or np.array_equal(tile, s[:, ::-1])
                   for s in sources), "a preview tile is not a training image"

    # samples move toward the data: their colour statistics approach the real images'
    assert run_cli("generate", "--run", "tiny", "-w", workspace, "--n", "64").code == 0
    gen = np.stack([np.asarray(Image.open(p)) for p in
                    sorted((run / "generated").glob("*.png"))]).astype(float)
    real = np.stack(sources).astype(float)
    import keras

    from modescope.trainer.models import build_generator

    keras.utils.set_random_seed(0)
    init = build_generator(32)
    z = np.random.default_rng(1).standard_normal((64, 100)).astype(np.float32)
    start = (np.asarray(init(z, training=False)) + 1) * 127.5

    def gap(x: np.ndarray) -> float:
        return float(np.abs(x.mean(axis=(0, 1, 2)) - real.mean(axis=(0, 1, 2))).sum()
                     + np.abs(x.std(axis=(0, 1, 2)) - real.std(axis=(0, 1, 2))).sum())

    assert gap(gen) < 0.7 * gap(start), (gap(gen), gap(start))


def test_kill_9_then_resume_continues_from_the_checkpoint(workspace: Path) -> None:
    run = workspace / "runs" / "killed"
    proc = subprocess.Popen([*modescope_cmd(), "train", "-w", str(workspace), "--run", "killed",
                             "--epochs", "30", "--batch", "32"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "checkpoints" / "latest" / "state.json"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 30
    res = run_cli("train", "-w", workspace, "--resume", "killed", "--json")
    assert res.code == 0, res.err
    assert res.json()["epoch"] == 30
    per_epoch = json.loads((run / "dataset.json").read_text())["count"] // 32
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["epoch"] == 30 and stats[-1]["step"] == 30 * per_epoch
    assert "resumed at epoch" in (run / "log.txt").read_text()
