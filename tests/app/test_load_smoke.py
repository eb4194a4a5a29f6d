"""The load benchmark's short version: 5 s of open-loop mixed traffic at 40 requests/s against a
real server, then every acknowledged flag state checked in the catalog (bench/load.py; the
60-s runs are the benchmark, docs/reliability.md). A guard that load.py runs, sends every kind
it schedules, and reports the columns the README's table shows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = {"requests", "offered_per_s", "achieved_per_s", "errors", "p50", "p95", "p99", "max"}


def test_mixed_traffic_has_no_errors_and_loses_no_flag(runs_ws: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--workspace", str(runs_ws),
         "--run", "imported", "--smoke", "--json"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    rows = report["rows"]
    kinds = {"sample", "sample_json", "dataset", "dataset_json", "image", "image_json",
             "modes", "modes_json", "thumbnail", "flag"}
    assert set(rows) == kinds | {"all"}
    for kind, row in rows.items():
        assert set(row) == COLUMNS, kind
        assert row["requests"] > 0 and row["errors"] == 0, (kind, report["error_examples"])
        assert row["p50"] <= row["p95"] <= row["p99"] <= row["max"], kind
        assert 0 < row["achieved_per_s"] <= row["offered_per_s"] * 1.5, kind
    assert rows["all"]["requests"] == sum(r["requests"] for k, r in rows.items() if k != "all")
    assert 150 <= rows["all"]["requests"] - rows["flag"]["requests"] <= 250  # ~40/s x 5 s
    assert rows["flag"]["requests"] == 10  # one every 0.5 s
    assert report["flag_posts_acked"] == 10
    assert report["found_flagged"] == report["expected_flagged"] > 0
    assert report["lost_flags"] == 0 and report["stale_flags"] == 0
    assert report["processes_left"] == 0  # the stopped server left nothing running
