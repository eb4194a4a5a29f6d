"""``modescope inspect NAME`` (one command per registered analysis that declares a ``cli``:
indexer/analyses/registry.py) and ``modescope import-samples``."""

from __future__ import annotations

from collections.abc import Callable
from inspect import Parameter, Signature
from pathlib import Path
from typing import Annotated, Any

import typer

from modescope.cli.common import JsonOpt, WorkspaceOpt, emit_json, warn
from modescope.core.workspace import DEFAULT_WORKSPACE, Workspace
from modescope.indexer.analyses.registry import AnalysisSpec, Cli, analyses, calc_analysis

RunOpt = Annotated[str, typer.Option("--run", help="The run whose generated samples to judge.")]


def _report(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    warn(result.get("warning"))
    for w in result.get("warnings", []):
        warn(w)
    if as_json:
        emit_json(result)
    else:
        for line in lines:
            typer.echo(line)


def _parameters(spec: AnalysisSpec[Any], cli: Cli[Any]) -> list[Parameter]:
    """--run (a run analysis), --workspace, the analysis's own options, --json."""
    kw = Parameter.POSITIONAL_OR_KEYWORD
    params = [Parameter("run", kw, annotation=RunOpt)] if spec.inputs.run else []
    params.append(Parameter("workspace", kw, default=Path(DEFAULT_WORKSPACE),
                            annotation=WorkspaceOpt))
    for o in cli.options:
        params.append(Parameter(o.name, kw, default=o.default, annotation=Annotated[
            o.type, typer.Option(*o.flags, help=o.help)]))
    params.append(Parameter("as_json", kw, default=False, annotation=JsonOpt))
    return params


def analysis_command(spec: AnalysisSpec[Any], cli: Cli[Any]) -> Callable[..., None]:
    """A Typer command for one analysis: options parsed and checked, the result computed,
    printed as text lines or (``--json``) as its JSON form."""

    def command(**kwargs: Any) -> None:
        ws = Workspace(kwargs.pop("workspace"))
        as_json = kwargs.pop("as_json")
        run = kwargs.pop("run", None)
        given = {o.name: o.parse(kwargs[o.name]) if o.parse else kwargs[o.name]
                 for o in cli.options}
        computed = {o.name: given[o.name] for o in cli.options if not o.display_only}
        result = calc_analysis(spec.name, ws, run, **computed)
        lines = cli.lines(result, given) if cli.lines else []
        _report(result.as_json(), as_json, lines)

    params = _parameters(spec, cli)
    command.__signature__ = Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = cli.help
    command.__name__ = command.__qualname__ = f"inspect_{spec.name.replace('-', '_')}"
    return command


def import_samples_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of generated images (any GAN).")],
    run: RunOpt,
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    replace: Annotated[bool, typer.Option(help="Replace the run's existing samples.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a folder of generated images as RUN's samples (then index and inspect them)."""
    from modescope.core.import_samples import import_samples

    result = import_samples(folder, Workspace(workspace), run, replace=replace)
    if as_json:
        emit_json(result)
        return
    for r in result["rejected"]:
        typer.echo(f"rejected: {r['path']}: {r['reason']}", err=True)
    typer.echo(f"imported {result['imported']} samples into run {run} "
               f"({len(result['rejected'])} rejected); next: modescope index --source "
               f"generated:{run}")


def register(cli: typer.Typer) -> None:
    """Add this module's commands to the ``modescope`` command."""
    cli.command("import-samples")(import_samples_cmd)
    shown = [(s, s.cli) for s in analyses() if s.cli is not None]
    labels = ", ".join(c.label or s.name for s, c in shown)
    inspect_cli = typer.Typer(help=f"Analyses: {labels}.", no_args_is_help=True)
    for spec, cli_spec in shown:
        inspect_cli.command(spec.name)(analysis_command(spec, cli_spec))
    cli.add_typer(inspect_cli, name="inspect")
