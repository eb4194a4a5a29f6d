"""Retrain and inspect as one job, through HTTP: flag, retrain on the curated set, and the new
run has samples, fresh analyses, its lineage and a comparison with its parent; cancelled, it
resumes and finishes; the job log holds the commands' own lines only."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modescope.app.analyses import current_versions, run_kinds
from modescope.app.main import create_app
from modescope.app.settings import Settings
from modescope.core.workspace import Workspace
from modescope.indexer.run_compare import MEASURES, VERDICTS
from tests.app.test_jobs import csrf, group_alive, jobs, wait, wait_for_epoch

NOISE = re.compile(r"cuInit|cuda|absl|oneDNN|TF_CPP|tensorflow/|WARNING: All log messages",
                   re.IGNORECASE)


@pytest.fixture
def client(runs_ws: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=runs_ws))) as c:
        yield c


def retrain(client: TestClient, **fields: Any) -> Any:
    form = {"size": "32", "epochs": "1", "batch": "16", "n": "60", "csrf_token": csrf(client),
            **{k: str(v) for k, v in fields.items()}}
    return client.post("/jobs/retrain", data=form, headers={"accept": "application/json"})


def inspect_and_flag(client: TestClient, run: str, ids: list[int]) -> None:
    """The parent has stored analyses; then the user flags a few training images."""
    for kind in ("modes", "memorisation"):
        assert client.get(f"/api/runs/{run}/analyses/{kind}").status_code == 200
    res = client.post("/api/dataset/flag", json={"ids": ids, "reason": "noisy"},
                      headers={"X-CSRF-Token": csrf(client)})
    assert res.status_code == 200 and res.json()["changed"] == ids


def test_retrain_and_inspect_chains_every_step_and_compares_with_the_parent(
        client: TestClient, runs_ws: Path) -> None:
    inspect_and_flag(client, "tiny", [3, 5, 8])
    page = client.get("/jobs").text
    assert 'id="retrain-form"' in page and "last inspected: tiny" in page
    assert "keeps its parent's training options (32 px, 2 epochs, batch 16, 64 filters" in page
    res = retrain(client, run="after")
    assert res.status_code == 202, res.text
    job = res.json()
    assert job["kind"] == "retrain" and job["params"]["parent"] == "tiny"
    done = wait(client, job["id"], ("finished", "failed", "cancelled"), timeout=600)
    assert done["status"] == "finished", done["log_tail"]
    steps = 3 + len(run_kinds()) + 1  # train, generate, index, each analysis, compare
    assert done["progress"] == done["progress_max"] == steps
    folder = runs_ws / "runs" / "after"
    assert len(list((folder / "generated").glob("*.png"))) == 60
    for kind in ("modes", "memorisation"):
        record = json.loads((folder / f"inspection/{kind}.json").read_text())
        assert record["versions"] == current_versions(Workspace(runs_ws), "after", kind)
    lineage = json.loads((folder / "lineage.json").read_text())
    assert lineage["parent"] == "tiny" and len(lineage["flagged"]) == 3
    assert lineage["unflagged"] == []
    stored = json.loads((folder / "comparison.json").read_text())
    log = (folder / f"job-{job['id']}.log").read_text()
    assert f"[pipeline] step 1/{steps}: train on the curated set" in log
    assert f"[pipeline] step {steps}/{steps}: compare with tiny" in log
    assert stored["sentence"] in log
    assert not [line for line in log.splitlines() if NOISE.search(line)], log
    out = client.get("/api/compare", params={"a": "tiny", "b": "after"}).json()
    summary = out["summary"]
    assert summary["sentence"] == stored["sentence"]  # the parent's analyses were refreshed
    assert [r["measure"] for r in summary["rows"]] == [m.name for m in MEASURES]
    assert all(r["verdict"] in VERDICTS[:3] for r in summary["rows"]), summary
    assert out["lineage"]["parent"] == "tiny" and len(out["lineage"]["flagged"]) == 3
    assert "retrained from tiny after 3 flags: +3 flagged" in out["lineage"]["words"]
    run_page = client.get("/runs/after").text
    assert "retrained from tiny after 3 flags" in run_page
    assert 'href="/compare?a=tiny&amp;b=after"' in run_page
    html = client.get("/compare", params={"a": "tiny", "b": "after"}).text
    assert "Did curation help?" in html and summary["sentence"] in html
    assert 'href="/compare?a=tiny&amp;b=after"' in client.get("/jobs").text


def test_a_cancelled_retrain_stops_its_children_and_resumes_to_the_end(
        client: TestClient, runs_ws: Path) -> None:
    inspect_and_flag(client, "tiny", [4])
    job = retrain(client, run="again", epochs=4, parent="tiny").json()
    assert job["params"]["parent"] == "tiny"
    wait_for_epoch(runs_ws, "again")
    res = client.post(f"/jobs/{job['id']}/cancel", data={"csrf_token": csrf(client)})
    assert res.status_code == 200
    done = wait(client, job["id"], ("cancelled", "finished", "failed"), timeout=120)
    assert done["status"] == "cancelled" and done["resumable"], done["log_tail"]
    side = client.app.state.runs_side  # type: ignore[attr-defined]
    assert not group_alive(side.jobs.db.get(job["id"]).pid)  # the trainer died with it
    res = client.post(f"/jobs/{job['id']}/resume", data={"csrf_token": csrf(client)},
                      headers={"accept": "application/json"})
    assert res.status_code == 202, res.text
    new = res.json()
    assert new["kind"] == "retrain" and new["params"]["resumes"] == job["id"]
    finished = wait(client, new["id"], ("finished", "failed", "cancelled"), timeout=600)
    assert finished["status"] == "finished", finished["log_tail"]
    log = (runs_ws / f"runs/again/job-{new['id']}.log").read_text()
    # cancelled while training (or, on a fast machine, just after): resumed where it stopped
    assert "resuming training from its checkpoint (epoch " in log or "(done already)" in log
    stats = (runs_ws / "runs/again/stats.jsonl").read_text().splitlines()
    assert json.loads(stats[-1])["epoch"] == 4
    assert json.loads((runs_ws / "runs/again/lineage.json").read_text())["flagged"]


def test_a_queued_job_shows_no_progress_bar(client: TestClient) -> None:
    first = retrain(client, run="busy", epochs=50).json()
    second = retrain(client, run="waits").json()
    assert jobs(client)[second["id"]]["status"] == "queued"
    html = client.get("/jobs").text
    row = html[html.index(f'id="job-{second["id"]}"'):]
    row = row[:row.index("</tr>")]
    assert "<progress" not in row and "waiting for a free worker" in row
    assert jobs(client)[second["id"]]["progress"] is None
    for j in (second, first):
        client.post(f"/jobs/{j['id']}/cancel", data={"csrf_token": csrf(client)})
    wait(client, first["id"], ("cancelled", "finished", "failed"), timeout=120)
