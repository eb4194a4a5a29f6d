"""Load: open-loop mixed traffic against a real ``modescope serve`` on 127.0.0.1, then a flag audit.

Open loop, as wrk2 does it: every request has a scheduled time, fixed before the run from the
offered rate (Poisson arrivals by default, or evenly spaced; seeded), and fires at that time
whatever the server is doing, over N keep-alive connections. Latency is counted from the
scheduled time, so time a request waited in the client (for a free connection, for the event
loop) is latency too: a closed-loop client that times from when it picks a job up hides a
saturated server (coordinated omission). A saturated server shows as latency growing and an
achieved rate below the offered one.

The mix (MIX below) is every page a user of the curation flow hits, and its JSON twin: a run's
sample pages, dataset grid pages, training-image pages, the run's modes page, thumbnails; plus
a flag or unflag post through the JSON API every ``--flag-every`` seconds (with the session's
CSRF token). A flag post never overlaps another on the same image, so the last acknowledged
state of every image is known; afterwards each is checked in the catalog (lost: acknowledged
flagged, not in the catalog; stale: acknowledged unflagged, still there).

    python bench/load.py --build /tmp/load-ws            # make a demo workspace (once)
    python bench/load.py --workspace /tmp/load-ws/workspace --rate 200 --duration 60
    python bench/load.py ... --smoke --json              # 5 s at 40/s: what the tests run
    python bench/load.py ... --server-workers 2          # modescope serve --workers 2

Prints one table: per kind and overall, offered and achieved rate, errors, p50/p95/p99/max ms
from the schedule; how late the client fired (if the client cannot keep up its own lateness is
in the latencies, and the table says so); the flag audit; processes the server left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from modescope.core.catalog import Catalog
from modescope.core.workspace import Workspace

BIN = Path(sys.executable).parent
# kind -> share of the offered rate (flag posts come on their own clock, --flag-every)
MIX = {"sample": 0.16, "sample_json": 0.06, "dataset": 0.12, "dataset_json": 0.05,
       "image": 0.12, "image_json": 0.05, "modes": 0.04, "modes_json": 0.02,
       "thumbnail": 0.38}
TIMEOUT_S = 60.0  # a request not answered by then is an error


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


class Server:
    """``modescope serve`` on a free port; ``stop`` says how many processes it left behind."""

    def __init__(self, workspace: Path, log: Path, workers: int = 1) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
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

    def stop(self) -> int:
        """SIGTERM, then the number of processes it had started that are still running 10 s
        later (killed then)."""
        started = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()
        _, alive = psutil.wait_procs(started, timeout=10)
        for p in alive:
            p.kill()
        return len(alive)


class CpuMeter:
    """CPU seconds of the server's processes over the run, split into the server (its worker
    processes included) and its analysis children (multiprocessing-spawned processes under a
    server process), sampled twice a second so a child that exits still counts."""

    def __init__(self, server_pid: int) -> None:
        self.root = psutil.Process(server_pid)
        cmd = self.root.cmdline()
        self.workers = "--workers" in cmd and cmd[cmd.index("--workers") + 1] != "1"
        self.seen: dict[tuple[int, float], tuple[str, float]] = {}
        self.base: dict[tuple[int, float], float] = {}
        self._stop = threading.Event()
        self._sample()
        self.base = {k: v for k, (_, v) in self.seen.items()}
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for p in procs:
            try:
                if p.pid == self.root.pid:
                    role = "server"
                elif _spawned(p):  # --workers N: the server's own children are workers
                    role = "server" if self.workers and p.ppid() == self.root.pid else "analysis"
                else:
                    role = "other"  # multiprocessing's resource tracker
                t = p.cpu_times()
                self.seen[(p.pid, p.create_time())] = (role, t.user + t.system)
            except psutil.NoSuchProcess:
                pass

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        out: dict[str, float] = {"server": 0.0, "analysis": 0.0, "other": 0.0}
        for key, (role, cpu) in self.seen.items():
            out[role] += cpu - self.base.get(key, 0.0)
        return out


def _spawned(p: psutil.Process) -> bool:
    try:
        return any("spawn_main" in part for part in p.cmdline())
    except psutil.NoSuchProcess:
        return False


@dataclass
class Plan:
    """What the requests ask for: ids and pages that exist."""
    run: str
    samples: list[int]
    train_ids: list[int]
    pages: int
    csrf: str


@dataclass
class Shot:
    kind: str
    due: float  # scheduled, seconds from the start
    late: float = 0.0  # when it was sent, after ``due``
    latency: float = 0.0  # answered, after ``due``
    error: str | None = None


@dataclass
class Flags:
    """The flag posts' bookkeeping: ids in flight never get a second post."""
    pool: list[int]
    busy: set[int] = field(default_factory=set)
    expected: dict[int, bool] = field(default_factory=dict)  # last acknowledged state
    unknown: set[int] = field(default_factory=set)  # a post failed: state not known
    acked: int = 0


