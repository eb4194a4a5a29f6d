"""Dataset pages at scale: server time per page (in-process TestClient), and analysis costs.

    python bench/dataset_bench.py [--n 10000] [--indexed] [--repeat 30]

Builds a synthetic workspace (catalog rows with fake hashes; with --indexed, an index of
descriptor-like vectors, 1,024-d per layer), computes the cached analyses once (timed), then
times each page `repeat` times and prints p50/p95 in ms. Thumbnails are not fetched.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_bench import descriptor_like  # noqa: E402

from modescope.core.catalog import Catalog, FileRecord  # noqa: E402
from modescope.core.workspace import Workspace  # noqa: E402


def build(root: Path, n: int, indexed: bool) -> Workspace:
    ws = Workspace(root)
    ws.open_or_create(64, "crop")
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    catalog = Catalog.open(ws.catalog_path)
    try:
        labels = ("cats", "dogs", "birds", "fish")
        for s in range(0, n, 5000):
            catalog.record([FileRecord(
                path=f"/data/{labels[i % 4]}/{i:06d}.jpg", label=labels[i % 4], status="ok",
                sha256=shas[i], width=128, height=128, format="JPEG", mode="RGB",
                file=f"images/train/{shas[i][:2]}/{shas[i]}.png")
                for i in range(s, min(n, s + 5000))])
        ids = [i for i, _, _ in catalog.ok_files()]
        catalog.flag(ids[: max(1, n // 100)], "noisy")  # 1 % flagged
    finally:
        catalog.close()
    if indexed:
        from modescope.indexer.store import IndexStore

        store = IndexStore(ws, "train")
        store.write_chunk(np.array(ids, np.int64), shas,
                          {"block1": descriptor_like(n, 1024, 1),
                           "block5": descriptor_like(n, 1024, 2)})
        store.write_meta({"spec": {"weights": "random"}, "weights": "random (bench)",
                          "trained": False, "warning": None, "count": n})
    return ws


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--indexed", action="store_true")
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    from fastapi.testclient import TestClient

    from modescope.app.main import create_app
    from modescope.app.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ws = build(Path(tmp) / "ws", args.n, args.indexed)
        print(f"built {args.n} rows{' + index' if args.indexed else ''} in "
              f"{time.perf_counter() - t:.1f} s")
        app = create_app(Settings(workspace=ws.root, analysis_wait_s=300))
        with TestClient(app, base_url="http://127.0.0.1") as c:
            last = -(-args.n // 60)
            pages = ["/dataset", f"/dataset?page={last // 2}", f"/dataset?page={last}",
                     "/dataset?view=flagged", "/api/dataset?view=flagged",
                     f"/dataset/images/{args.n // 2}"]
            if args.indexed:
                for view in ("outliers", "duplicates", "modes", "suggest"):
                    t = time.perf_counter()
                    assert c.get(f"/dataset?view={view}").status_code == 200
                    print(f"first /dataset?view={view} (computes): "
                          f"{time.perf_counter() - t:.2f} s")
                print("analysis seconds:", c.get("/api/dataset").json()["analysis_seconds"])
                pages += ["/dataset?view=outliers&page=3", "/dataset?view=modes&mode=1",
                          "/dataset?view=duplicates", "/dataset?view=suggest"]
            token = c.get("/dataset").text.split('csrf-token" content="')[1].split('"')[0]
            print(f"{'page':44s} {'p50 ms':>8s} {'p95 ms':>8s}")
            for path in pages:
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    res = c.get(path)
                    times.append((time.perf_counter() - t) * 1000)
                    assert res.status_code == 200, (path, res.status_code)
                print(f"{path:44s} {np.percentile(times, 50):8.1f} {np.percentile(times, 95):8.1f}")
            times = []
            for r in range(args.repeat):
                ids = [str(i) for i in range(1000 + r * 60, 1060 + r * 60)]
                t = time.perf_counter()
                res = c.post("/dataset/flag", data={"csrf_token": token, "ids": ids,
                                                    "reason": "noisy", "back": "/dataset"},
                             follow_redirects=False)
                times.append((time.perf_counter() - t) * 1000)
                assert res.status_code == 303
            print(f"{'POST /dataset/flag (60 ids)':44s} {np.percentile(times, 50):8.1f} "
                  f"{np.percentile(times, 95):8.1f}")


if __name__ == "__main__":
    main()
