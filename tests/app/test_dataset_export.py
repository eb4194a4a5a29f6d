"""Export of the curated set: `modescope export` (subprocess) and /export/curated.csv|json."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from modescope.core.catalog import Catalog
from modescope.core.workspace import Workspace
from tests.app.dataset_fixtures import client_for
from tests.conftest import run_cli


def _flag(ws: Path, *ids: int) -> None:
    res = run_cli("flag", *map(str, ids), "--reason", "noisy", "-w", ws)
    assert res.code == 0, res.err


def test_csv_and_json_hold_the_ok_unflagged_images_and_match_the_app(dataset_ws: Path,
                                                                      tmp_path: Path) -> None:
    _flag(dataset_ws, 4, 9)
    with Catalog.reading(Workspace(dataset_ws).catalog_path) as catalog:
        held = catalog.held_out_ids()  # never exported
        ok = {i: (sha, f) for i, sha, f in catalog.ok_files() if i not in held}
    want = sorted(set(ok) - {4, 9})
    out_csv, out_json = tmp_path / "c.csv", tmp_path / "c.json"
    assert run_cli("export", "-w", dataset_ws, "--format", "csv", "--out", out_csv).code == 0
    res = run_cli("export", "-w", dataset_ws, "--format", "json", "--out", out_json)
    assert res.code == 0 and f"exported {len(want)} curated images" in res.err
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [int(r["id"]) for r in rows] == want
    assert all(r["sha256"] == ok[int(r["id"])][0] for r in rows)
    assert all(r["file_name"].endswith(".jpg") or r["file_name"].endswith(".png")
               for r in rows)
    data = json.loads(out_json.read_text())
    assert data["count"] == len(want) and [r["id"] for r in data["images"]] == [int(r["id"])
                                                                          for r in rows]
    with client_for(dataset_ws) as client:
        web_csv = client.get("/export/curated.csv")
        assert web_csv.headers["content-type"].startswith("text/csv")
        assert "attachment" in web_csv.headers["content-disposition"]
        assert web_csv.text == out_csv.read_text()
        assert client.get("/export/curated.json").text == out_json.read_text()
    stdout = run_cli("export", "-w", dataset_ws, "--format", "csv")
    assert stdout.code == 0 and stdout.out == out_csv.read_text()


def test_folder_export_copies_images_by_id_into_label_folders(dataset_ws: Path,
                                                              tmp_path: Path) -> None:
    _flag(dataset_ws, 1)
    out = tmp_path / "curated"
    res = run_cli("export", "-w", dataset_ws, "--format", "folder", "--out", out)
    assert res.code == 0, res.err
    with Catalog.reading(Workspace(dataset_ws).catalog_path) as catalog:
        held = catalog.held_out_ids()  # never exported
        rows = {r.id: r for r in catalog.images("ok", limit=10_000) if r.id not in held}
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    expected = sorted(f"{rows[i].label or '_unlabelled'}/{i}.png" for i in rows if i != 1)
    assert files == expected
    some = next(i for i in rows if i != 1)
    copied = out / (rows[some].label or "_unlabelled") / f"{some}.png"
    assert copied.read_bytes() == (dataset_ws / str(rows[some].file)).read_bytes()
    assert (out / "curated.csv").read_text().count("\n") == len(expected) + 1  # + header
    assert not list(tmp_path.glob(".curated.*"))  # no temp folder left behind
    again = run_cli("export", "-w", dataset_ws, "--format", "folder", "--out", out)
    assert again.code == 2 and "is not an empty folder" in again.err
    assert "Traceback" not in again.err


def test_export_errors_are_one_line(tmp_path: Path) -> None:
    res = run_cli("export", "-w", tmp_path / "nope", "--format", "csv")
    assert res.code != 0 and "Traceback" not in res.err and "nope" in res.err
    res = run_cli("export", "-w", tmp_path, "--format", "zip")
    assert res.code == 2 and "zip" in res.err


def test_csv_cells_that_a_spreadsheet_would_run_are_defused(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """A folder label or file name starting with = + - @ is written with a leading apostrophe
    in CSV (OWASP CSV injection); the JSON export keeps the exact text."""
    from PIL import Image

    src = tmp_path / "src"
    (src / "=HYPERLINK(1)").mkdir(parents=True)
    Image.new("RGB", (64, 64), (200, 10, 10)).save(src / "=HYPERLINK(1)" / "@sum.png")
    Image.new("RGB", (64, 64), (10, 200, 10)).save(src / "=HYPERLINK(1)" / "plain.png")
    ws = tmp_path / "ws"
    assert cli("ingest", src, "-w", ws).code == 0
    out = tmp_path / "curated.csv"
    assert cli("export", "--format", "csv", "--out", out, "-w", ws).code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["label"] for r in rows} == {"'=HYPERLINK(1)"}
    assert {r["file_name"] for r in rows} == {"'@sum.png", "plain.png"}
    jout = tmp_path / "curated.json"
    assert cli("export", "--format", "json", "--out", jout, "-w", ws).code == 0
    assert {i["label"] for i in json.loads(jout.read_text())["images"]} == {"=HYPERLINK(1)"}
