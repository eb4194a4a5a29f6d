"""Shared fixtures: run the real CLI in a subprocess, build real image files with Pillow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent

# the session-wide workspaces the app tests (and the installed-wheel test) share, registered here
# so a test asks for them by name instead of importing them
pytest_plugins = ["tests.app.runs_fixtures", "tests.app.dataset_fixtures"]

# Fixtures that train, index with TensorFlow or start a server: every test that uses one (directly
# or through another fixture) is marked ``slow``, as are the browser tests. `pytest -m "not slow"`
# is the quick loop; `make test` runs everything.
SLOW_FIXTURES = frozenset({"runs_workspace_base", "dataset_ws_base", "small_workspace", "server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if uses & SLOW_FIXTURES or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def modescope_cmd() -> list[str]:
    script = BIN / "modescope"
    return [str(script)] if script.exists() else [sys.executable, "-m", "modescope.cli"]


def run_cli(*args: str | Path, env: dict[str, str] | None = None,
            prefix: list[str] | None = None, timeout: float = 300) -> Result:
    full_env = dict(os.environ)
    full_env.pop("MODESCOPE_WORKSPACE", None)  # only what a test sets
    full_env.update(env or {})
    proc = subprocess.run(
        [*(prefix or []), *modescope_cmd(), *map(str, args)], capture_output=True, text=True,
        env=full_env, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> Callable[..., Result]:
    return run_cli


@pytest.fixture(scope="session")
def demo_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-file demo data set (seed 7), written once per test session."""
    out = tmp_path_factory.mktemp("demo") / "data"
    res = run_cli("demo-data", out, "--n", "300", "--seed", "7")
    assert res.code == 0, res.err
    return out


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory, demo_small: Path) -> Path:
    """``demo_small`` ingested at 64 px."""
    ws = tmp_path_factory.mktemp("ws") / "workspace"
    res = run_cli("ingest", demo_small, "--workspace", ws)
    assert res.code == 0, res.err
    return ws


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