def schedule(rate: float, duration: float, flag_every: float, arrivals: str,
             rng: random.Random) -> list[Shot]:
    """Every request's kind and time, fixed before the run."""
    kinds, weights = list(MIX), list(MIX.values())
    shots: list[Shot] = []
    t = 0.0
    while True:
        t += rng.expovariate(rate) if arrivals == "poisson" else 1.0 / rate
        if t >= duration:
            break
        shots.append(Shot(rng.choices(kinds, weights)[0], t))
    if flag_every > 0:
        shots += [Shot("flag", flag_every * (i + 0.5))
                  for i in range(int(duration / flag_every))]
    return sorted(shots, key=lambda s: s.due)


def target(kind: str, plan: Plan, rng: random.Random) -> str:
    run = plan.run
    if kind in ("sample", "sample_json"):
        base = f"/runs/{run}/samples/{rng.choice(plan.samples)}"
        return base if kind == "sample" else "/api" + base
    if kind in ("dataset", "dataset_json"):
        page = f"?page={rng.randint(1, plan.pages)}"
        return ("/dataset" if kind == "dataset" else "/api/dataset") + page
    if kind in ("image", "image_json"):
        base = f"/dataset/images/{rng.choice(plan.train_ids)}"
        return base if kind == "image" else "/api" + base
    if kind in ("modes", "modes_json"):
        return f"/runs/{run}/modes" if kind == "modes" else f"/api/runs/{run}/modes"
    if kind == "thumbnail":
        return f"/images/train/{rng.choice(plan.train_ids)}.png"
    raise ValueError(kind)


class Connection:
    """One keep-alive HTTP/1.1 connection, written by hand on asyncio streams: at 200
    requests/s httpx's pool took a whole core of the two (its pending-request scans grow with
    the queue), so the client, not the server, set the achieved rate. This one spends tens of
    microseconds a request: a request line, the cookie, and a body read by Content-Length or
    chunks."""

    def __init__(self, host: str, port: int, cookies: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                f"Cookie: {self.cookie}", f"Content-Length: {len(body)}",
                *(f"{k}: {v}" for k, v in (headers or {}).items())]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        try:
            return await self._response(self.reader)
        except BaseException:
            self.close()  # a half-read response poisons the connection
            raise

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in
                  (line.partition(":") for line in lines[1:] if line)}
        if fields.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append(await reader.readexactly(size + 2))
            await reader.readuntil(b"\r\n")  # the empty trailer
            data = b"".join(p[:-2] for p in parts)
        else:
            data = await reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def fire(conn: Connection, shot: Shot, start: float, plan: Plan, flags: Flags,
               rng: random.Random) -> None:
    image_id: int | None = None
    try:
        if shot.kind == "flag":
            image_id = next((i for i in flags.pool if i not in flags.busy), None)
            if image_id is None:
                raise RuntimeError("every flag id has a post in flight")
            flags.pool.remove(image_id)
            flags.pool.append(image_id)  # the least recently posted id comes next
            flags.busy.add(image_id)
            flag = not flags.expected.get(image_id, False)
            body = json.dumps({"ids": [image_id], **({"reason": "noisy"} if flag else {})})
            status, data = await asyncio.wait_for(conn.request(
                "POST", "/api/dataset/flag" if flag else "/api/dataset/unflag",
                body.encode(), {"Content-Type": "application/json",
                                "X-CSRF-Token": plan.csrf}), TIMEOUT_S)
            if status == 200:
                flags.expected[image_id] = flag
                flags.unknown.discard(image_id)
                flags.acked += 1
        else:
            status, data = await asyncio.wait_for(
                conn.request("GET", target(shot.kind, plan, rng)), TIMEOUT_S)
        if not 200 <= status < 300:
            shot.error = f"{status} {data[:160].decode('utf-8', 'replace')}"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
            TimeoutError, RuntimeError) as exc:
        shot.error = f"{type(exc).__name__}: {exc}"
    finally:
        shot.latency = time.perf_counter() - start - shot.due
        if image_id is not None:
            flags.busy.discard(image_id)
            if shot.error:
                flags.unknown.add(image_id)


