"""``modescope inspect ...`` and ``modescope import-samples``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modescope.cli.common import JsonOpt, WorkspaceOpt, emit_json, warn
from modescope.core.errors import InputError
from modescope.core.workspace import DEFAULT_WORKSPACE, Workspace

inspect_cli = typer.Typer(help="Analyses: modes (NDB), memorisation, outliers, duplicates, "
                               "suggestions.", no_args_is_help=True)
RunOpt = Annotated[str, typer.Option("--run", help="The run whose generated samples to judge.")]
FlaggedOpt = Annotated[bool, typer.Option(
    help="Keep flagged training images in the reference set (default: the curated set).")]


def _report(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    warn(result.get("warning"))
    for w in result.get("warnings", []):
        warn(w)
    if as_json:
        emit_json(result)
    else:
        for line in lines:
            typer.echo(line)


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


@inspect_cli.command("modes")
def modes(
    run: RunOpt,
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    k: Annotated[int | None, typer.Option("--k", help="Bins [default: training images / 40, "
                                                        "2..100].")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of each bin's test.")] = 0.05,
    seed: Annotated[int, typer.Option(help="k-means and bootstrap seed.")] = 0,
    include_flagged: FlaggedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """NDB: which modes of the training data the run dropped or over-produced."""
    from modescope.indexer.inspect import inspect_modes

    if not 0 < alpha < 1:
        raise InputError("--alpha must be between 0 and 1")
    r = inspect_modes(Workspace(workspace), run, k=k, alpha=alpha, seed=seed,
                      include_flagged=include_flagged)
    lo, hi = r["ndb_over_k_ci95"]
    _report(r, as_json, [
        f"run {run}: NDB/K = {r['ndb_over_k']:.3f} (95% bootstrap {lo:.3f}-{hi:.3f}), "
        f"JS = {r['js']:.4f}, K = {r['k']}, {r['n_train']} training vs {r['n_gen']} samples",
        f"dropped bins: {r['dropped'] or 'none'}",
        f"over-produced bins: {r['over_produced'] or 'none'}",
    ])


@inspect_cli.command("memorisation")
def memorisation_cmd(
    run: RunOpt,
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    threshold: Annotated[float, typer.Option(
        help="Authenticity ratio under which a sample that is no pixel copy is 'close'.")] = 0.5,
    pixel_threshold: Annotated[float, typer.Option(
        help="Largest blurred patch difference (0-255) under which a sample is a copy.")] = 10.0,
    top: Annotated[int, typer.Option(help="Hubs and copies to print.")] = 10,
    include_flagged: FlaggedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Copies: each sample's nearest training image, authenticity ratio, verdict; hubness."""
    from modescope.indexer.inspect import inspect_memorisation

    if not 0 < pixel_threshold <= 255:
        raise InputError("--pixel-threshold must be in (0, 255]")
    r = inspect_memorisation(Workspace(workspace), run, threshold=threshold,
                             pixel_threshold=pixel_threshold, include_flagged=include_flagged)
    copies = sorted((s for s in r["samples"] if s["verdict"] == "copy"),
                    key=lambda s: s["pixel_difference"])
    _report(r, as_json, [
        f"run {run}: {r['copies']} of {r['n_samples']} samples are copies "
        f"(copy rate {r['copy_rate']:.1%}: pixels within {pixel_threshold:g}/255 of their "
        f"nearest training image); {r['close']} more are close in features "
        f"(authenticity ratio < {threshold:g})",
        *[f"  sample {s['sample']} copies training image #{s['nearest']} "
          f"(pixel difference {s['pixel_difference']:.1f}, ratio {s['authenticity']:.3f})"
          for s in copies[:top]],
        "most-copied training images (hubness; "
        f"{r['expected_hub_count']:.2f} expected each):",
        *[f"  #{h['id']}: nearest to {h['count']} samples ({h['copies']} copies)"
          for h in r["hubness"][:top]],
    ])


@inspect_cli.command("outliers")
def outliers_cmd(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    k: Annotated[int, typer.Option("--k", help="Neighbours in the distance score.")] = 10,
    z: Annotated[float, typer.Option(help="Robust z (median + z MAD) to suggest.")] = 3.0,
    top: Annotated[int, typer.Option(help="How many to print.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Training images far from all others on either layer (noise, off-topic)."""
    from modescope.indexer.inspect import inspect_outliers

    r = inspect_outliers(Workspace(workspace), k=k, z=z)
    _report(r, as_json, [
        f"{r['suggested']} training images lie over median + {z} MAD on a layer:",
        *[f"  #{o['id']}: robust z {o['score']:.2f} (block1 {o['z_block1']:.2f}, "
          f"block5 {o['z_block5']:.2f})" for o in r["ranked"][:top]],
    ])


@inspect_cli.command("duplicates")
def duplicates_cmd(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    threshold: Annotated[float | None, typer.Option(
        help="Cosine similarity (both layers) above which images are near-duplicates "
             "[default: adaptive, see docs/inspection.md].")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Groups of near-duplicate training images, with ingest's exact duplicates."""
    from modescope.indexer.inspect import inspect_duplicates

    r = inspect_duplicates(Workspace(workspace), threshold=threshold)
    _report(r, as_json, [
        f"{len(r['groups'])} duplicate groups (cosine > {r['threshold']:.6f}; "
        f"{r['exact_pairs']} exact duplicates from ingest):",
        *[f"  {g['ids']}" for g in r["groups"]],
    ])


@inspect_cli.command("suggest")
def suggest_cmd(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    kept: Annotated[str | None, typer.Option(
        help="Comma-separated ids the user reviewed and kept (good examples).")] = None,
    top: Annotated[int, typer.Option(help="How many suggestions.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """More like these: unflagged training images that resemble the flagged ones."""
    from modescope.indexer.inspect import inspect_suggest

    try:
        kept_ids = {int(v) for v in kept.split(",") if v.strip()} if kept else None
    except ValueError:
        raise InputError("--kept takes comma-separated image ids, e.g. 12,40,41") from None
    r = inspect_suggest(Workspace(workspace), kept=kept_ids, top=top)
    _report(r, as_json, [
        f"{len(r['suggestions'])} suggestions from {r['flagged']} flags ({r['method']}):",
        *[f"  #{s['id']}: {s['score']:.4f}" for s in r["suggestions"]],
    ])


def register(cli: typer.Typer) -> None:
    """Add this module's commands to the ``modescope`` command."""
    cli.command("import-samples")(import_samples_cmd)
    cli.add_typer(inspect_cli, name="inspect")
