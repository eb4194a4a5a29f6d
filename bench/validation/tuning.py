"""Thresholds the harness chooses on the tuning set, then applies unchanged to the report sets.

A tunable is a CLI option of one analysis with a grid and a rule; ``tune`` evaluates the grid on
the tuning set only. An option the CLI no longer lists is left to the product (and the report
says so): the product may come to calibrate it itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cli import has_option
from .context import SetRun
from .measures import pct

Curve = list[dict[str, Any]]


@dataclass(frozen=True)
class Tunable:
    analysis: str
    option: str
    grid: tuple[float, ...]
    rule: str
    choose: Callable[[SetRun, Tunable], tuple[float | None, Curve]]  # None: no value fits


def _copy_pct(run: SetRun, case: str, option: str, value: float) -> float | None:
    samples = run.inspect("memorisation", case, option, f"{value:g}")["samples"]
    return pct(sum(s["verdict"] == "copy" for s in samples), len(samples))


def largest_within(curve: Curve, column: str, budget: float) -> float | None:
    """The largest ``value`` of the curve whose ``column`` is at most ``budget`` (None: none)."""
    within = [c["value"] for c in curve if c[column] is not None and c[column] <= budget]
    return max(within) if within else None


def largest_within_false_copy_budget(run: SetRun, t: Tunable, budget: float = 1.0
                                     ) -> tuple[float | None, Curve]:
    """The largest value whose share of held-out real images called ``copy`` is <= budget %
    (the issue's target), which maximises the copies found within that budget."""
    curve = [{"value": v, "honest copy %": _copy_pct(run, "honest", t.option, v),
              "copies copy %": _copy_pct(run, "copies", t.option, v)} for v in t.grid]
    return largest_within(curve, "honest copy %", budget), curve


TUNABLES = (
    Tunable("memorisation", "--pixel-threshold", (2, 3, 4, 6, 8, 10, 12, 14, 16, 20, 25, 30),
            "largest value with <= 1 % of the tuning set's held-out images called copy",
            largest_within_false_copy_budget),
)


def tune(run: SetRun) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """(options per analysis, what was chosen and how) from the tuning set ``run``."""
    options: dict[str, list[str]] = {}
    chosen: list[dict[str, Any]] = []
    for t in TUNABLES:
        if not has_option(("inspect", t.analysis), t.option):
            chosen.append({"analysis": t.analysis, "option": t.option, "value": None,
                           "rule": "not an option of the CLI any more: the product's own"})
            continue
        best, curve = t.choose(run, t)
        value = min(t.grid) if best is None else best
        rule = t.rule if best is not None else f"{t.rule}: no value fits, the smallest taken"
        options.setdefault(t.analysis, []).extend([t.option, f"{value:g}"])
        chosen.append({"analysis": t.analysis, "option": t.option, "value": value,
                       "rule": rule, "on": run.name, "curve": curve})
    return options, chosen
