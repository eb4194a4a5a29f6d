"""One family of errors, one handler: every error class derives from ModescopeError, and any of
them answers its own status as JSON ({"error", "detail"}) or as the error page."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import modescope
from modescope.app.main import create_app
from modescope.app.settings import Settings
from modescope.core.errors import (
    Conflict,
    InputError,
    ModescopeError,
    NotFound,
    WorkspaceError,
)

ROOMS = ("core", "cli", "app", "indexer")  # the trainer's modules import TensorFlow


def error_classes() -> list[type[BaseException]]:
    """Every exception class defined in modescope's modules (importing them does nothing)."""
    found = []
    root = Path(modescope.__file__).parent
    for room in ROOMS:
        for info in pkgutil.walk_packages([str(root / room)], f"modescope.{room}."):
            if info.name.endswith(".__main__"):  # runs the CLI when imported
                continue
            module = importlib.import_module(info.name)
            found += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                      if issubclass(obj, BaseException) and obj.__module__ == module.__name__]
    return found


def test_every_error_class_is_one_of_the_family() -> None:
    classes = error_classes()
    assert len(classes) >= 15
    strays = [f"{c.__module__}.{c.__name__}" for c in classes if not issubclass(c, ModescopeError)]
    assert strays == []
    for cls in classes:
        assert isinstance(cls.status, int) and cls.title and isinstance(cls.exit_code, int)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    app = create_app(Settings(workspace=tmp_path_factory.mktemp("errors") / "ws"))
    kinds = {"input": InputError, "missing": NotFound, "conflict": Conflict,
             "workspace": WorkspaceError}

    @app.get("/api/raise/{kind}")
    @app.get("/raise/{kind}")
    def raise_(kind: str) -> None:
        raise kinds[kind](f"the {kind} message: do this")

    return TestClient(app)  # no lifespan: these routes need none of its resources


@pytest.mark.parametrize("kind,status,title", [
    ("input", 400, "Bad request"), ("missing", 404, "Not found"),
    ("conflict", 409, "Not possible yet"), ("workspace", 503, "Workspace not ready")])
def test_one_handler_answers_each_kind_with_its_status(client: TestClient, kind: str,
                                                       status: int, title: str) -> None:
    api = client.get(f"/api/raise/{kind}")
    assert api.status_code == status
    assert api.json() == {"error": title, "detail": f"the {kind} message: do this"}
    asked = client.get(f"/raise/{kind}", headers={"accept": "application/json"})
    assert asked.status_code == status and asked.json()["error"] == title
    page = client.get(f"/raise/{kind}", headers={"accept": "text/html"})
    assert page.status_code == status and page.headers["content-type"].startswith("text/html")
    assert f"the {kind} message: do this" in page.text and title in page.text
