"""Every kind of bad input gets a clear reason, and never costs a good file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import modescope_cmd, run_cli
from tests.images import encoded, picture, png_header_only, save

GOOD_NAMES = [
    "good/plain.jpg",
    "good/masque été 日本 😀.png",
    "good/  spaced   name .jpg",
    "good/upscaled-40px.png",
    "top-level.png",
]


def _unreadable_prefix() -> list[str]:
    """As root, drop the capabilities that bypass file permissions, so mode 000 bites."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search"]


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad") / "in"
    for i, name in enumerate(GOOD_NAMES):
        size = 40 if "40px" in name else 96
        save(picture(size, size, seed=i), root / name)
    (root / "good" / "raw-bytes-\udcff.png").write_bytes(encoded(picture(seed=9), "PNG"))
    jpeg = encoded(picture(seed=20), "JPEG")
    png = encoded(picture(seed=21), "PNG")
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (bad / "truncated.png").write_bytes(png[: len(png) // 2])
    (bad / "notes-renamed.jpg").write_text("this is a text file, not a JPEG\n")
    (bad / "bomb.png").write_bytes(png_header_only(20_000, 20_000))
    save(picture(10, 12, seed=3), bad / "tiny.png")
    save(picture(400, 20, seed=4), bad / "banner.png")
    locked = save(picture(seed=5), bad / "locked.png")
    locked.chmod(0)
    os.mkfifo(bad / "pipe.jpg")
    (bad / "broken-link.jpg").symlink_to(bad / "missing-target.jpg")
    (bad / "loop-a.jpg").symlink_to(bad / "loop-b.jpg")
    (bad / "loop-b.jpg").symlink_to(bad / "loop-a.jpg")
    (root / "good" / "back-to-root").symlink_to(root, target_is_directory=True)
    # skipped silently, but counted
    save(picture(seed=6), root / ".hidden.jpg")
    save(picture(seed=7), root / ".git" / "inside-hidden-folder.png")
    (root / "readme.txt").write_text("notes")
    (root / "good" / "labels.csv").write_text("a,b\n")
    return root


EXPECTED_REASONS = {
    "bad/empty.jpg": "empty file",
    "bad/truncated.jpg": "truncated or corrupt",
    "bad/truncated.png": "truncated or corrupt",
    "bad/notes-renamed.jpg": "not an image",
    "bad/bomb.png": "decompression bomb",
    "bad/tiny.png": "too small",
    "bad/banner.png": "extreme aspect ratio",
    "bad/locked.png": "permission denied",
    "bad/pipe.jpg": "not a regular file",
    "bad/broken-link.jpg": "broken symlink",
    "bad/loop-a.jpg": "symlink loop",
    "bad/loop-b.jpg": "symlink loop",
    "good/back-to-root": "symlink loop",
}


@pytest.fixture(scope="module")
def ingested(bad_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    ws = tmp_path_factory.mktemp("ws") / "w"
    res = run_cli("ingest", bad_folder, "--workspace", ws, "--json",
                  prefix=_unreadable_prefix())
    assert res.code == 0, res.err
    return ws, res.json()


def test_every_bad_file_is_reported_with_its_reason(bad_folder: Path, ingested) -> None:
    _, report = ingested
    reasons = {Path(r["path"]).relative_to(bad_folder).as_posix(): r["reason"]
               for r in report["rejected_files"]}
    assert set(reasons) == set(EXPECTED_REASONS)
    for rel, expected in EXPECTED_REASONS.items():
        assert expected in reasons[rel], (rel, reasons[rel])
    assert "--max-pixels" in reasons["bad/bomb.png"]  # says what to do
    assert "at least 16 px" in reasons["bad/tiny.png"]


def test_every_good_file_is_ingested_despite_the_bad_ones(bad_folder: Path, ingested) -> None:
    ws, report = ingested
    assert report["ok"] == len(GOOD_NAMES) + 1
    assert report["duplicate"] == 0
    conn = sqlite3.connect(ws / "catalog.sqlite")
    rows = conn.execute("SELECT path, label, file FROM images WHERE status = 'ok'").fetchall()
    paths = {p for p, _, _ in rows}
    for name in GOOD_NAMES:
        assert str(bad_folder / name) in paths
    assert str(bad_folder / "good" / "raw-bytes-") + "\\xff.png" in paths
    for path, label, file in rows:
        with Image.open(ws / file) as img:
            assert img.size == (64, 64) and img.mode == "RGB"
        assert label == (None if path.endswith("top-level.png") else "good")


def test_hidden_and_non_image_files_are_skipped_and_counted(ingested) -> None:
    _, report = ingested
    # .hidden.jpg, .git/ (one folder), readme.txt, labels.csv
    assert report["skipped"] == 4


def test_small_images_are_upscaled_with_a_warning(bad_folder: Path, ingested) -> None:
    _, report = ingested
    warned = {Path(w["path"]).name: w["warning"] for w in report["warnings"]}
    assert "upscaled 1.6x from 40x40 px" in warned["upscaled-40px.png"]


def test_rejected_files_are_recorded_in_the_catalog(ingested) -> None:
    ws, _ = ingested
    conn = sqlite3.connect(ws / "catalog.sqlite")
    n = conn.execute("SELECT COUNT(*) FROM images WHERE status = 'rejected' AND reason != ''")
    assert n.fetchone()[0] == len(EXPECTED_REASONS)


def test_bomb_limit_is_configurable(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    save(picture(300, 300), folder / "big.png")
    res = run_cli("ingest", folder, "-w", tmp_path / "ws", "--max-pixels", "50000", "--json")
    assert res.code == 1  # the only file was rejected: nothing readable
    assert "decompression bomb: 300x300 = 90,000 pixels" in res.json()["rejected_files"][0][
        "reason"]


def test_huge_legal_jpeg_is_decoded_at_reduced_scale(tmp_path: Path) -> None:
    """A 6000x4500 JPEG (81 MB as RGB) ingests while the process grows far less than that."""
    huge, small = tmp_path / "huge", tmp_path / "small"
    save(picture(6000, 4500, seed=1), huge / "huge.jpg", quality=90)
    save(picture(96, 96, seed=2), small / "small.jpg")

    def peak_rss_kb(folder: Path) -> int:
        proc = subprocess.Popen([*modescope_cmd(), "ingest", str(folder), "-w",
                                 str(tmp_path / f"ws-{folder.name}"), "--workers", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        return usage.ru_maxrss

    base, peak = peak_rss_kb(small), peak_rss_kb(huge)
    with Image.open(next((tmp_path / "ws-huge" / "images" / "train").rglob("*.png"))) as img:
        assert img.size == (64, 64)
    assert peak - base < 40_000, f"ingesting the huge JPEG grew the process by {peak - base} KB"


def test_unsupported_image_formats_are_named_with_what_would_read_them(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>')
    (src / "phone.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    (src / "shot.nef").write_bytes(bytes(64))
    (src / "notes.txt").write_text("not an image")
    save(picture(seed=1), src / "a.webp")
    save(picture(seed=2), src / "b.avif")
    res = run_cli("ingest", src, "-w", tmp_path / "ws", "--json")
    assert res.code == 0, res.err
    report = res.json()
    why = {Path(r["path"]).name: r["reason"] for r in report["rejected_files"]}
    assert "SVG is vector art" in why["logo.svg"] and "rsvg-convert" in why["logo.svg"]
    assert "pillow-heif" in why["phone.HEIC"] and "camera RAW (NEF)" in why["shot.nef"]
    assert report["ok"] == 2 and report["skipped"] == 1  # WebP and AVIF read; .txt skipped
    text = run_cli("ingest", src, "-w", tmp_path / "ws2")
    assert "unsupported format: SVG is vector art" in text.err
