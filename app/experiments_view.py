"""Experiments in the app: plan one (modescope.core.experiment), queue its runs as training jobs,
and show one row per run with an NDB/K-over-epochs chart of all runs together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modescope.app.jobs import JobConflict, JobRunner
from modescope.app.plots import Chart, curves_chart
from modescope.core import experiment as ex
from modescope.core.workspace import Workspace


@dataclass(frozen=True)
class ExperimentForm:
    name: str
    factor: str
    values: str  # comma-separated
    epochs: int
    batch: int
    size: int | None
    eval_every: int
    eval_samples: int
    seed: int = 0


@dataclass
class ExperimentPage:
    summary: dict[str, Any]
    chart: Chart | None
    keys: list[tuple[str, str]]  # (series class, label) in chart order


def start(ws: Workspace, jobs: JobRunner, form: ExperimentForm) -> ex.Experiment:
    """Validate, save the plan, and queue one training job per value (they run in turn)."""
    base = {"epochs": form.epochs, "batch": form.batch, "size": form.size,
            "eval_every": form.eval_every, "eval_samples": form.eval_samples, "seed": form.seed}
    planned = ex.Experiment(form.name, form.factor, [], base)
    for value in form.values.split(","):
        if value.strip() and ws.run(planned.run_name(value.strip())).exists():
            raise JobConflict(f"run {planned.run_name(value.strip())} exists; choose "
                              "another experiment name")
    exp = ex.create(ws, form.name, form.factor, form.values.split(","), base)
    for value in exp.values:
        argv = exp.request(value).to_argv(ws.root, as_json=True)
        jobs.submit("train", exp.run_name(value), {"experiment": exp.name, exp.factor: value,
                                                   **exp.base}, argv)
    return exp


def listing(ws: Workspace) -> list[dict[str, Any]]:
    return [ex.summary(ws, e) for e in ex.list_experiments(ws)]


def page(ws: Workspace, name: str) -> ExperimentPage:
    exp = ex.load(ws, name)  # NotFound (a 404) when there is no such experiment
    summary = ex.summary(ws, exp)
    curves = {r["run"]: [(float(p["epoch"]), float(p["ndb_over_k"])) for p in r["curve"]]
              for r in summary["rows"]}
    chart = curves_chart(curves, y_max=1.0)
    keys = [(s.name, r["value"] if exp.factor == "curated" else f"{exp.factor} {r['value']}")
            for s, r in
            zip(chart.series, summary["rows"], strict=True)] if chart else []
    return ExperimentPage(summary, chart, keys)
