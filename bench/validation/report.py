"""Tables: one per measure, rows set x case, each row's missed targets named (report sets only:
on the tuning set a target met is no evidence)."""

from __future__ import annotations

from typing import Any

from .context import SetRun
from .measures import Measure, Row


def rows_of(m: Measure, runs: list[SetRun], cases: list[str]) -> list[Row]:
    rows: list[Row] = []
    chosen: list[str | None] = [c for c in cases if c in m.cases] if m.cases else [None]
    for run in runs:
        for case in chosen:
            row: Row = {"set": run.name, "role": run.role, "case": case or "-"}
            row.update(m.compute(run, case))
            judged = [(t, t.met(row.get(t.column))) for t in m.targets if t.applies(case)]
            row["misses"] = [t.text() for t, ok in judged if ok is False]
            row["judged"] = len([ok for _, ok in judged if ok is not None])
            rows.append(row)
    return rows


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1 else f"{v:.1f}"
    return str(v)


def markdown(m: Measure, rows: list[Row]) -> str:
    head = ["set", "case", *m.columns, "targets"]
    lines = [f"### {m.title}", ""]
    if m.targets:
        lines += ["Targets (report sets): " + "; ".join(t.text() for t in m.targets), ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        name = r["set"] + (" (tuning)" if r["role"] == "tuning" else "")
        if not r["judged"]:
            verdict = ""
        elif r["role"] == "tuning":
            verdict = "(tuning set)" if not r["misses"] else "(tuning) misses " + "; ".join(
                r["misses"])
        else:
            verdict = "met" if not r["misses"] else "**MISSED** " + "; ".join(r["misses"])
        cells = [name, r["case"], *(_cell(r.get(c)) for c in m.columns), verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(measures: list[tuple[Measure, list[Row]]]) -> list[str]:
    """One line per missed target on a report set."""
    return [f"{r['set']} / {r['case']}: {miss}" for _, rows in measures for r in rows
            if r["role"] == "report" for miss in r["misses"]]


def tuning_lines(tuned: list[dict[str, Any]]) -> list[str]:
    """What was tuned, on which set, by which rule, and the curve it was chosen from."""
    lines = []
    for t in tuned:
        value = "(product's own)" if t["value"] is None else f"{t['value']:g}"
        lines.append(f"tuned on {t.get('on', '-')}: inspect {t['analysis']} {t['option']} "
                     f"{value} ({t['rule']})")
        for c in t.get("curve", []):
            lines.append("  " + ", ".join(f"{k} {_cell(v)}" for k, v in c.items()))
    return lines
