"""Server-drawn charts: every point lies inside the plot box, whatever the values."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from modescope.app.plots import curves_chart, loss_chart


def inside(chart_points: str, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    for pair in chart_points.split():
        x, y = map(float, pair.split(","))
        if not (x0 - 0.1 <= x <= x1 + 0.1 and y0 - 0.1 <= y <= y1 + 0.1):
            return False
    return True


def test_a_loss_just_above_a_round_tick_stays_on_the_chart() -> None:
    # the demo run's g_loss peaked at 6.75: the top tick was 6 and the line ran off the top
    stats = [{"epoch": e, "d_loss": 0.4, "g_loss": g}
             for e, g in enumerate([5.08, 5.91, 5.75, 6.75, 2.91, 5.73], start=1)]
    chart = loss_chart(stats)
    assert chart is not None
    assert float(chart.y_ticks[-1][1]) >= 6.75
    assert all(inside(s.points, chart.box) for s in chart.series)


@given(st.lists(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), min_size=1,
                max_size=30))
def test_every_point_is_inside_the_plot_box(values: list[float]) -> None:
    lo = min(0.0, min(values))
    chart = curves_chart({"v": [(float(i), v) for i, v in enumerate(values)]}, y_min=lo)
    assert chart is not None
    assert 2 <= len(chart.y_ticks) <= 12
    assert all(math.isfinite(float(label)) for _, label in chart.y_ticks)
    assert all(inside(s.points, chart.box) for s in chart.series)


def test_scores_on_a_zero_to_one_scale_end_at_one() -> None:
    chart = curves_chart({"s": [(1.0, 0.2), (2.0, 0.9)]}, y_max=1.0)
    assert chart is not None and chart.y_ticks[-1][1] == "1" and chart.y_ticks[0][1] == "0"
