"""The runs pages through HTTP (in-process TestClient): neighbours, analyses, sorting, timeline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from html import escape
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modescope.app.main import create_app
from modescope.app.settings import Settings
from modescope.indexer.analyses.registry import calc_analysis
from modescope.indexer.inputs import load_vectors
from modescope.indexer.ndb_stats import NDBPower, power_sentence
from tests.conftest import run_cli


@pytest.fixture
def client(runs_ws: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=runs_ws))) as c:
        yield c


def test_sample_neighbours_are_the_brute_force_nearest_on_both_layers(
        client: TestClient, runs_ws: Path) -> None:
    from modescope.core.workspace import Workspace

    ws = Workspace(runs_ws)
    tids, tv, _ = load_vectors(ws, "train")
    gids, gv, _ = load_vectors(ws, "generated:imported")
    for n in (0, 37, 119):
        data = client.get(f"/api/runs/imported/samples/{n}").json()
        row = int(np.flatnonzero(gids == n)[0])
        for layer in ("block1", "block5"):
            got = data["neighbours"][layer]
            assert len(got) == 24
            sims = tv[layer] @ gv[layer][row]
            order = np.argsort(-sims, kind="stable")[:24]
            np.testing.assert_allclose([g["similarity"] for g in got], sims[order], atol=2e-4)
            assert {g["id"] for g in got} == {int(tids[i]) for i in order}
            assert all(g["url"] == f"/dataset/images/{g['id']}" for g in got)
    assert data["neighbours"]["block1"] != data["neighbours"]["block5"]


def test_sample_page_shows_two_labelled_rows_verdict_mode_and_flag_marks(
        client: TestClient, runs_ws: Path) -> None:
    html = client.get("/runs/imported/samples/5").text
    assert html.count('href="/dataset/images/') >= 48
    assert "24 nearest training images on block1" in html
    assert "24 nearest training images on block5" in html
    mem = json.loads((runs_ws / "runs/imported/inspection/memorisation.json").read_text())
    row = next(s for s in mem["result"]["samples"] if s["sample"] == 5)
    assert f'verdict-{row["verdict"]}">{row["verdict"]}' in html
    assert f'{(1 - row["p_value"]) * 100:.1f}% of' in html and "unseen real images" in html
    assert "colour and texture (block1): closer than" in html
    modes = json.loads((runs_ws / "runs/imported/inspection/modes.json").read_text())
    b = modes["result"]["generated_bin_of"]["5"]
    assert f'modes#bin-{b}">bin {b}</a>' in html
    assert "flagged</span>" not in html
    first = client.get("/api/runs/imported/samples/5").json()["neighbours"]["block5"][0]["id"]
    assert run_cli("flag", str(first), "--reason", "noisy", "-w", runs_ws).code == 0
    detail = client.get("/api/runs/imported/samples/5").json()
    assert [g["flagged"] for g in detail["neighbours"]["block5"]][0] is True
    assert "flagged</span>" in client.get("/runs/imported/samples/5").text


def test_analyses_are_cached_with_versions_and_recomputed_after_a_flag(
        client: TestClient, runs_ws: Path) -> None:
    from modescope.core.workspace import Workspace

    cache = runs_ws / "runs/imported/inspection/modes.json"
    assert not cache.exists()
    first = client.get("/api/runs/imported/modes").json()
    expected = calc_analysis("modes", Workspace(runs_ws), "imported").as_json()
    assert first["result"]["ndb_over_k"] == expected["ndb_over_k"]
    assert first["result"]["js"] == expected["js"]
    assert set(first["versions"]) == {"train", "generated", "flags", "code"}
    stamp = cache.stat().st_mtime_ns
    assert client.get("/api/runs/imported/modes").json() == first
    assert cache.stat().st_mtime_ns == stamp  # served from the cache
    from modescope.core.catalog import Catalog

    with Catalog.reading(Workspace(runs_ws).catalog_path) as catalog:
        three = [str(c.id) for c in catalog.curated()[:3]]  # training images, not held out
    assert first["stale"] is False and first["note"] is None
    assert run_cli("flag", *three, "-w", runs_ws).code == 0
    # at once, the last analysis, marked stale, while the fresh one is computed (as the page)
    stale = client.get("/api/runs/imported/modes").json()
    assert stale["stale"] is True and "being computed" in stale["note"]
    assert stale["versions"] == first["versions"] and stale["result"] == first["result"]
    again = client.get("/api/runs/imported/modes?fresh=true").json()
    assert again["stale"] is False
    assert again["versions"]["flags"] != first["versions"]["flags"]
    assert again["result"]["n_train"] == first["result"]["n_train"] - 3
    assert cache.stat().st_mtime_ns != stamp


def test_most_copied_first_follows_the_calibrated_p_value(client: TestClient,
                                                          runs_ws: Path) -> None:
    from modescope.core.workspace import Workspace

    mem = calc_analysis("memorisation", Workspace(runs_ws), "tiny").as_json()
    want = [s["sample"] for s in sorted(mem["samples"],
                                        key=lambda s: (s["p_value"], s["sample"]))]
    got = client.get("/api/runs/tiny/samples?sort=copied").json()
    assert [c["n"] for c in got["samples"]] == want[:60]
    ratios = [c["p_value"] for c in got["samples"]]
    assert ratios == sorted(ratios)
    html = client.get("/runs/tiny/samples?sort=copied").text
    assert html.index(f"/images/runs/tiny/{want[0]}.png") < html.index(
        f"/images/runs/tiny/{want[-1]}.png")


def test_random_order_is_seeded_stable_and_covers_every_sample_across_pages(
        runs_ws: Path) -> None:
    with TestClient(create_app(Settings(workspace=runs_ws, page_size=25))) as c:
        def pages(seed: int) -> list[int]:
            out: list[int] = []
            for page in (1, 2, 3, 4, 5):
                out += [s["n"] for s in c.get(
                    f"/api/runs/imported/samples?sort=random&seed={seed}&page={page}"
                ).json()["samples"]]
            return out
        one = pages(4)
        assert sorted(one) == list(range(120)) and one != sorted(one)
        assert pages(4) == one and pages(5) != one
        by_mode = c.get("/api/runs/imported/samples?sort=mode").json()
        modes = [s["mode"] for s in by_mode["samples"]]
        assert modes == sorted(modes) and None not in modes
        html = c.get("/runs/imported/samples?sort=random&seed=4&page=2").text
        assert 'href="?sort=random&amp;seed=4&amp;page=3"' in html
        assert c.get("/runs/imported/samples?sort=sideways").status_code == 400


def test_modes_page_shows_headline_bins_and_bars_without_inline_style(
        client: TestClient, runs_ws: Path) -> None:
    html = client.get("/runs/imported/modes").text
    r = json.loads((runs_ws / "runs/imported/inspection/modes.json").read_text())["result"]
    assert f'id="ndb-k">{r["ndb_over_k"]:.3f}' in html
    assert f'id="js">{r["js"]:.4f}' in html
    assert html.count('class="bin verdict-') == r["k"]
    for b in r["dropped"]:
        assert f'id="bin-{b}" class="bin verdict-dropped"' in html
    assert html.count("<svg class=\"bar bar-gen\"") == r["k"]
    assert "style=" not in html and "<script>" not in html
    lo, hi = r["ndb_over_k_ci95"]
    assert f'id="ndb-k-interval">{lo:.3f}–{hi:.3f}' in html
    # the power in the same words as the CLI's line and the analysis page's, from the JSON twin
    words = power_sentence(NDBPower.from_json(r["power"]), r["n_gen"])
    assert escape(words) in html and f"with {r['n_gen']} samples" in words
    assert f"power: {escape(words)}" in client.get("/runs/imported/analyses/modes").text
    assert client.get("/api/runs/imported/modes").json()["result"]["power"] == r["power"]


def test_run_timeline_has_loss_svg_epoch_grids_config_and_dataset_version(
        client: TestClient, runs_ws: Path) -> None:
    html = client.get("/runs/tiny").text
    stats = [json.loads(x) for x in (runs_ws / "runs/tiny/stats.jsonl").read_text().split("\n")
             if x]
    for key in ("d_loss", "g_loss"):
        pts = re.search(rf'series-{key}" points="([^"]*)"', html)
        assert pts is not None and len(pts.group(1).split()) == len(stats)
    assert 'href="?epoch=1"' in html and 'href="?epoch=2"' in html
    assert 'src="/images/runs/tiny/epochs/2.png"' in html
    assert 'src="/images/runs/tiny/epochs/1.png"' in client.get("/runs/tiny?epoch=1").text
    dataset = json.loads((runs_ws / "runs/tiny/dataset.json").read_text())
    assert dataset["sha256"][:12] in html and f"{dataset['count']} curated images" in html
    data = client.get("/api/runs/tiny").json()
    assert data["epochs"] == [1, 2] and data["run"]["status"] == "finished"
    assert data["config"]["size"] == 32 and len(data["stats"]) == len(stats)
    assert "style=" not in html


def test_runs_list_and_overview_show_metrics_once_inspected(client: TestClient) -> None:
    before = {r["name"]: r for r in client.get("/api/runs").json()}
    assert set(before) == {"imported", "tiny"}
    assert before["imported"]["kind"] == "imported" and before["imported"]["samples"] == 120
    assert before["imported"]["metrics"]["ndb_over_k"] is None  # nothing scored it yet
    # a trained run shows its last checkpoint's scores until it is inspected
    scored = [json.loads(line) for line in (client.app.state.settings.workspace  # type: ignore[attr-defined]
              / "runs/tiny/metrics.jsonl").read_text().splitlines()]
    assert before["tiny"]["metrics"]["ndb_over_k"] == scored[-1]["ndb_over_k"]
    assert before["tiny"]["metrics"]["checkpoint_epoch"] == scored[-1]["epoch"] == 2
    modes = client.get("/api/runs/tiny/modes").json()["result"]
    mem = client.get("/api/runs/tiny/memorisation").json()["result"]
    tiny = {r["name"]: r for r in client.get("/api/runs").json()}["tiny"]
    assert tiny["metrics"]["ndb_over_k"] == modes["ndb_over_k"]
    assert tiny["metrics"]["copy_rate"] == mem["copy_rate"] and tiny["metrics"]["modes_fresh"]
    assert tiny["metrics"]["checkpoint_epoch"] is None  # now the inspection's figures
    assert tiny["epoch"] == 2 and tiny["total_epochs"] == 2
    assert f'{modes["ndb_over_k"]:.3f}' in client.get("/runs").text
    overview = client.get("/api/overview").json()
    assert {r["name"] for r in overview["runs"]} == {"imported", "tiny"}
    assert 'data-run="tiny"' in client.get("/").text


def test_compare_puts_two_runs_side_by_side(client: TestClient) -> None:
    data = client.get("/api/compare?a=imported&b=tiny").json()
    assert data["a"]["run"]["name"] == "imported" and data["b"]["run"]["name"] == "tiny"
    assert data["a"]["ndb_over_k"] is not None and data["b"]["copy_rate"] is not None
    assert len(data["a"]["samples"]) == 24
    # each side says the run in words, as its run page does (indexer/run_summary.py)
    assert data["a"]["reading"] == client.get("/api/runs/imported").json()["reading"]
    html = client.get("/compare?a=imported&b=tiny").text
    assert html.count('class="side"') == 2 and "Dropped modes" in html
    assert f'<p class="reading"><strong>{data["b"]["reading"]["head"]}</strong>' in html
    # the training images that became reached or unreached, from the two stored prdc results
    reach = [next(x for x in client.get(f"/api/runs/{r}/analyses/prdc").json()["result"][
        "layers"] if x["layer"] == "block5")["reach"] for r in ("imported", "tiny")]
    changes = data["summary"]["reach"]
    assert changes["reached"] == sorted(int(i) for i, n in reach[1].items()
                                        if n and not reach[0][i])
    assert changes["unreached"] == sorted(int(i) for i, n in reach[0].items()
                                          if n and not reach[1][i])
    assert f'id="reach-reached">Training images that became reached ' \
           f'({len(changes["reached"])})' in html
    assert client.get("/compare?a=tiny&b=tiny").status_code == 400


def test_sample_images_have_strong_etags_and_ids_only(client: TestClient,
                                                      runs_ws: Path) -> None:
    res = client.get("/images/runs/imported/7.png")
    assert res.status_code == 200 and res.headers["content-type"] == "image/png"
    assert res.content == (runs_ws / "runs/imported/generated/000007.png").read_bytes()
    assert res.headers["cache-control"] == "public, max-age=31536000, immutable"
    tag = res.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag)
    again = client.get("/images/runs/imported/7.png", headers={"if-none-match": tag})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/images/runs/tiny/epochs/1.png").headers["etag"] != tag
    for url in ("/images/runs/imported/999.png", "/images/runs/..%2F..%2Fcatalog/1.png",
                "/images/runs/imported/epochs/7.png", "/runs/..%2Fetc/samples/1",
                "/images/runs/imported/..%2F..%2Fcatalog.sqlite.png"):
        assert client.get(url).status_code in (404, 422), url


def test_missing_index_and_unknown_run_say_what_to_do(client: TestClient,
                                                      runs_ws: Path) -> None:
    res = client.get("/api/runs/nope/samples/1")
    assert res.status_code == 404 and "no run named nope" in res.json()["detail"]
    (runs_ws / "index/generated-imported/meta.json").unlink()
    res = client.get("/api/runs/imported/samples/1")
    assert res.status_code == 409 and "modescope index --source generated:imported" in \
        res.json()["detail"]
    html = client.get("/runs/imported/modes").text
    assert "not indexed yet" in html


def test_a_new_index_is_picked_up_without_a_restart(client: TestClient, runs_ws: Path) -> None:
    before = client.get("/api/runs/tiny/samples/3").json()["neighbours"]["block5"]
    res = run_cli("index", "-w", runs_ws, "--source", "generated:tiny", "--rebuild")
    assert res.code == 0, res.err
    meta = json.loads((runs_ws / "index/generated-tiny/meta.json").read_text())
    assert meta["count"] == 60
    after = client.get("/api/runs/tiny/samples/3").json()["neighbours"]["block5"]
    assert [n["id"] for n in after] == [n["id"] for n in before]
    side = client.app.state.runs_side  # type: ignore[attr-defined]
    assert side.indexes._open["generated:tiny"].stamp[0] == \
        (runs_ws / "index/generated-tiny/meta.json").stat().st_mtime_ns


def test_the_runs_pages_never_import_tensorflow(runs_ws: Path) -> None:
    ws = runs_ws
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from modescope.app.main import create_app\n"
        "from modescope.app.settings import Settings\n"
        f"with TestClient(create_app(Settings(workspace={str(ws)!r}))) as c:\n"
        "    for u in ('/runs', '/runs/tiny', '/runs/imported/samples', '/jobs',\n"
        "              '/runs/imported/samples/3', '/compare', '/api/runs/tiny/samples/2'):\n"
        "        assert c.get(u).status_code == 200, u\n"
        "bad = [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]


def test_every_runs_page_has_a_json_twin_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for page in ("/runs", "/runs/{run}", "/runs/{run}/samples", "/runs/{run}/samples/{n}",
                 "/runs/{run}/modes", "/jobs", "/compare"):
        assert page in paths and "/api" + page in paths, page
        assert "$ref" in json.dumps(paths["/api" + page]["get"]["responses"]["200"]), page


def test_every_run_analysis_has_a_page_and_a_json_twin_from_the_registry(
        client: TestClient) -> None:
    """The run page links each registered run analysis; the generic page shows the analysis's
    own summary lines (as `modescope inspect NAME` prints them) and its JSON twin is the same
    record as the named twin."""
    from modescope.indexer.analyses.registry import analyses

    run_page = client.get("/runs/imported").text
    for spec in analyses(run=True):
        assert f'href="/runs/imported/analyses/{spec.name}"' in run_page
    generic = client.get("/api/runs/imported/analyses/memorisation").json()
    assert generic == client.get("/api/runs/imported/memorisation").json()
    page = client.get("/runs/imported/analyses/memorisation")
    assert page.status_code == 200
    copies = generic["result"]["copies"]
    assert f"run imported: {copies} of {generic['result']['n_samples']} samples" in page.text
    assert client.get("/runs/imported/analyses/outliers").status_code == 404  # a dataset one
    missing = client.get("/api/runs/imported/analyses/nothing")
    assert missing.status_code == 404 and "nothing" in missing.json()["detail"]
