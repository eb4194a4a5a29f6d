"""The load benchmark's short version: 5 s of mixed traffic at 40 requests/s against a real
server, then every acknowledged flag state checked in the catalog (bench/load.py; the 60-s run
at 200/s is the benchmark, docs/reliability.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mixed_traffic_has_no_errors_and_loses_no_flag(runs_ws: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--workspace", str(runs_ws),
         "--run", "imported", "--smoke", "--json"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["rows"]["all"]["count"] == 200  # 5 s x 40/s, all sent and answered
    assert report["rows"]["all"]["errors"] == 0, report["error_examples"]
    assert report["rows"]["flag"]["count"] > 0 and report["checked"] > 0
    assert report["lost_flags"] == 0 and report["stale_flags"] == 0
