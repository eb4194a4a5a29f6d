"""An indexed workspace for the dataset pages, built once per session with the real CLI.

The 300-file demo set (seed 7) ingested at 64 px and indexed with random VGG16 weights (seed 0).
Tests that flag copy it first (``dataset_ws``); read-only tests may use the base directly.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modescope.app.main import create_app
from modescope.app.settings import Settings
from tests.conftest import run_cli


def _ok(*args: str | Path) -> None:
    res = run_cli(*args, timeout=600)
    assert res.code == 0, f"{args}: {res.err[-2000:]}"


@pytest.fixture(scope="session")
def dataset_ws_base(tmp_path_factory: pytest.TempPathFactory, demo_small: Path) -> Path:
    base = tmp_path_factory.getbasetemp() / "dataset-ws"
    ws = base / "workspace"
    if not (base / "done").exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        _ok("ingest", demo_small, "-w", ws)
        _ok("index", "-w", ws, "--weights", "random", "--seed", "0")
        (base / "done").write_text("ok\n")
    return ws


@pytest.fixture
def dataset_ws(dataset_ws_base: Path, tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(dataset_ws_base, ws, symlinks=True)
    return ws


def client_for(ws: Path, **settings: object) -> TestClient:
    return TestClient(create_app(Settings(workspace=ws, **settings)),  # type: ignore[arg-type]
                      base_url="http://127.0.0.1")


def csrf(client: TestClient) -> str:
    html = client.get("/dataset?view=flagged").text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)
