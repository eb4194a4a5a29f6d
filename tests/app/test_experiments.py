"""Experiments end to end: a tiny sweep over two data fractions (32 px, CPU) started from the
Experiments page runs as queued training jobs, scores every checkpoint, and the experiment page,
its JSON twin, the CLI and each run's page show the metrics."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modescope.app.main import create_app
from modescope.app.settings import Settings
from tests.conftest import run_cli


@pytest.fixture
def client(runs_ws: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=runs_ws)), base_url="http://127.0.0.1") as c:
        yield c


def csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/experiments").text)
    assert found is not None
    return found.group(1)


def test_bad_experiments_are_refused_before_anything_queues(client: TestClient) -> None:
    token = csrf(client)
    for fields, words in (({"factor": "colour", "values": "1,2"}, "use one of"),
                          ({"factor": "fraction", "values": "0.5"}, "at least two"),
                          ({"factor": "fraction", "values": "0.5,7"}, "not a valid fraction"),
                          ({"factor": "size", "values": "32,48"}, "not a valid size")):
        r = client.post("/experiments", data={"name": "bad", "csrf_token": token, **fields},
                        headers={"accept": "application/json"})
        assert r.status_code == 400 and words in r.text, (fields, r.text)
    assert client.get("/api/jobs").json() == []
    assert client.get("/api/experiments").json() == []


def test_a_two_fraction_sweep_from_the_page_scores_each_checkpoint(
        client: TestClient, runs_ws: Path) -> None:
    r = client.post("/experiments", data={
        "name": "sweep", "factor": "fraction", "values": "0.5,1", "epochs": "2", "batch": "32",
        "size": "32", "eval_every": "1", "eval_samples": "100", "csrf_token": csrf(client)})
    assert r.status_code == 200 and "Experiment sweep" in r.text  # after the 303
    runs = ["sweep-fraction-0.5", "sweep-fraction-1"]
    queued = [j for j in client.get("/api/jobs").json() if j["kind"] == "train"]
    assert sorted(j["run"] for j in queued) == runs
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        rows = client.get("/api/experiments/sweep").json()["rows"]
        if all(row["status"] in ("finished", "failed") for row in rows):
            break
        time.sleep(1)
    assert [row["status"] for row in rows] == ["finished", "finished"], rows
    half, full = rows
    assert half["images"] == round(full["images"] * 0.5)  # the seeded subset
    for row in rows:
        assert [p["epoch"] for p in row["curve"]] == [1, 2]  # every checkpoint scored
        assert 0 <= row["final"]["ndb_over_k"] <= 1 and row["final"]["js"] >= 0
        assert 0 <= row["final"]["copy_rate"] <= 1 and row["final"]["dropped"] is not None
        for key in ("precision_block5", "coverage_block5"):  # fidelity and coverage per run
            assert 0 <= row["final"][key] <= 1, (key, row["final"])
        assert row["final"]["density_block5"] >= 0 and row["final"]["kid_block5"] is not None
        assert row["best"]["ndb_over_k"] == min(p["ndb_over_k"] for p in row["curve"])
        assert row["train_seconds"] > 0 and row["eval_seconds"] > 0

    page = client.get("/experiments/sweep").text
    for run in runs:
        assert f'href="/runs/{run}"' in page
    assert page.count('<polyline class="series series-c') == 2  # one NDB/K curve per run
    assert "fraction 0.5" in page and "fraction 1" in page
    assert ">coverage</th>" in page and ">precision</th>" in page
    assert "sweep" in client.get("/experiments").text

    run_page = client.get(f"/runs/{runs[0]}").text  # per-checkpoint metrics in the run's plot
    assert "Scores per checkpoint" in run_page
    # NDB/K, copy rate, dropped/K and coverage (block5)
    assert run_page.count('<polyline class="series series-c') == 4
    rows_on_page = re.findall(r"<tr><td>(\d+)</td><td>([\d.]+)</td>", run_page)
    assert [int(e) for e, _ in rows_on_page] == [1, 2]

    shown = run_cli("experiment", "run", "sweep", "-w", runs_ws, "--json")  # nothing left to do
    assert shown.code == 0, shown.err
    assert [row["status"] for row in shown.json()["rows"]] == ["finished", "finished"]
    table = run_cli("experiment", "show", "sweep", "-w", runs_ws)
    assert table.code == 0 and "sweep" in table.out and "finished" in table.out
