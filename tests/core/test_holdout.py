"""The held-out split: a seeded, stable share of the ok images that nothing trains on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from modescope.core import holdout
from modescope.core.catalog import Catalog
from modescope.core.ingest import ingest
from modescope.core.training import TrainRequest, training_files
from modescope.core.workspace import Workspace
from tests.conftest import run_cli


def folder(root: Path, start: int, n: int) -> Path:
    """n distinct small images in three label folders."""
    for i in range(start, start + n):
        pixels = np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        (root / f"g{i % 3}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / f"g{i % 3}" / f"{i}.png")
    return root


def held(ws: Workspace) -> set[int]:
    with Catalog.reading(ws.catalog_path) as c:
        return c.held_out_ids()


def test_target_share_floor_and_small_sets() -> None:
    assert holdout.target(99, 0.1) == 0  # too small to spare or calibrate
    assert holdout.target(150, 0.1) == 30  # a fifth: the floor of 200 is out of reach
    assert holdout.target(1500, 0.1) == 200  # at least 200 where the set allows
    assert holdout.target(10_000, 0.1) == 1000
    assert holdout.target(10_000, 0) == 0


def test_ingest_holds_out_a_stable_share_nothing_trains_on(tmp_path: Path) -> None:
    src, ws = folder(tmp_path / "in", 0, 150), Workspace(tmp_path / "ws")
    report = ingest(src, ws, workers=1)
    first = held(ws)
    assert report.held_out == len(first) == 30
    with Catalog.reading(ws.catalog_path) as c:
        curated = {x.id for x in c.curated()}
        assert {x.id for x in c.held_out()} == first
        assert not curated & first and len(curated) == 120
    files = {str(f) for f in training_files(ws, TrainRequest(run="r"))}
    with Catalog.reading(ws.catalog_path) as c:
        held_files = {str(ws.resolve(x.file)) for x in c.held_out()}
    assert not files & held_files

    ingest(src, ws, workers=1)  # a rerun keeps the choice
    assert held(ws) == first
    ingest(folder(src, 150, 50), ws, workers=1)  # new images join without moving old ones
    assert first < held(ws) and len(held(ws)) == 40


def test_flags_never_move_and_flagged_images_are_not_chosen(tmp_path: Path) -> None:
    src, ws = folder(tmp_path / "in", 0, 150), Workspace(tmp_path / "ws")
    ingest(src, ws, workers=1, holdout=0)
    assert held(ws) == set()
    c = Catalog.open(ws.catalog_path)
    try:
        c.flag([x.id for x in c.curated()][:60], "noisy")
        flags_before = c.flagged_ids()
    finally:
        c.close()
    ingest(src, ws, workers=1, holdout=0.1)  # an existing workspace gets its split
    with Catalog.reading(ws.catalog_path) as c:
        assert c.flagged_ids() == flags_before
        assert len(c.held_out_ids()) == 30 and not c.held_out_ids() & flags_before
    assert Workspace(ws.root).read_config().holdout == 0.1
    ingest(src, ws, workers=1, holdout=0)  # 0 turns it off: every image trains again
    assert held(ws) == set()


def test_cli_reports_and_export_leaves_held_out_out(tmp_path: Path) -> None:
    src, ws = folder(tmp_path / "in", 0, 120), tmp_path / "ws"
    res = run_cli("ingest", src, "-w", ws, "--json")
    assert res.code == 0, res.err
    assert res.json()["held_out"] == 24
    bad = run_cli("ingest", src, "-w", ws, "--holdout", "0.7")
    assert bad.code != 0 and "--holdout 0.7" in bad.err and "Traceback" not in bad.err
    out = tmp_path / "export"
    res = run_cli("export", "-w", ws, "--format", "folder", "--out", out)
    assert res.code == 0, res.err
    exported = {p.name for p in out.rglob("*.png")}
    with Catalog.reading(Workspace(ws).catalog_path) as c:
        held_names = {Path(x.file).name for x in c.held_out()}
    assert len(exported) == 96 and not exported & held_names
