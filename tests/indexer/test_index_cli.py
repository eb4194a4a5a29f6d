"""`modescope index` and `neighbours` as users run them: incremental, resumable, consistent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from modescope.core.workspace import Workspace
from modescope.indexer.index import VectorIndex
from modescope.indexer.store import IndexStore
from tests.conftest import modescope_cmd, run_cli
from tests.images import picture, save

pytestmark = pytest.mark.slow  # every test indexes with TensorFlow

RANDOM = ["--weights", "random", "--seed", "0", "--input-size", "32"]


def vectors(ws: Path, layer: str = "block5") -> dict[int, np.ndarray]:
    vi = VectorIndex.load(ws / "index" / "train" / f"{layer}.faiss")
    ids = faiss_ids(vi)
    return {i: vi.reconstruct(i) for i in ids}


def faiss_ids(vi: VectorIndex) -> list[int]:
    import faiss

    return sorted(faiss.vector_to_array(vi.index.id_map).tolist())


@pytest.fixture(scope="module")
def indexed(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("idx") / "ws"
    shutil.copytree(demo_workspace, ws)
    res = run_cli("index", "-w", ws, *RANDOM, "--json")
    assert res.code == 0, res.err
    report = res.json()
    assert report["count"] == report["extracted"] == 297
    assert report["trained"] is False and "UNTRAINED" in res.err  # the visible warning
    return ws


def test_meta_records_what_the_vectors_are(indexed: Path) -> None:
    meta = json.loads((indexed / "index" / "train" / "meta.json").read_text())
    assert meta["spec"] == {"weights": "random", "seed": 0, "input_size": 32,
                            "pooling": {"block1": "grid4", "block5": "gapgmp"}}
    assert meta["trained"] is False and "UNTRAINED" in meta["warning"]
    assert meta["layers"]["block1"] == {"layer": "block1_pool", "pooling": "grid4", "dim": 1024}
    assert meta["count"] == 297 and meta["index_kind"] == "flat"
    assert {"keras", "faiss-cpu", "numpy"} <= set(meta["versions"])


def test_rerun_extracts_nothing(indexed: Path) -> None:
    res = run_cli("index", "-w", indexed, "--json")  # options follow the existing index
    assert res.code == 0, res.err
    assert res.json()["extracted"] == 0 and res.json()["count"] == 297


def test_incremental_equals_full_rebuild(demo_small: Path, tmp_path: Path) -> None:
    part = tmp_path / "part"
    for rel in sorted(p.relative_to(demo_small) for p in demo_small.rglob("*.*"))[:120]:
        (part / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(demo_small / rel, part / rel)
    inc, full = tmp_path / "inc", tmp_path / "full"
    assert run_cli("ingest", part, "-w", inc).code == 0
    first = run_cli("index", "-w", inc, *RANDOM, "--json").json()
    assert run_cli("ingest", demo_small, "-w", inc).code == 0  # the rest arrives later
    second = run_cli("index", "-w", inc, "--json").json()
    assert second["extracted"] == second["count"] - first["count"] > 0
    assert run_cli("ingest", demo_small, "-w", full).code == 0
    assert run_cli("index", "-w", full, *RANDOM).code == 0
    a, b = vectors(inc), vectors(full)
    # ids differ between workspaces (ingest order); compare by source path via the catalog
    assert sorted(_by_path(inc, a)) == sorted(_by_path(full, b))
    pa, pb = _by_path(inc, a), _by_path(full, b)
    for key in pa:
        np.testing.assert_allclose(pa[key], pb[key], atol=1e-5)


def _by_path(ws: Path, vecs: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    import sqlite3

    conn = sqlite3.connect(ws / "catalog.sqlite")
    paths = dict(conn.execute("SELECT id, path FROM images"))
    return {Path(paths[i]).name: v for i, v in vecs.items()}


def test_kill_9_mid_index_then_rerun_equals_one_run(demo_workspace: Path, indexed: Path,
                                                    tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(demo_workspace, ws)
    chunks = ws / "index" / "train" / "chunks"
    proc = subprocess.Popen([*modescope_cmd(), "index", "-w", str(ws), *RANDOM],
                            env={**os.environ, "MODESCOPE_INDEX_CHUNK": "32"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (not chunks.is_dir() or len(list(chunks.glob("chunk-*.npz"))) < 2) and \
            proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "index finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (ws / "index" / "train" / "meta.json").exists()
    res = run_cli("index", "-w", ws, *RANDOM, "--json")
    assert res.code == 0, res.err
    assert 0 < res.json()["extracted"] < 297
    a, b = vectors(ws), vectors(indexed)
    assert sorted(a) == sorted(b)
    for i in a:
        np.testing.assert_allclose(a[i], b[i], atol=1e-5)
    assert not list((ws / "index").rglob(".*.tmp"))


def test_other_settings_on_an_existing_index_need_rebuild(indexed: Path) -> None:
    res = run_cli("index", "-w", indexed, "--input-size", "64")
    assert res.code == 2
    assert "built with weights random (seed 0), input 32 px" in res.err
    assert "--rebuild" in res.err


def test_neighbours_by_id_match_brute_force(indexed: Path) -> None:
    vecs = vectors(indexed)
    ids = sorted(vecs)
    mat = np.stack([vecs[i] for i in ids])
    q = ids[10]
    res = run_cli("neighbours", str(q), "-w", indexed, "--k", "24", "--json")
    assert res.code == 0, res.err
    got = res.json()
    assert "UNTRAINED" in res.err and got["trained"] is False
    sims = mat @ vecs[q]
    order = [ids[j] for j in np.argsort(-sims, kind="stable") if ids[j] != q][:24]
    assert [n["id"] for n in got["neighbours"]] == order
    first = got["neighbours"][0]
    assert first["path"].startswith("/") and first["label"] in {"oval", "shield", "long", "sun"}
    assert abs(first["similarity"] - float(sims[ids.index(first["id"])])) < 1e-4


def test_flagged_images_are_excluded_on_request_and_back_after_unflag(indexed: Path) -> None:
    q = "10"
    before = [n["id"] for n in run_cli("neighbours", q, "-w", indexed, "--json").json()[
        "neighbours"]]
    top3 = before[:3]
    assert run_cli("flag", *map(str, top3), "-w", indexed, "--reason", "noisy").code == 0
    kept = run_cli("neighbours", q, "-w", indexed, "--json").json()["neighbours"]
    assert [n["id"] for n in kept] == before  # flags change nothing unless asked
    excl = run_cli("neighbours", q, "-w", indexed, "--exclude-flagged", "--json").json()
    assert not set(top3) & {n["id"] for n in excl["neighbours"]}
    assert [n["id"] for n in excl["neighbours"]][:21] == before[3:]
    assert run_cli("unflag", *map(str, top3), "-w", indexed).code == 0
    back = run_cli("neighbours", q, "-w", indexed, "--exclude-flagged", "--json").json()
    assert [n["id"] for n in back["neighbours"]] == before


def test_a_file_outside_the_workspace_is_embedded_on_the_fly(indexed: Path,
                                                             demo_small: Path,
                                                             tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    src = next(p for p in sorted(demo_small.rglob("*.png")))
    shutil.copy(src, outside)
    res = run_cli("neighbours", outside, "-w", indexed, "--k", "5", "--json")
    assert res.code == 0, res.err
    got = res.json()
    assert got["query_vector"] == "embedded" and got["query_id"] is None
    # the same picture is in the training set: it is its own nearest neighbour
    assert Path(got["neighbours"][0]["path"]).name == src.name
    assert got["neighbours"][0]["similarity"] > 0.999


def test_generated_samples_are_indexed_with_the_train_settings(indexed: Path) -> None:
    gen = indexed / "runs" / "r1" / "generated"
    for n in range(5):
        save(picture(64, 64, seed=n), gen / f"{n:06d}.png")
    res = run_cli("index", "-w", indexed, "--source", "generated:r1", "--json")
    assert res.code == 0, res.err
    assert res.json()["count"] == 5
    meta = IndexStore(Workspace(indexed), "generated:r1").require_meta()
    assert meta["spec"]["input_size"] == 32
    bad = run_cli("index", "-w", indexed, "--source", "generated:r1", "--input-size", "64")
    assert bad.code == 2 and "train index's settings" in bad.err
    assert run_cli("index", "-w", indexed, "--source", "generated:../x").code == 2


def test_a_corrupt_index_file_names_the_rebuild_command(indexed: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(indexed, ws)
    path = ws / "index" / "train" / "block5.faiss"
    path.write_bytes(path.read_bytes()[:100])
    res = run_cli("neighbours", "10", "-w", ws)
    assert res.code == 2 and "modescope index --rebuild" in res.err
    fixed = run_cli("index", "-w", ws, "--json")  # a plain rerun repairs derived files
    assert fixed.code == 0 and fixed.json()["extracted"] == 0
    assert run_cli("neighbours", "10", "-w", ws).code == 0


def test_overview_page_shows_the_index_and_the_untrained_warning(indexed: Path) -> None:
    from fastapi.testclient import TestClient

    from modescope.app.main import create_app
    from modescope.app.settings import Settings

    with TestClient(create_app(Settings(workspace=indexed))) as client:
        html = client.get("/").text
        assert "Untrained features." in html and 'role="alert"' in html
        assert "Indexed: <strong>297</strong> of 297 images" in html
        assert client.get("/api/overview").json()["index"]["trained"] is False
    status = run_cli("status", "-w", indexed, "--json").json()
    assert status["index"]["count"] == 297 and status["index"]["trained"] is False
