"""Jobs through HTTP: validated before start, real worker processes, queue, cancel, interrupted
and resumed after a server restart, and the pipeline writing a run's analyses."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modescope.app.analyses import current_versions, run_kinds
from modescope.app.main import create_app
from modescope.app.settings import Settings
from modescope.core.workspace import Workspace

TIMEOUT_S = 240


@pytest.fixture
def client(runs_ws: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=runs_ws))) as c:
        yield c


def csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/jobs").text)
    assert found is not None
    return found.group(1)


def train(client: TestClient, **fields: Any) -> Any:
    form = {"size": "32", "epochs": "1", "batch": "16", "lr_d": "0.0002", "lr_g": "0.0002",
            "csrf_token": csrf(client), **{k: str(v) for k, v in fields.items()}}
    return client.post("/jobs/train", data=form, headers={"accept": "application/json"})


def jobs(client: TestClient) -> dict[int, dict[str, Any]]:
    return {j["id"]: j for j in client.get("/api/jobs").json()}


def wait(client: TestClient, job_id: int, statuses: tuple[str, ...],
         timeout: float = TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs(client)[job_id]
        if job["status"] in statuses:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} is {jobs(client)[job_id]} after {timeout} s")


def wait_for_epoch(ws: Path, run: str, timeout: float = TIMEOUT_S) -> None:
    stats = ws / "runs" / run / "stats.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stats.is_file() and stats.read_text().strip() and \
                (ws / "runs" / run / "checkpoints" / "latest" / "state.json").is_file():
            return
        time.sleep(0.3)
    raise AssertionError(f"run {run} wrote no epoch within {timeout} s")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_bad_parameters_are_refused_before_any_process_starts(client: TestClient) -> None:
    res = train(client, size=48)
    assert res.status_code == 400 and "size 48: use one of 32, 64, 128, 256" in res.json()["detail"]
    res = train(client, progressive="32,64", stage_epochs="1", size=64)
    assert res.status_code == 400 and "stage_epochs" in res.json()["detail"]
    res = train(client, run="../etc")
    assert res.status_code == 400 and "run name" in res.json()["detail"]
    assert train(client, run="tiny").status_code == 409
    assert train(client, lr_d="0").status_code == 400
    assert jobs(client) == {}
    html = client.post("/jobs/train", data={"size": "48", "csrf_token": csrf(client)}).text
    assert "size 48" in html


def test_posts_without_the_csrf_token_are_refused(client: TestClient) -> None:
    res = client.post("/jobs/train", data={"size": "32", "epochs": "1"})
    assert res.status_code == 403
    assert client.post("/jobs/1/cancel").status_code == 403
    assert jobs(client) == {}


def test_a_retrain_runs_as_a_worker_the_next_one_queues_and_both_finish(
        client: TestClient, runs_ws: Path) -> None:
    first = train(client, run="retrain-a").json()
    second = train(client, run="retrain-b").json()
    assert first["status"] in ("queued", "running") and second["status"] == "queued"
    running = wait(client, first["id"], ("running", "finished", "failed"))
    assert jobs(client)[second["id"]]["status"] == "queued"  # one training job at a time
    assert running["status"] != "failed", running["log_tail"]
    done = wait(client, first["id"], ("finished", "failed", "cancelled"))
    assert done["status"] == "finished", done["log_tail"]
    assert done["progress"] == done["progress_max"]
    done2 = wait(client, second["id"], ("finished", "failed", "cancelled"))
    assert done2["status"] == "finished", done2["log_tail"]
    folder = runs_ws / "runs" / "retrain-a"
    config = json.loads((folder / "config.json").read_text())
    assert (config["size"], config["epochs"], config["batch_size"]) == (32, 1, 16)
    assert len((folder / "stats.jsonl").read_text().splitlines()) == 1
    log = (folder / f"job-{first['id']}.log").read_text()
    assert "train --workspace" in log and '"status": "finished"' in log
    html = client.get("/jobs").text
    assert f'id="job-{first["id"]}" class="job" data-status="finished"' in html
    assert "<progress" in html and 'http-equiv="refresh"' not in html


def test_cancel_stops_the_whole_process_group(client: TestClient, runs_ws: Path) -> None:
    job = train(client, run="long", epochs=300).json()
    wait_for_epoch(runs_ws, "long")
    running = jobs(client)[job["id"]]
    assert running["status"] == "running" and running["progress"] is not None
    assert running["eta_s"] is not None and running["eta_s"] > 0
    live = client.get("/runs/long").text  # the run page follows progress.json while it runs
    assert 'class="live"' in live and "<progress" in live and 'http-equiv="refresh"' in live
    assert client.get("/api/runs/long").json()["progress"]["status"] == "running"
    res = client.post(f"/jobs/{job['id']}/cancel", data={"csrf_token": csrf(client)})
    assert res.status_code == 200  # redirected to /jobs
    done = wait(client, job["id"], ("cancelled", "finished", "failed"), timeout=60)
    assert done["status"] == "cancelled"
    side = client.app.state.runs_side  # type: ignore[attr-defined]
    pgid = side.jobs.db.get(job["id"]).pid
    assert not group_alive(pgid)
    assert done["resumable"] is True
    assert client.post(f"/jobs/{job['id']}/cancel", data={"csrf_token": csrf(client)},
                       headers={"accept": "application/json"}).status_code == 400


def test_a_worker_lost_with_the_server_is_interrupted_and_resumes(runs_ws: Path) -> None:
    with TestClient(create_app(Settings(workspace=runs_ws))) as client:
        job = train(client, run="crash", epochs=6).json()
        wait_for_epoch(runs_ws, "crash")
        pgid = client.app.state.runs_side.jobs.db.get(job["id"]).pid  # type: ignore[attr-defined]
    # the server is gone; the machine "dies" under the worker too
    os.killpg(pgid, signal.SIGKILL)
    os.waitpid(pgid, 0)  # this test process is the worker's parent: reap it
    with TestClient(create_app(Settings(workspace=runs_ws))) as client:
        old = jobs(client)[job["id"]]
        assert old["status"] == "interrupted" and old["resumable"]
        assert f'action="/jobs/{job["id"]}/resume"' in client.get("/jobs").text
        res = client.post(f"/jobs/{job['id']}/resume", data={"csrf_token": csrf(client)},
                          headers={"accept": "application/json"})
        assert res.status_code == 202, res.text
        new = res.json()
        assert new["run"] == "crash" and new["params"]["resumes"] == job["id"]
        done = wait(client, new["id"], ("finished", "failed", "cancelled"))
        assert done["status"] == "finished", done["log_tail"]
    stats = [json.loads(x) for x in (runs_ws / "runs/crash/stats.jsonl").read_text().splitlines()]
    assert stats[-1]["epoch"] == 6
    assert "--resume crash" in (runs_ws / f"runs/crash/job-{new['id']}.log").read_text()


def test_the_pipeline_generates_indexes_and_inspects_a_run(client: TestClient,
                                                           runs_ws: Path) -> None:
    res = client.post("/jobs/pipeline", data={"run": "tiny", "n": "80", "csrf_token": csrf(client)},
                      headers={"accept": "application/json"})
    assert res.status_code == 202, res.text
    done = wait(client, res.json()["id"], ("finished", "failed", "cancelled"))
    assert done["status"] == "finished", done["log_tail"]
    assert done["progress"] == done["progress_max"] == 2 + len(run_kinds())  # generate, index
    assert len(list((runs_ws / "runs/tiny/generated").glob("*.png"))) == 80
    for kind in ("modes", "memorisation"):
        record = json.loads((runs_ws / f"runs/tiny/inspection/{kind}.json").read_text())
        assert record["versions"] == current_versions(Workspace(runs_ws), "tiny", kind)
    mem = json.loads((runs_ws / "runs/tiny/inspection/memorisation.json").read_text())
    assert mem["result"]["n_samples"] == 80
    tiny = {r["name"]: r for r in client.get("/api/runs").json()}["tiny"]
    assert tiny["metrics"]["modes_fresh"] and tiny["metrics"]["memorisation_fresh"]
    res = client.post("/jobs/pipeline", data={"run": "nope", "n": "10", "csrf_token": csrf(client)},
                      headers={"accept": "application/json"})
    assert res.status_code == 400 and "neither a checkpoint" in res.json()["detail"]


def test_a_progressive_schedule_from_the_form_reaches_the_trainer(client: TestClient,
                                                                 runs_ws: Path) -> None:
    res = train(client, run="grow", size=64, progressive="32, 64", stage_epochs="1,1")
    assert res.status_code == 202, res.text
    assert res.json()["params"]["total_epochs"] == 2
    done = wait(client, res.json()["id"], ("finished", "failed", "cancelled"))
    assert done["status"] == "finished", done["log_tail"]
    config = json.loads((runs_ws / "runs/grow/config.json").read_text())
    assert (config["size"], config["progressive"], config["stage_epochs"]) == (64, [32, 64],
                                                                             [1, 1])
    assert [r["epoch"] for r in map(json.loads, (runs_ws / "runs/grow/stats.jsonl")
                                    .read_text().splitlines())] == [1, 2]
