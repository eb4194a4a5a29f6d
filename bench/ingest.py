"""Ingest throughput: `modescope ingest` vs a naive single-process Pillow loop, one run.

    python bench/ingest.py [--n 2000] [--size 64] [--data DIR]

Both sides read the same demo files and write 64-px PNGs; the baseline does only that (open,
convert, fit, save: no hashing, catalog, EXIF, ICC or crash safety). Prints a table with
images/s and the ratio, so the number means something on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modescope.core.demodata import write_demo_data  # noqa: E402
from modescope.core.discover import discover  # noqa: E402
from modescope.core.ingest import ingest  # noqa: E402
from modescope.core.workspace import Workspace  # noqa: E402


def baseline(files: list[Path], out: Path, size: int) -> float:
    out.mkdir(parents=True)
    start = time.perf_counter()
    for i, path in enumerate(files):
        with Image.open(path) as img:
            ImageOps.fit(img.convert("RGB"), (size, size), Image.Resampling.LANCZOS).save(
                out / f"{i}.png")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--data", type=Path, help="existing image folder (default: fresh demo data)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = args.data
        if data is None:
            data = tmp / "demo"
            write_demo_data(data, n=args.n, seed=0)
        files = [c.path for c in discover(data).candidates]
        n = len(files)
        t_base = baseline(files, tmp / "baseline", args.size)
        rows = [("naive Pillow loop, 1 process", t_base)]
        for workers in (1, os.cpu_count() or 1):
            ws = Workspace(tmp / f"ws-{workers}")
            report = ingest(data, ws, size=args.size, workers=workers)
            assert report.processed == n
            rows.append((f"modescope ingest, {workers} worker(s)", report.seconds))
        rerun = ingest(data, Workspace(tmp / f"ws-{workers}"), size=args.size)
        rows.append(("modescope ingest, rerun (all unchanged)", rerun.seconds))
    print(f"ingest benchmark: {n} files -> {args.size} px PNG on {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'what':42s} {'seconds':>8s} {'images/s':>9s} {'vs naive':>9s}")
    for name, secs in rows:
        print(f"{name:42s} {secs:8.2f} {n / secs:9.0f} {t_base / secs:8.2f}x")


if __name__ == "__main__":
    main()
