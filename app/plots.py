"""Loss curves as server-drawn SVG geometry (no inline style: colours come from static/runs.css)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 640, 240
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 12, 28


@dataclass(frozen=True)
class Series:
    name: str
    points: str  # "x,y x,y ..." for <polyline points>
    last: float | None


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    series: list[Series]
    y_ticks: list[tuple[float, str]]  # (y pixel, label)
    x_ticks: list[tuple[float, str]]
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the plot area


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = [start]  # up to the first tick at or above hi, so no value is drawn off the chart
    while ticks[-1] < hi - step * 1e-9:
        ticks.append(start + len(ticks) * step)
    return ticks


def loss_chart(stats: list[dict[str, Any]], keys: tuple[str, ...] = ("d_loss", "g_loss")
               ) -> Chart | None:
    """One polyline per loss against the epoch, from stats.jsonl rows (series named by key)."""
    curves = {k: [(float(r["epoch"]), float(r[k])) for r in stats
                  if isinstance(r.get("epoch"), int | float) and isinstance(r.get(k), int | float)
                  and math.isfinite(r[k])] for k in keys}
    values = [y for pts in curves.values() for _, y in pts]
    if not values:
        return None
    return curves_chart(curves, y_min=min(0.0, min(values)), named=True)


def curves_chart(curves: dict[str, list[tuple[float, float]]], *, y_min: float = 0.0,
                 y_max: float | None = None, named: bool = False) -> Chart | None:
    """One polyline per curve of (epoch, value) points: the losses of a run, its scores, or the
    runs of an experiment. Series are named by their key (``named``) or ``c0``, ``c1``... (CSS
    colours by index; the caller keeps the order to label them)."""
    pts_all = [(x, y) for pts in curves.values() for x, y in pts if math.isfinite(y)]
    if not pts_all:
        return None
    xs = [x for x, _ in pts_all]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    top = max(y for _, y in pts_all) if y_max is None else y_max
    ticks = _nice_ticks(y_min, max(top, y_min + 1e-6))
    y_lo, y_hi = ticks[0], ticks[-1]
    x0, y0, x1, y1 = PAD_L, PAD_T, WIDTH - PAD_R, HEIGHT - PAD_B

    def px(x: float) -> float:
        return round(x0 + (x - x_lo) / (x_hi - x_lo) * (x1 - x0), 1)

    def py(v: float) -> float:
        return round(y1 - (v - y_lo) / (y_hi - y_lo) * (y1 - y0), 1)

    series = []
    for i, pts in enumerate(curves.values()):
        good = [(x, y) for x, y in sorted(pts) if math.isfinite(y)]
        name = list(curves)[i] if named else f"c{i % 8}"
        series.append(Series(name, " ".join(f"{px(x)},{py(y)}" for x, y in good),
                             good[-1][1] if good else None))
    step = max(1, math.ceil((x_hi - x_lo) / 8))
    x_ticks = [(px(e), str(e)) for e in range(math.ceil(x_lo), int(x_hi) + 1, step)]
    return Chart(WIDTH, HEIGHT, series, [(py(t), f"{t:g}") for t in ticks], x_ticks,
                 (x0, y0, x1, y1))


def scores_chart(rows: list[dict[str, Any]]) -> Chart | None:
    """NDB/K, copy rate, dropped/K and coverage (block5) per checkpoint (metrics.jsonl), on
    one 0-1 scale (FD and KID have scales of their own: the table shows them)."""
    def curve(value: Any) -> list[tuple[float, float]]:
        out = []
        for r in rows:
            v = value(r)
            if isinstance(r.get("epoch"), int) and isinstance(v, int | float):
                out.append((float(r["epoch"]), float(v)))
        return out

    return curves_chart({
        "ndb_over_k": curve(lambda r: r.get("ndb_over_k")),
        "copy_rate": curve(lambda r: r.get("copy_rate")),
        "dropped_share": curve(lambda r: r["dropped"] / r["k"] if r.get("k") else None),
        "coverage": curve(lambda r: r.get("coverage_block5")),
    }, y_max=1.0)
