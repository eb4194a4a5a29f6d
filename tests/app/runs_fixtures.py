"""A workspace with runs, built once per session with the real CLI.

- the 300-file demo set ingested at 64 px and indexed (random VGG16 weights, seed 0);
- run ``imported``: 120 held-out demo images (another seed) imported as generated samples,
  indexed: real images standing in for a GAN's output;
- run ``tiny``: a real 2-epoch DCGAN at 32 px (stats, epoch grids, checkpoint), 60 samples
  generated and indexed.

Built once per session under the session's base temp folder (tests/conftest.py registers this
module as a plugin, so every test module asks for the fixtures by name); tests that change it
copy it first (``runs_ws``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli


def _ok(*args: str | Path) -> None:
    res = run_cli(*args, timeout=600)
    assert res.code == 0, f"{args}: {res.err[-2000:]}"


def build_runs_workspace(base: Path, demo_small: Path) -> Path:
    ws = base / "workspace"
    if (base / "done").exists():
        return ws
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    held = base / "held-out"
    _ok("demo-data", held, "--n", "120", "--seed", "11")
    _ok("ingest", demo_small, "-w", ws)
    _ok("index", "-w", ws, "--weights", "random", "--seed", "0")
    _ok("import-samples", held, "--run", "imported", "-w", ws)
    _ok("index", "-w", ws, "--source", "generated:imported")
    _ok("train", "-w", ws, "--run", "tiny", "--size", "32", "--epochs", "2", "--batch", "16")
    _ok("generate", "-w", ws, "--run", "tiny", "--n", "60")
    _ok("index", "-w", ws, "--source", "generated:tiny")
    (base / "done").write_text("ok\n")
    return ws


@pytest.fixture(scope="session", name="runs_workspace_base")
def runs_workspace_base_fixture(tmp_path_factory: pytest.TempPathFactory, demo_small: Path) -> Path:
    return build_runs_workspace(tmp_path_factory.getbasetemp() / "runs-ws", demo_small)


@pytest.fixture(name="runs_ws")
def runs_ws_fixture(runs_workspace_base: Path, tmp_path: Path) -> Path:
    """A private copy: tests may flag, train and write analyses in it."""
    ws = tmp_path / "ws"
    shutil.copytree(runs_workspace_base, ws, symlinks=True)
    return ws