async def drive(url: str, cookies: dict[str, str], plan: Plan, shots: list[Shot],
                connections: int, flags: Flags, seed: int) -> float:
    """Fire every shot at its time; the seconds from the start to the last answer. A shot
    due goes into a queue that the connections empty: when all are busy it waits there, and
    that wait is latency."""
    rng = random.Random(seed + 1)
    host, port = url.removeprefix("http://").split(":")
    queue: asyncio.Queue[Shot | None] = asyncio.Queue()
    start = 0.0

    async def worker() -> None:
        conn = Connection(host, int(port), cookies)
        while (shot := await queue.get()) is not None:
            await fire(conn, shot, start, plan, flags, rng)
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter()
    for shot in shots:
        delay = start + shot.due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        shot.late = time.perf_counter() - start - shot.due  # the client's own lateness
        queue.put_nowait(shot)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return time.perf_counter() - start


def prepare(url: str, workspace: Path, run: str) -> tuple[Plan, dict[str, str]]:
    """Log in (the session cookie and its CSRF token), list what exists, and warm every kind
    until it answers 200 without a 'being computed' notice: measured traffic is steady state."""
    with httpx.Client(base_url=url, timeout=600) as client:
        page = client.get("/dataset")
        page.raise_for_status()
        m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        if not m:
            raise SystemExit("no CSRF token in /dataset: cannot post flags")
        ws = Workspace(workspace)
        with Catalog.reading(ws.catalog_path) as catalog:
            ids = [r.id for r in catalog.images("ok", limit=10**9)]
        samples = ws.run(run).sample_numbers()
        if not ids or not samples:
            raise SystemExit(f"{workspace} needs indexed training images and run {run}'s samples")
        pages = int(client.get("/api/dataset").json()["pages"])
        plan = Plan(run, samples, ids, max(1, pages), m.group(1))
        rng = random.Random(0)
        deadline = time.monotonic() + 600
        for kind in MIX:  # an HTML page computes what its JSON twin shows
            twin = kind if kind.endswith("_json") or kind == "thumbnail" else kind + "_json"
            while True:
                r = client.get(target(twin, plan, rng))
                body = r.json() if twin != "thumbnail" and r.status_code == 200 else {}
                if r.status_code == 200 and not (body.get("notice") or body.get("note")):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{kind} did not settle: {r.status_code} {r.text[:300]}")
                time.sleep(1)
        return plan, dict(client.cookies)


def ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    arr = np.array(values) * 1000
    out = {f"p{q}": round(float(np.percentile(arr, q)), 1) for q in (50, 95, 99)}
    return out | {"max": round(float(arr.max()), 1)}


def rows_of(shots: list[Shot], duration: float, elapsed: float) -> dict[str, dict[str, Any]]:
    rows = {}
    for kind in [*MIX, "flag", "all"]:
        mine = [s for s in shots if kind in ("all", s.kind)]
        ok = [s for s in mine if s.error is None]
        rows[kind] = {"requests": len(mine), "offered_per_s": round(len(mine) / duration, 1),
                      "achieved_per_s": round(len(ok) / elapsed, 1) if elapsed else 0.0,
                      "errors": len(mine) - len(ok)} | ms([s.latency for s in ok])
    return rows


def audit(workspace: Path, flags: Flags) -> dict[str, int]:
    with Catalog.reading(Workspace(workspace).catalog_path) as catalog:
        flagged = catalog.flagged_ids()
    known = {i: v for i, v in flags.expected.items() if i not in flags.unknown}
    want = {i for i, v in known.items() if v}
    return {"flag_posts_acked": flags.acked, "ids_checked": len(known),
            "expected_flagged": len(want), "found_flagged": len(want & flagged),
            "lost_flags": len(want - flagged),
            "stale_flags": sum(1 for i, v in known.items() if not v and i in flagged)}


def run_load(args: argparse.Namespace, workspace: Path) -> dict[str, Any]:
    server = Server(workspace, workspace.parent / "load-server.log", args.server_workers)
    try:
        plan, cookies = prepare(server.url, workspace, args.run)
        rng = random.Random(args.seed)
        shots = schedule(args.rate, args.duration, args.flag_every, args.arrivals, rng)
        pool = plan.train_ids[:]
        rng.shuffle(pool)
        flags = Flags(pool[:max(8, int(args.duration / max(args.flag_every, 0.1)))])
        # each post turns its image's flag over, from the state the catalog holds now (a run
        # after another would otherwise re-post the same flags: no change, no recomputation)
        with Catalog.reading(Workspace(workspace).catalog_path) as catalog:
            flagged = catalog.flagged_ids()
        flags.expected = {i: i in flagged for i in flags.pool}
        meter = CpuMeter(server.proc.pid)
        cpu0 = time.process_time()
        elapsed = asyncio.run(drive(server.url, cookies, plan, shots, args.connections, flags,
                                    args.seed))
        client_cpu = time.process_time() - cpu0
        cpu = meter.stop()
    finally:
        left = server.stop()
    errors = [s for s in shots if s.error]
    late = ms([s.late for s in shots])
    return {"rate": args.rate, "duration_s": args.duration, "arrivals": args.arrivals,
            "seed": args.seed, "connections": args.connections,
            "server_workers": args.server_workers, "cores": os.cpu_count(),
            "elapsed_s": round(elapsed, 2), "client_cpu_share": round(client_cpu / elapsed, 2),
            "server_cpu_share": round(cpu["server"] / elapsed, 2),
            "analysis_cpu_share": round(cpu["analysis"] / elapsed, 2),
            "load_average": round(os.getloadavg()[0], 1),
            "client_late_ms": late, "rows": rows_of(shots, args.duration, elapsed),
            **audit(workspace, flags), "processes_left": left,
            "error_examples": [f"{s.kind} {s.error}" for s in errors[:5]]}


