"""A retrain's plan and its parent, without training: the steps in order, what a resumed job
skips, and which run is the default parent."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from modescope.app import lineage
from modescope.app.analyses import run_kinds
from modescope.app.job_specs import RetrainForm, TrainForm, retrain_job, train_job
from modescope.app.jobs import JobStore
from modescope.app.lineage import default_parent, inspected, lineage_between
from modescope.app.pipeline import done_already, plan
from modescope.core.errors import InputError
from modescope.core.training import TrainConfig, TrainRequest
from modescope.core.workspace import Workspace
from tests.conftest import run_cli


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


def parent_with_options(tmp_path: Path) -> Workspace:
    """A workspace whose last inspected run trained with options other than the defaults."""
    ws = Workspace(tmp_path / "ws")
    ws.open_or_create(64, None)
    fake_run(ws, "parent", ["a", "b"], when=1_000)
    ws.run("parent").write_config(TrainConfig(
        size=32, epochs=7, batch_size=16, gen_filters=32, disc_filters=32, upsample="resize",
        lr_d=1e-4, lr_g=3e-4, label_smoothing=False, seed=5))
    return ws


def test_a_retrain_keeps_its_parents_options_but_those_the_form_changes(
        tmp_path: Path) -> None:
    ws = parent_with_options(tmp_path)
    run, params, argv = retrain_job(ws, RetrainForm(run="child"))
    assert params["parent"] == "parent"
    assert (params["size"], params["epochs"], params["batch"], params["filters"],
            params["upsample"], params["lr_d"], params["lr_g"]) == (
        32, 7, 16, 32, "resize", 1e-4, 3e-4)
    train = json.loads(argv[argv.index("--train-argv") + 1])
    for option in (["--filters", "32"], ["--upsample", "resize"], ["--seed", "5"],
                   ["--lr-g", "0.0003"], ["--no-label-smoothing"]):
        assert " ".join(option) in " ".join(train), (option, train)
    _, changed, _ = retrain_job(ws, RetrainForm(run="child", epochs=3, batch=8))
    assert (changed["epochs"], changed["batch"], changed["filters"]) == (3, 8, 32)
    # every option the parent trained with comes back: its config, unchanged
    parent = ws.run("parent").read_config()
    assert TrainRequest.following(parent, "c").config(64) == parent
    # a progressive parent's stages end at its size: another size trains one stage
    request = TrainRequest.following(TrainConfig(size=64, progressive=(32, 64),
                                                 stage_epochs=(2, 3)), "c", size=32)
    assert request.config(64).progressive == () and request.config(64).size == 32


def test_the_cli_queues_a_retrain_for_the_server(tmp_path: Path) -> None:
    ws = parent_with_options(tmp_path)
    res = run_cli("retrain", "--workspace", ws.root, "--run", "child", "--queue", "--json")
    assert res.code == 0, res.err
    queued = json.loads(res.out)
    store = JobStore(ws.app_db_path)
    job = store.get(queued["job"])
    store.close()
    assert (job.kind, job.run, job.status, job.params["parent"]) == (
        "retrain", "child", "queued", "parent")
    assert "--parent" in job.argv and "resize" in job.argv[job.argv.index("--train-argv") + 1]
    again = run_cli("retrain", "--workspace", ws.root, "--run", "child", "--queue", "--json")
    assert again.code == 0 and json.loads(again.out)["job"] == job.id  # the same job
    other = run_cli("retrain", "--workspace", ws.root, "--run", "child", "--epochs", "2",
                    "--queue")
    assert other.code != 0 and "already has retrain job" in other.err


def test_the_train_form_starts_from_the_parents_options_and_passes_them_on(
        tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from modescope.app.main import create_app
    from modescope.app.settings import Settings

    ws = parent_with_options(tmp_path)
    with TestClient(create_app(Settings(workspace=ws.root))) as client:
        page = client.get("/jobs").text
    form = page[page.index('id="train-form"'):page.index('id="retrain-form"')]
    assert "start from parent's options" in form
    for field, value in (("epochs", "7"), ("batch", "16"), ("filters", "32"),
                         ("lr_d", "0.0001"), ("lr_g", "0.0003")):
        assert re.search(rf'name="{field}"[^>]*value="{value}"', form), (field, form)
    assert '<option value="32" selected>' in form and '<option value="resize" selected>' in form
    run, params, argv = train_job(ws, TrainForm("c", 32, 7, 16, 1e-4, 3e-4, filters=32,
                                                upsample="resize"))
    assert (params["filters"], params["upsample"]) == (32, "resize")
    assert "--filters 32" in " ".join(argv) and "--upsample resize" in " ".join(argv)
    with pytest.raises(InputError, match="upsample"):
        train_job(ws, TrainForm("c", 32, 7, 16, 1e-4, 3e-4, upsample="bilinear"))
