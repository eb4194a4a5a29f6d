"""Load: mixed traffic against a real ``modescope serve`` on 127.0.0.1, then a flag audit.

Open-loop: requests are scheduled at a fixed rate (default 200/s for 60 s) whatever the server's
latency, so a slow server shows up as latency, not as a lower rate. The mix: sample-detail pages
(2 x 24 neighbours), dataset grid pages, thumbnails, and flag/unflag posts through the JSON API
with the session's CSRF token. Each worker owns its own image ids, so the last acknowledged
change of every id is known; afterwards every acknowledged flag state is checked in the catalog.

    python bench/load.py --build /tmp/load-ws            # make a demo workspace (once)
    python bench/load.py --workspace /tmp/load-ws/workspace --rate 200 --duration 60
    python bench/load.py ... --smoke --json              # 5 s at 40/s: what the tests run
    python bench/load.py ... --server-workers 2          # modescope serve --workers 2

Prints one table: p50/p95/p99 per kind, errors, lost flags. Targets (issue 8): p99 < 200 ms,
0 errors, 0 lost flags.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
MIX = (("sample", 0.40), ("dataset", 0.25), ("thumbnail", 0.25), ("flag", 0.10))


def modescope(*args: str | Path | int) -> None:
    cmd = [str(BIN / "modescope"), *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")


def build(base: Path, n: int = 1000) -> Path:
    """A demo workspace: n training images indexed, 200 held-out images as run ``load``."""
    ws = base / "workspace"
    if (base / "done").exists():
        return ws
    modescope("demo-data", base / "train", "--n", n, "--seed", 3)
    modescope("demo-data", base / "held", "--n", 200, "--seed", 4)
    modescope("ingest", base / "train", "-w", ws)
    modescope("index", "-w", ws, "--weights", "random", "--seed", 0)
    modescope("import-samples", base / "held", "--run", "load", "-w", ws)
    modescope("index", "-w", ws, "--source", "generated:load")
    (base / "done").write_text("ok\n")
    return ws


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, workspace: Path, log: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(
            [str(BIN / "modescope"), "serve", "-w", str(workspace), "--port", str(self.port),
             "--workers", str(workers)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited; see {log}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit("the server did not answer /health within 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


def session(url: str) -> tuple[httpx.Client, str]:
    """A client with the session cookie and its CSRF token (read from the dataset page)."""
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    page = client.get("/dataset")
    page.raise_for_status()
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if not m:
        raise SystemExit("no CSRF token in /dataset: cannot post flags")
    return client, m.group(1)


@dataclass
class Result:
    kind: str
    seconds: float
    status: int
    error: str | None = None


@dataclass
class Plan:
    samples: list[int]
    run: str
    train_ids: list[int]
    pages: int


@dataclass
class Worker:
    """One thread: its own client and its own flag ids (so their final state is known)."""
    client: httpx.Client
    csrf: str
    own_ids: list[int]
    expected: dict[int, bool] = field(default_factory=dict)

    def request(self, kind: str, plan: Plan, rng: random.Random) -> Result:
        t = time.perf_counter()
        try:
            if kind == "sample":
                r = self.client.get(f"/runs/{plan.run}/samples/{rng.choice(plan.samples)}")
            elif kind == "dataset":
                r = self.client.get("/dataset", params={"page": rng.randint(1, plan.pages)})
            elif kind == "thumbnail":
                r = self.client.get(f"/images/train/{rng.choice(plan.train_ids)}.png")
            else:
                image_id = rng.choice(self.own_ids)
                flag = not self.expected.get(image_id, False)
                r = self.client.post(
                    "/api/dataset/flag" if flag else "/api/dataset/unflag",
                    json={"ids": [image_id], **({"reason": "noisy"} if flag else {})},
                    headers={"X-CSRF-Token": self.csrf})
                if r.status_code == 200:
                    self.expected[image_id] = flag  # acknowledged: it must be in the catalog
            ok = 200 <= r.status_code < 400
            return Result(kind, time.perf_counter() - t, r.status_code,
                          None if ok else r.text[:200])
        except httpx.HTTPError as exc:
            return Result(kind, time.perf_counter() - t, 0, f"{type(exc).__name__}: {exc}")


def make_plan(client: httpx.Client, workspace: Path, run: str) -> Plan:
    conn = sqlite3.connect(f"file:{workspace / 'catalog.sqlite'}?mode=ro", uri=True)
    ids = [i for (i,) in conn.execute("SELECT id FROM images WHERE status = 'ok' ORDER BY id")]
    conn.close()
    samples = sorted(int(p.stem) for p in (workspace / "runs" / run / "generated").glob("*.png"))
    if not ids or not samples:
        raise SystemExit(f"{workspace} needs indexed training images and run {run}'s samples")
    overview = client.get("/api/dataset").json()
    pages = int(overview.get("pages") or overview.get("page_count") or 1)
    return Plan(samples, run, ids, max(1, pages))


def drive(url: str, plan: Plan, rate: float, duration: float, workers: int,
          seed: int = 0) -> tuple[list[Result], list[Worker]]:
    rng = random.Random(seed)
    flag_pool = list(plan.train_ids)
    rng.shuffle(flag_pool)
    pool = []
    for w in range(workers):
        client, csrf = session(url)
        pool.append(Worker(client, csrf, flag_pool[w::workers] or flag_pool[:1]))
    jobs: queue.Queue[tuple[float, str] | None] = queue.Queue()
    results: list[Result] = []
    lock = threading.Lock()

    def work(worker: Worker, wseed: int) -> None:
        wrng = random.Random(wseed)
        while (job := jobs.get()) is not None:
            _, kind = job
            res = worker.request(kind, plan, wrng)
            with lock:
                results.append(res)

    threads = [threading.Thread(target=work, args=(w, seed * 1000 + i), daemon=True)
               for i, w in enumerate(pool)]
    for t in threads:
        t.start()
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    start = time.perf_counter()
    n = int(rate * duration)
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put((due, rng.choices(kinds, weights)[0]))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    return results, pool


def audit(workspace: Path, pool: list[Worker]) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{workspace / 'catalog.sqlite'}?mode=ro", uri=True)
    flagged = {i for (i,) in conn.execute("SELECT image_id FROM flags")}
    conn.close()
    checked = lost = wrong = 0
    for w in pool:
        for image_id, should in w.expected.items():
            checked += 1
            if should and image_id not in flagged:
                lost += 1
            elif not should and image_id in flagged:
                wrong += 1
    return {"checked": checked, "lost_flags": lost, "stale_flags": wrong}


def percentiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    arr = np.array(values) * 1000
    return {f"p{q}": round(float(np.percentile(arr, q)), 1) for q in (50, 95, 99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--build", type=Path, help="make a demo workspace under this folder first")
    ap.add_argument("--run", default="load")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=48, help="client threads")
    ap.add_argument("--server-workers", type=int, default=1,
                    help="server processes (modescope serve --workers)")
    ap.add_argument("--smoke", action="store_true", help="5 s at 40 requests/s")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.rate, args.duration, args.workers = 40.0, 5.0, 8
    workspace = build(args.build) if args.build else args.workspace
    if workspace is None:
        raise SystemExit("give --workspace WS or --build DIR")
    server = Server(workspace, workspace.parent / "load-server.log", args.server_workers)
    try:
        client, _ = session(server.url)
        plan = make_plan(client, workspace, args.run)
        for n in plan.samples[:3]:  # warm the analyses caches: measured traffic is steady state
            client.get(f"/runs/{plan.run}/samples/{n}", timeout=300)
        results, pool = drive(server.url, plan, args.rate, args.duration, args.workers)
    finally:
        server.stop()
    flags = audit(workspace, pool)
    errors = [r for r in results if r.error]
    rows = {kind: percentiles([r.seconds for r in results if r.kind == kind]) | {
        "count": sum(r.kind == kind for r in results),
        "errors": sum(1 for r in errors if r.kind == kind)} for kind, _ in MIX}
    rows["all"] = percentiles([r.seconds for r in results]) | {
        "count": len(results), "errors": len(errors)}
    report = {"rate": args.rate, "duration_s": args.duration, "workers": args.workers,
              "server_workers": args.server_workers,
              "cores": os.cpu_count(), "rows": rows, **flags,
              "error_examples": [f"{r.kind} {r.status} {r.error}" for r in errors[:5]]}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"load: {args.rate:g} requests/s for {args.duration:g} s, {args.workers} client "
          f"threads, {args.server_workers} server processes, {os.cpu_count()} cores, server "
          "and client on one machine")
    print("| kind | requests | p50 ms | p95 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|")
    for kind, r in rows.items():
        print(f"| {kind} | {r['count']} | {r['p50']} | {r['p95']} | {r['p99']} | {r['errors']} |")
    print(f"flags: {flags['checked']} acknowledged states checked, {flags['lost_flags']} lost, "
          f"{flags['stale_flags']} stale")
    for line in report["error_examples"]:
        print("  error:", line)


if __name__ == "__main__":
    main()