def print_table(r: dict[str, Any]) -> None:
    print(f"load: {r['rate']:g} requests/s offered ({r['arrivals']} arrivals, seed {r['seed']}) "
          f"for {r['duration_s']:g} s over {r['connections']} keep-alive connections, "
          f"{r['server_workers']} server process(es), {r['cores']} cores, client and server on "
          f"one machine (client: {r['client_cpu_share']:.0%} of a core); latency from the "
          "scheduled time")
    print("| kind | requests | offered/s | achieved/s | errors | p50 ms | p95 ms | p99 ms | "
          "max ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, row in r["rows"].items():
        print(f"| {kind} | {row['requests']} | {row['offered_per_s']} | {row['achieved_per_s']} "
              f"| {row['errors']} | {row['p50']} | {row['p95']} | {row['p99']} | {row['max']} |")
    late = r["client_late_ms"]
    print(f"client sent late by p99 {late['p99']} ms, max {late['max']} ms (in the latencies)")
    print(f"flags: {r['flag_posts_acked']} posts acknowledged; {r['expected_flagged']} ids "
          f"should be flagged, {r['found_flagged']} found, {r['lost_flags']} lost, "
          f"{r['stale_flags']} stale ({r['ids_checked']} ids checked)")
    print(f"CPU over the run, in cores: server {r['server_cpu_share']}, its analysis child "
          f"{r['analysis_cpu_share']}, the client {r['client_cpu_share']}; load average "
          f"{r['load_average']} at the end")
    print(f"processes the stopped server left running: {r['processes_left']}")
    for line in r["error_examples"]:
        print("  error:", line)


def print_rounds(reports: list[dict[str, Any]]) -> None:
    """Every round's overall row, and the median of each column over the rounds."""
    cols = ("achieved_per_s", "errors", "p50", "p95", "p99", "max")
    print(f"\n{len(reports)} rounds, all kinds together (each against a fresh server):")
    print("| round | achieved/s | errors | p50 ms | p95 ms | p99 ms | max ms | lost flags |"
          "\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for i, r in enumerate(reports, 1):
        row = r["rows"]["all"]
        print(f"| {i} | " + " | ".join(str(row[c]) for c in cols) + f" | {r['lost_flags']} |")
    med = {c: float(np.median([r["rows"]["all"][c] for r in reports])) for c in cols}
    print("| median | " + " | ".join(f"{med[c]:g}" for c in cols) + " | "
          f"{float(np.median([r['lost_flags'] for r in reports])):g} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--build", type=Path, help="make a demo workspace under this folder first")
    ap.add_argument("--run", default="load")
    ap.add_argument("--rate", type=float, default=200.0, help="offered requests/s (pages)")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--arrivals", choices=("poisson", "constant"), default="poisson")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    ap.add_argument("--flag-every", type=float, default=2.0,
                    help="seconds between flag posts (0: none)")
    ap.add_argument("--server-workers", type=int, default=1,
                    help="server processes (modescope serve --workers)")
    ap.add_argument("--only", action="append", choices=list(MIX), metavar="KIND",
                    help="offer only this kind (repeatable), e.g. one page and its twin")
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs, each against a fresh server; then the median of each figure")
    ap.add_argument("--smoke", action="store_true", help="5 s at 40 requests/s, 8 connections")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.rate, args.duration, args.connections, args.flag_every = 40.0, 5.0, 8, 0.5
    if args.only:
        for kind in set(MIX) - set(args.only):
            del MIX[kind]
    workspace = build(args.build) if args.build else args.workspace
    if workspace is None:
        raise SystemExit("give --workspace WS or --build DIR")
    reports = [run_load(args, workspace) for _ in range(max(1, args.rounds))]
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=1))
        return
    for report in reports:
        print_table(report)
    if len(reports) > 1:
        print_rounds(reports)


if __name__ == "__main__":
    main()
