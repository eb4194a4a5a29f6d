"""Web benchmark: server time of the sample-detail page (2 x 24 neighbours) at 10k and 100k.

    python bench/web_bench.py [--sizes 10k,100k] [--requests 300] [--samples 1000]

For each size a temporary workspace is built: the 300-file demo set ingested for real (the
catalog, workspace.json and normalised PNGs), the catalog grown to N training images with rows
that reuse those PNGs under new content hashes, and ``index/train/`` plus
``index/generated-bench/`` written in the indexer's own format (meta.json, chunks/*.npz,
block1/block5.faiss built by ``VectorIndex.build``: flat up to 25k, IVF above) from random
1,024-d unit vectors. The run ``bench`` has ``--samples`` generated PNGs; its modes and
memorisation analyses are computed and cached first (as the pipeline job does), so each page
shows the verdict and the mode the way a user sees them.

Measured in-process with FastAPI's TestClient (no network, no uvicorn): the wall time of one
``GET /runs/bench/samples/{n}`` for a random n -- routing, the cached-analysis freshness check,
the stored-vector lookup, two FAISS searches, one catalog read and the Jinja render. Thumbnails
are separate requests and not counted. Target: p95 <= 30 ms on this CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modescope.app.analyses import store_analysis  # noqa: E402
from modescope.core.catalog_db import connect  # noqa: E402
from modescope.core.workspace import Workspace  # noqa: E402
from modescope.indexer.index import VectorIndex  # noqa: E402
from modescope.indexer.store import IndexStore  # noqa: E402

DIM = 1024
SPEC = {"weights": "random", "seed": 0, "input_size": 64,
        "pooling": {"block1": "grid4", "block5": "gapgmp"}}


def modescope(*args: str) -> None:
    exe = Path(sys.executable).parent / "modescope"
    subprocess.run([str(exe), *args], check=True, capture_output=True)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def write_index(ws: Workspace, source: str, ids: np.ndarray, shas: list[str],
                rng: np.random.Generator) -> str:
    store = IndexStore(ws, source)
    feats = {"block1": unit(rng, len(ids)), "block5": unit(rng, len(ids))}
    for s in range(0, len(ids), 20_000):
        store.write_chunk(ids[s:s + 20_000], shas[s:s + 20_000],
                          {k: v[s:s + 20_000] for k, v in feats.items()})
    kinds = set()
    for layer, vecs in feats.items():
        vi = VectorIndex.build(ids, vecs)
        vi.save(store.layer_path(layer))
        kinds.add(vi.kind)
    store.write_meta({
        "version": 1, "source": source, "model": "vgg16", "spec": SPEC,
        "weights": "random (seed 0)", "trained": False, "warning": None, "input_size": 64,
        "layers": {"block1": {"layer": "block1_pool", "pooling": "grid4", "dim": DIM},
                   "block5": {"layer": "block5_pool", "pooling": "gapgmp", "dim": DIM}},
        "count": len(ids), "index_kind": kinds.pop(), "engine": "fp32", "int8_agreement": None,
        "versions": {}})
    return store.read_meta()["index_kind"]  # type: ignore[index]


def build(root: Path, n_train: int, n_samples: int, demo: Path) -> tuple[Workspace, str]:
    ws = Workspace(root / "ws")
    modescope("ingest", str(demo), "--workspace", str(ws.root))
    conn = connect(ws.catalog_path)
    real = conn.execute("SELECT file FROM images WHERE status = 'ok' ORDER BY id").fetchall()
    files = [r[0] for r in real]
    n_real = len(files)
    stamp = "2026-01-01T00:00:00+00:00"
    rows = [(1_000_000 + i, f"/synthetic/{i:07d}.png", f"label{i % 7}",
             hashlib.sha256(f"synthetic {i}".encode()).hexdigest(), files[i % n_real], stamp)
            for i in range(n_train - n_real)]
    with conn:
        conn.executemany("INSERT INTO images (id, path, label, sha256, status, file, "
                         "ingested_at) VALUES (?, ?, ?, ?, 'ok', ?, ?)", rows)
    ok = conn.execute("SELECT id, sha256 FROM images WHERE status = 'ok' ORDER BY id").fetchall()
    conn.close()
    rng = np.random.default_rng(0)
    kind = write_index(ws, "train", np.array([r[0] for r in ok], np.int64),
                       [r[1] for r in ok], rng)
    gen = ws.root / "runs" / "bench" / "generated"
    gen.mkdir(parents=True)
    shas = []
    for i in range(n_samples):
        data = (ws.root / files[i % n_real]).read_bytes()
        (gen / f"{i:06d}.png").write_bytes(data)
        shas.append(hashlib.sha256(data).hexdigest())
    write_index(ws, "generated:bench", np.arange(n_samples, dtype=np.int64), shas, rng)
    for analysis in ("modes", "memorisation"):
        store_analysis(ws, "bench", analysis)
    return ws, kind


def measure(ws: Workspace, requests: int, n_samples: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from modescope.app.main import create_app
    from modescope.app.settings import Settings

    rng = np.random.default_rng(1)
    with TestClient(create_app(Settings(workspace=ws.root))) as client:
        t0 = time.perf_counter()
        first = client.get("/runs/bench/samples/0")
        cold = time.perf_counter() - t0
        assert first.status_code == 200, first.text[:500]
        assert first.text.count('href="/dataset/images/') >= 48
        assert "verdict-" in first.text and "bin " in first.text
        times = []
        for n in rng.integers(0, n_samples, requests).tolist():
            t = time.perf_counter()
            res = client.get(f"/runs/bench/samples/{n}")
            times.append(time.perf_counter() - t)
            assert res.status_code == 200
    ms = np.array(times) * 1000
    return {"cold_ms": cold * 1000, "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "max": float(ms.max())}


def parse_size(text: str) -> int:
    text = text.strip().lower()
    return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="web-bench-"))
    try:
        demo = tmp / "demo"
        modescope("demo-data", str(demo), "--n", "300", "--seed", "7")
        results = []
        for size in [parse_size(s) for s in args.sizes.split(",")]:
            t = time.perf_counter()
            ws, kind = build(tmp / f"n{size}", size, args.samples, demo)
            built = time.perf_counter() - t
            r = measure(ws, args.requests, args.samples)
            results.append((size, kind, built, r))
            shutil.rmtree(tmp / f"n{size}")
        cpu = os.cpu_count()
        print(f"sample-detail page, in-process TestClient, {args.requests} requests, "
              f"{args.samples} samples, {cpu} CPUs; analyses cached")
        print(f"{'training images':>16} {'index':>6} {'build s':>8} {'first ms':>9} "
              f"{'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'p95<=30':>8}")
        for size, kind, built, r in results:
            print(f"{size:>16,} {kind:>6} {built:>8.1f} {r['cold_ms']:>9.0f} {r['p50']:>7.1f} "
                  f"{r['p95']:>7.1f} {r['max']:>7.1f} {'yes' if r['p95'] <= 30 else 'NO':>8}")
        print(json.dumps([{"n_train": s, "index": k, **r} for s, k, _, r in results]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
