"""The demo data set: deterministic, eight known modes, ~5 % noise, real duplicates."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from modescope.core.demodata import MODES, SHAPES, STYLES, mode_name
from tests.conftest import run_cli


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert run_cli("demo-data", tmp_path / name, "--n", "40", "--seed", str(seed)).code == 0
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_truth_describes_every_file(demo_small: Path) -> None:
    truth = json.loads((demo_small / "truth.json").read_text())
    files = truth["files"]
    on_disk = {p.relative_to(demo_small).as_posix() for p in demo_small.rglob("*")
               if p.is_file() and p.name not in ("truth.json", "off-topic.txt")}
    assert set(files) == on_disk and len(files) == 300
    assert set(truth["modes"]) == {mode_name(*m) for m in MODES}
    modes = Counter(e["mode"] for e in files.values() if e["mode"])
    assert len(modes) == 8 and min(modes.values()) >= 10
    noise = [e for e in files.values() if e["noise"]]
    assert len(noise) == 15 and all(e["mode"] is None for e in noise)  # 5 %
    assert {e["noise_kind"] for e in noise} == set(truth["noise_kinds"])
    # labels are the first-level folders: the silhouettes
    assert {rel.split("/")[0] for rel in files} == {"oval", "shield", "long", "sun"}
    listed = (demo_small / "off-topic.txt").read_text().splitlines()
    assert sorted(listed) == sorted(rel for rel, e in files.items() if e["noise"])


def test_many_modes_cross_silhouette_style_and_background_tone(tmp_path: Path) -> None:
    res = run_cli("demo-data", tmp_path / "d", "--n", "400", "--seed", "2", "--modes", "32",
                  "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["modes"] == 32
    truth = json.loads((tmp_path / "d" / "truth.json").read_text())
    assert len(truth["modes"]) == 32
    assert {(m["shape"], m["style"]) for m in truth["modes"].values()} == {
        (shape, style) for shape in SHAPES for style in STYLES}
    corners: dict[str, list[float]] = {"light": [], "dark": []}
    for rel, e in truth["files"].items():
        if e["mode"] and not e["near_duplicate_of"]:
            img = np.asarray(Image.open(tmp_path / "d" / rel).convert("L"), float)
            corners[truth["modes"][e["mode"]]["tone"]].append(img[:8, :8].mean())
    # the two tones' backgrounds do not overlap: a mode's tone is visible in every image
    assert max(corners["dark"]) < min(corners["light"])
    res = run_cli("demo-data", tmp_path / "e", "--n", "400", "--modes", "12")
    assert res.code == 2 and "use one of 8, 16, 32" in res.err


def test_duplicates_are_byte_copies_and_near_duplicates_are_close(demo_small: Path) -> None:
    files = json.loads((demo_small / "truth.json").read_text())["files"]
    dups = {rel: e["duplicate_of"] for rel, e in files.items() if e["duplicate_of"]}
    near = {rel: e["near_duplicate_of"] for rel, e in files.items() if e["near_duplicate_of"]}
    assert len(dups) == 3 and len(near) == 3
    for rel, src in dups.items():
        assert (demo_small / rel).read_bytes() == (demo_small / src).read_bytes()
        assert files[rel]["mode"] == files[src]["mode"]
    for rel, src in near.items():
        a = np.asarray(Image.open(demo_small / rel).convert("RGB").resize((64, 64)), float)
        b = np.asarray(Image.open(demo_small / src).convert("RGB").resize((64, 64)), float)
        assert (demo_small / rel).read_bytes() != (demo_small / src).read_bytes()
        assert np.abs(a - b).mean() < 20, rel


def test_ingest_finds_exactly_the_planted_duplicates(demo_small: Path,
                                                     demo_workspace: Path) -> None:
    files = json.loads((demo_small / "truth.json").read_text())["files"]
    conn = sqlite3.connect(demo_workspace / "catalog.sqlite")
    found = {Path(p).relative_to(demo_small).as_posix()
             for (p,) in conn.execute("SELECT path FROM images WHERE status = 'duplicate'")}
    planted = {rel for rel, e in files.items() if e["duplicate_of"]}
    assert found == planted
    assert conn.execute("SELECT COUNT(*) FROM images WHERE status = 'rejected'").fetchone()[0] == 0


def test_demo_data_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    res = run_cli("demo-data", tmp_path, "--n", "40")
    assert res.code == 2 and "is not empty" in res.err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_flag_paths_sets_the_listed_images_aside_or_refuses_the_whole_list(
        demo_small: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert run_cli("ingest", demo_small, "--workspace", ws).code == 0
    bad = tmp_path / "bad.txt"
    first = (demo_small / "off-topic.txt").read_text().splitlines()[0]
    bad.write_text(f"{demo_small / 'oval' / 'nothing-here.png'}\n{demo_small / first}\n")
    res = run_cli("flag", "--paths", bad, "--workspace", ws)
    assert res.code == 2 and "1 line(s) name no ingested image" in res.err
    assert "nothing-here.png" in res.err and "nothing was flagged" in res.err
    conn = sqlite3.connect(ws / "catalog.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM flags").fetchone()[0] == 0
    # the demo's own list: relative lines, read from the list's folder
    res = run_cli("flag", "--paths", demo_small / "off-topic.txt", "--workspace", ws,
                  "--reason", "off-topic")
    assert res.code == 0, res.err
    flagged = {Path(p).relative_to(demo_small).as_posix() for (p,) in conn.execute(
        "SELECT i.path FROM flags f JOIN images i ON i.id = f.image_id")}
    assert flagged == set((demo_small / "off-topic.txt").read_text().splitlines())
    assert f"flagged {len(flagged)} image(s) as off-topic" in res.out


def test_flag_paths_finds_images_ingested_through_a_symlinked_folder(
        demo_small: Path, tmp_path: Path) -> None:
    link = tmp_path / "masks"
    link.symlink_to(demo_small, target_is_directory=True)
    ws = tmp_path / "ws"
    assert run_cli("ingest", link, "--workspace", ws).code == 0
    res = run_cli("flag", "--paths", link / "off-topic.txt", "--workspace", ws)
    assert res.code == 0, res.err
    listed = (demo_small / "off-topic.txt").read_text().splitlines()
    assert f"flagged {len(listed)} image(s)" in res.out
