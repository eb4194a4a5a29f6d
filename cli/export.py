"""``modescope export``: the curated set (ok images without a flag) as CSV, JSON or a folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from modescope.cli.common import WorkspaceOpt
from modescope.core.errors import InputError
from modescope.core.export import curated_rows, to_csv, to_folder, to_json
from modescope.core.files import atomic_write_bytes
from modescope.core.workspace import DEFAULT_WORKSPACE, Workspace


def export(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    format: Annotated[Literal["csv", "json", "folder"], typer.Option(
        "--format", help="csv or json (id, label, file name, sha256), or folder (copies of the "
                         "normalised images in label subfolders, named by id).")] = "csv",
    out: Annotated[Path | None, typer.Option(
        help="Where to write [default for csv/json: standard output]; a new or empty folder "
             "for --format folder.")] = None,
) -> None:
    """Export the curated set: the training images that are not flagged."""
    ws = Workspace(workspace)
    ws.read_config()
    rows = curated_rows(ws)
    if format == "folder":
        if out is None:
            raise InputError("--format folder needs --out PATH (a new or empty folder)")
        n = to_folder(ws, rows, out)
        typer.echo(f"exported {n} curated images to {out}", err=True)
        return
    text = to_csv(rows) if format == "csv" else to_json(rows)
    if out is None:
        sys.stdout.write(text)
        return
    atomic_write_bytes(out, text.encode("utf-8"))
    typer.echo(f"exported {len(rows)} curated images to {out}", err=True)


def register(cli: typer.Typer) -> None:
    """Add this module's commands to the ``modescope`` command."""
    cli.command()(export)
