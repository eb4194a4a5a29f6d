"""Ingesting again adds nothing; identical content is a duplicate of its first copy."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.conftest import run_cli
from tests.images import encoded, picture, save


def rows(ws: Path) -> list[tuple]:
    conn = sqlite3.connect(ws / "catalog.sqlite")
    return conn.execute(
        "SELECT id, path, status, duplicate_of, sha256, file FROM images ORDER BY id"
    ).fetchall()


def make_folder(root: Path) -> None:
    for i in range(5):
        save(picture(seed=i), root / "a" / f"{i}.png")
    data = encoded(picture(seed=100), "JPEG")
    for name in ("a/first.jpg", "b/copy.jpg", "b/copy-2.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def test_second_ingest_adds_nothing(tmp_path: Path) -> None:
    make_folder(tmp_path / "in")
    ws = tmp_path / "ws"
    first = run_cli("ingest", tmp_path / "in", "-w", ws, "--json")
    assert first.code == 0, first.err
    before = rows(ws)
    second = run_cli("ingest", tmp_path / "in", "-w", ws, "--json")
    assert second.code == 0
    report = second.json()
    assert (report["ok"], report["duplicate"], report["rejected"]) == (0, 0, 0)
    assert report["unchanged"] == 8
    assert rows(ws) == before
    assert "0 ok, 0 duplicate, 0 rejected" in run_cli("ingest", tmp_path / "in", "-w", ws).out


def test_identical_content_is_a_duplicate_of_the_first_copy(tmp_path: Path) -> None:
    make_folder(tmp_path / "in")
    ws = tmp_path / "ws"
    report = run_cli("ingest", tmp_path / "in", "-w", ws, "--json").json()
    assert (report["ok"], report["duplicate"]) == (6, 2)
    by_path = {Path(r[1]).relative_to(tmp_path / "in").as_posix(): r for r in rows(ws)}
    first = by_path["a/first.jpg"]
    assert first[2] == "ok"
    for name in ("b/copy.jpg", "b/copy-2.jpg"):
        assert by_path[name][2] == "duplicate" and by_path[name][3] == first[0]
        assert by_path[name][5] is None  # no second normalised file
    assert {d["duplicate_of"] for d in report["duplicates"]} == {str(tmp_path / "in/a/first.jpg")}
    pngs = list((ws / "images" / "train").rglob("*.png"))
    assert len(pngs) == 6


def test_a_changed_file_is_ingested_again_in_place(tmp_path: Path) -> None:
    make_folder(tmp_path / "in")
    ws = tmp_path / "ws"
    run_cli("ingest", tmp_path / "in", "-w", ws)
    target = tmp_path / "in" / "a" / "0.png"
    save(picture(seed=55), target)
    os.utime(target, ns=(1, 1))
    report = run_cli("ingest", tmp_path / "in", "-w", ws, "--json").json()
    assert (report["ok"], report["unchanged"]) == (1, 7)
    assert len(rows(ws)) == 8
    # the first copy of shared content changed: its duplicate takes over as the ok row
    (tmp_path / "in" / "a" / "first.jpg").write_bytes(encoded(picture(seed=56), "JPEG"))
    run_cli("ingest", tmp_path / "in", "-w", ws)
    statuses = {Path(r[1]).name: (r[2], r[3]) for r in rows(ws)}
    assert statuses["first.jpg"] == ("ok", None)
    assert statuses["copy-2.jpg"] == ("ok", None)  # the first duplicate by id
    heir = next(r[0] for r in rows(ws) if r[1].endswith("copy-2.jpg"))
    assert statuses["copy.jpg"] == ("duplicate", heir)


def test_a_workspace_keeps_its_size(tmp_path: Path) -> None:
    make_folder(tmp_path / "in")
    ws = tmp_path / "ws"
    assert run_cli("ingest", tmp_path / "in", "-w", ws, "--size", "32").code == 0
    res = run_cli("ingest", tmp_path / "in", "-w", ws, "--size", "128")
    assert res.code == 2
    assert res.err.strip() == (
        f"modescope: error: workspace {ws} holds 32-px images; ingest with --size 32 or "
        "choose a new --workspace for 128 px"
    )
    bad = run_cli("ingest", tmp_path / "in", "-w", tmp_path / "ws2", "--size", "100")
    assert bad.code == 2 and "use one of 32, 64, 128, 256" in bad.err


def test_the_workspace_inside_the_ingested_folder_is_not_ingested(tmp_path: Path) -> None:
    make_folder(tmp_path)
    res = run_cli("ingest", tmp_path, "-w", tmp_path / "ws", "--json")
    assert res.json()["ok"] == 6
    again = run_cli("ingest", tmp_path, "-w", tmp_path / "ws", "--json").json()
    assert again["ok"] == 0 and again["unchanged"] == 8
