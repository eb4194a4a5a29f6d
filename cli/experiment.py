"""``modescope experiment create|run|show|list``: sweeps of training runs over one factor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modescope.cli.common import JsonOpt, WorkspaceOpt, emit_json
from modescope.core import experiment as ex
from modescope.core.errors import InputError
from modescope.core.workspace import DEFAULT_WORKSPACE, Workspace

experiment_cli = typer.Typer(help="Sweeps: runs that differ in one factor, compared by NDB/K, "
                                  "JS, copy rate and dropped modes over epochs.",
                             no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Experiment name.")]


@experiment_cli.command("create")
def create_cmd(
    name: NameArg,
    factor: Annotated[str, typer.Option(help="; ".join(f"{k}: {v}"
                                                       for k, v in ex.FACTORS.items()))],
    values: Annotated[str, typer.Option(help="Comma-separated values of the factor.")],
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    epochs: Annotated[int, typer.Option(help="Epochs of every run.")] = 25,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 64,
    size: Annotated[int | None, typer.Option(help="Image size [default: the workspace's].")]
    = None,
    seed: Annotated[int, typer.Option(help="Seed of every run (and of the subsets).")] = 0,
    eval_every: Annotated[int, typer.Option(help="Evaluate every N epochs.")] = 5,
    eval_samples: Annotated[int, typer.Option(help="Samples per evaluation.")] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Plan an experiment (nothing trains yet; `experiment run NAME` does)."""
    ws = Workspace(workspace)
    ws.read_config()
    base: dict[str, Any] = {"epochs": epochs, "batch": batch, "size": size, "seed": seed,
                            "eval_every": eval_every, "eval_samples": eval_samples}
    exp = ex.create(ws, name, factor, values.split(","), base)
    if as_json:
        emit_json(ex.summary(ws, exp))
    else:
        typer.echo(f"experiment {name}: {len(exp.runs)} runs over {factor} = "
                   f"{', '.join(exp.values)} ({', '.join(exp.runs)}); next: modescope "
                   f"experiment run {name}")


@experiment_cli.command("run")
def run_cmd(name: NameArg, workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
            as_json: JsonOpt = False) -> None:
    """Train the experiment's runs one at a time (finished runs are skipped, interrupted
    ones resume), then print the comparison."""
    ws = Workspace(workspace)
    exp = ex.load(ws, name)
    for value in exp.values:
        request = ex.next_request(ws, exp, value)
        if request is None:
            continue
        typer.echo(f"experiment {name}: training {exp.run_name(value)} ({exp.factor} = {value})",
                   err=True)
        code = subprocess.call(request.to_argv(ws.root), stdin=subprocess.DEVNULL,
                               stdout=sys.stderr if as_json else None)
        if code != 0:
            raise InputError(f"run {exp.run_name(value)} stopped with exit code {code}; fix the "
                             f"cause and `modescope experiment run {name}` continues")
    show_cmd(name, workspace, as_json)


@experiment_cli.command("show")
def show_cmd(name: NameArg, workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
             as_json: JsonOpt = False) -> None:
    """One row per run: status, final and best NDB/K, JS, copy rate, dropped, time."""
    ws = Workspace(workspace)
    result = ex.summary(ws, ex.load(ws, name))
    if as_json:
        emit_json(result)
        return
    typer.echo(f"experiment {name}: {result['factor']} = {', '.join(result['values'])}")
    typer.echo(f"{'value':>12} {'status':>10} {'images':>6} {'epochs':>6} {'NDB/K':>6} "
               f"{'best':>6} {'JS':>7} {'copies':>6} {'dropped':>7} {'train s':>8}")

    def num(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    for r in result["rows"]:
        f, b = r["final"], r["best"]
        typer.echo(f"{r['value']:>12} {r['status']:>10} {num(r['images'], 'd'):>6} "
                   f"{r['epochs']:>6} {num(f['ndb_over_k'], '.3f'):>6} "
                   f"{num(b['ndb_over_k'], '.3f'):>6} {num(f['js'], '.4f'):>7} "
                   f"{num(f['copy_rate'], '.1%'):>6} {num(f['dropped'], 'd'):>7} "
                   f"{num(r['train_seconds'], '.0f'):>8}")


@experiment_cli.command("list")
def list_cmd(workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE), as_json: JsonOpt = False) -> None:
    """The workspace's experiments."""
    ws = Workspace(workspace)
    exps = ex.list_experiments(ws)
    if as_json:
        emit_json({"experiments": [{"name": e.name, "factor": e.factor, "values": e.values,
                                     "runs": e.runs} for e in exps]})
        return
    for e in exps:
        typer.echo(f"{e.name}: {e.factor} = {', '.join(e.values)}")
    if not exps:
        typer.echo("no experiments yet: modescope experiment create NAME --factor fraction "
                   "--values 0.5,1")


def register(cli: typer.Typer) -> None:
    """Add this module's commands to the ``modescope`` command."""
    cli.add_typer(experiment_cli, name="experiment")
