"""A small ingested workspace (about 60 demo images at 32 px) shared by the trainer tests; each
test trains its own run name in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="session")
def small_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    assert run_cli("demo-data", root / "data", "--n", "60", "--seed", "1").code == 0
    assert run_cli("ingest", root / "data", "-w", root / "ws", "--size", "32").code == 0
    return root / "ws"
