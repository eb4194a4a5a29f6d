"""The fidelity analyses through HTTP and the CLI: the never-reached page and its JSON twin, the
modes page's reached share per bin, the run page's link, and ``modescope inspect prdc`` /
``distances`` agreeing with the stored analyses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modescope.app.main import create_app
from modescope.app.settings import Settings
from tests.conftest import run_cli


@pytest.fixture
def client(runs_ws: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=runs_ws, analysis_wait_s=300))) as c:
        yield c


def test_never_reached_lists_exactly_the_unreached_training_images_by_bin(
        client: TestClient) -> None:
    prdc = client.get("/api/runs/imported/analyses/prdc").json()["result"]
    modes = client.get("/api/runs/imported/modes").json()["result"]
    for layer in ("block5", "block1"):
        reach = next(x for x in prdc["layers"] if x["layer"] == layer)["reach"]
        unreached = {int(i) for i, n in reach.items() if n == 0}
        body = client.get(f"/api/runs/imported/never-reached?layer={layer}").json()
        assert body["layer"] == layer and body["binned"] is True
        assert body["never_reached"] == len(unreached)
        listed = [img["id"] for g in body["groups"] for img in g["never_reached"]]
        assert sorted(listed) == sorted(unreached)
        for g in body["groups"]:
            members = [int(i) for i, b in modes["train_bin_of"].items() if b == g["bin"]]
            assert g["train_count"] == len(members)
            assert {img["id"] for img in g["never_reached"]} <= set(members)
            missed = sum(reach[str(i)] == 0 for i in members)
            assert g["reached_share"] == pytest.approx(1 - missed / len(members), abs=1e-4)
            for img in g["never_reached"]:
                assert img["image"].endswith(f"/images/train/{img['id']}.png")
        html = client.get(f"/runs/imported/never-reached?layer={layer}").text
        assert f'id="never-reached">{len(unreached)} of {prdc["layers"][0]["n_train"]}' in html
        for i in unreached:
            assert f'src="/images/train/{i}.png"' in html
        assert "style=" not in html
    assert client.get("/runs/imported/never-reached?layer=block9").status_code == 422
    assert client.get("/runs/nothing/never-reached").status_code == 404


def test_modes_page_shows_each_bins_reached_share_and_the_run_page_links_it(
        client: TestClient) -> None:
    prdc = client.get("/api/runs/imported/analyses/prdc").json()["result"]
    groups = client.get("/api/runs/imported/never-reached").json()["groups"]
    html = client.get("/runs/imported/modes").text
    assert prdc["layers"][0]["layer"] in ("block1", "block5")
    for g in groups:
        assert f'id="reached-{g["bin"]}">{g["reached_share"] * 100:.0f}%' in html
    assert "style=" not in html
    run_page = client.get("/runs/imported").text
    assert 'href="/runs/imported/never-reached"' in run_page
    paths = client.get("/openapi.json").json()["paths"]
    assert "/runs/{run}/never-reached" in paths and "/api/runs/{run}/never-reached" in paths


def test_inspect_prdc_and_distances_on_the_command_line_match_the_stored_analyses(
        client: TestClient, runs_ws: Path) -> None:
    res = run_cli("inspect", "prdc", "--run", "imported", "-w", runs_ws, "--json")
    assert res.code == 0, res.err
    stored = client.get("/api/runs/imported/analyses/prdc").json()["result"]
    assert res.json() == stored  # computed in another process: the same numbers
    cli = res.json()
    assert cli["reference"] is not None and cli["n_reference"] > 0  # the held-out split
    for layer in cli["layers"]:
        s = layer["samples"]
        for m in ("precision", "recall", "density", "coverage"):
            lo, hi = s[f"{m}_ci95"]
            assert lo <= s[m] <= hi, m
        assert layer["never_reached"] == sum(n == 0 for n in layer["reach"].values())
        assert layer["reference"]["n"] == cli["n_reference"]
    text = run_cli("inspect", "prdc", "--run", "imported", "-w", runs_ws, "--k", "3")
    assert text.code == 0 and "k = 3" in text.out and "held-out reference" in text.out
    assert run_cli("inspect", "prdc", "--run", "imported", "-w", runs_ws, "--k", "0").code != 0
    dist = run_cli("inspect", "distances", "--run", "imported", "-w", runs_ws, "--json",
                   "--bootstrap", "10")
    assert dist.code == 0, dist.err
    d = dist.json()
    assert [x["layer"] for x in d["layers"]] == ["block1", "block5"]
    assert "not comparable" in d["features"] and d["bootstrap"] == 10
    for layer in d["layers"]:
        assert layer["samples"]["kid_se"] > 0 and layer["reference"] is not None
        lo, hi = layer["samples"]["fd_ci95"]
        assert lo <= layer["samples"]["fd"] <= hi


def test_run_page_and_compare_say_the_run_in_words_from_the_stored_analyses(
        client: TestClient) -> None:
    """The run's summary (indexer/run_summary.py) is the same on the run page, its JSON twin and
    the compare page, and is computed from the three stored analyses."""
    from modescope.indexer.run_summary import run_summary

    found = {kind: client.get(f"/api/runs/imported/analyses/{kind}").json()["result"]
             for kind in ("modes", "prdc", "memorisation")}
    want = run_summary(found["modes"], found["prdc"], found["memorisation"])
    assert want is not None
    body = client.get("/api/runs/imported").json()
    assert body["reading"] == want
    html = client.get("/runs/imported").text
    assert f'id="run-reading"><strong>{want["head"]}</strong>' in html
    assert f'{want["modes"]["reached"]} of {want["modes"]["k"]} modes reached' in html
    assert f'copies {found["memorisation"]["copies"]} of' in html


def test_a_run_smaller_than_the_training_images_says_its_scores_read_low(
        client: TestClient) -> None:
    """tiny trained at 32 px on a 64-px workspace: its samples are measured upscaled against
    sharper images, and its page and JSON twin say so; the imported samples (64 px) do not."""
    for run in ("tiny", "imported"):
        for kind in ("modes", "prdc", "memorisation"):
            assert client.get(f"/api/runs/{run}/analyses/{kind}").status_code == 200
    reading = client.get("/api/runs/tiny").json()["reading"]
    assert reading["caveat"].startswith("the run's samples are 32 px and the training images "
                                        "64 px")
    assert 'id="run-caveat">Note: the run&#39;s samples are 32 px' in client.get(
        "/runs/tiny").text
    assert "caveat" not in client.get("/api/runs/imported").json()["reading"]
