"""A retrain's plan and its parent, without training: the steps in order, what a resumed job
skips, and which run is the default parent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modescope.app import lineage
from modescope.app.analyses import run_kinds
from modescope.app.lineage import default_parent, inspected, lineage_between
from modescope.app.pipeline import done_already, plan
from modescope.core.workspace import Workspace


def fake_run(ws: Workspace, name: str, files: list[str], when: float,
             inspect: bool = True) -> None:
    folder = ws.run(name)
    folder.create()
    folder.write_dataset({"count": len(files), "sha256": "-".join(files), "files": files})
    os.utime(folder.dataset_path, (when, when))
    if inspect:
        folder.write_inspection("modes", {"versions": {}, "result": {}})


def test_a_retrain_trains_first_and_compares_last(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    steps = plan(ws, "new", 20, False, train=["modescope", "train"], parent="old")
    assert [s.text for s in steps] == [
        "train on the curated set", "generate samples", "index samples",
        *[f"inspect {k}" for k in run_kinds()], "compare with old"]
    assert steps[0].action == "train" and steps[-1].action == "compare"
    assert not any(done_already(ws, "new", 20, s) for s in steps)  # nothing written yet
    plain = plan(ws, "new", 20, False)
    assert [s.text for s in plain] == [s.text for s in steps[1:-1]]


def test_a_resumed_retrain_skips_what_is_written_and_current(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    folder = ws.run("new")
    folder.create()
    folder.write_progress({"status": "finished"})
    folder.generated_dir.mkdir()
    for n in range(3):
        (folder.generated_dir / folder.sample_name(n)).write_bytes(b"png")
    steps = {s.text: s for s in plan(ws, "new", 3, False, train=["t"], parent="old")}
    assert done_already(ws, "new", 3, steps["train on the curated set"])
    assert done_already(ws, "new", 3, steps["generate samples"])
    assert not done_already(ws, "new", 4, steps["generate samples"])  # fewer than asked for
    assert not done_already(ws, "new", 3, steps["index samples"])  # no index yet
    assert not done_already(ws, "new", 3, steps["compare with old"])  # always made again


def test_the_default_parent_is_the_last_inspected_run_on_another_dataset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace(tmp_path)
    assert default_parent(ws) is None
    fake_run(ws, "first", ["a", "b"], when=1_000)
    fake_run(ws, "second", ["a", "b", "c"], when=2_000)
    fake_run(ws, "third", ["a"], when=3_000, inspect=False)  # not inspected: never a parent
    assert inspected(ws, "second") and not inspected(ws, "third")
    # no catalog: the curated set's version is unknown, so every dataset differs from it
    assert default_parent(ws) == "second"
    # the curated set is still what "second" trained on: the flags that matter came before it
    monkeypatch.setattr(lineage, "curated_version", lambda _: "a-b-c")
    assert default_parent(ws) == "first"
    monkeypatch.setattr(lineage, "curated_version", lambda _: "a-b")
    assert default_parent(ws) == "second"


def test_lineage_between_finds_either_direction(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.run("child").create()
    ws.run("child").write_lineage({"parent": "mother", "flagged": [], "unflagged": []})
    assert lineage_between(ws, "mother", "child")["run"] == "child"  # type: ignore[index]
    assert lineage_between(ws, "child", "mother")["run"] == "child"  # type: ignore[index]
    assert lineage_between(ws, "child", "other") is None
