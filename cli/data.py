"""``modescope ingest``, ``demo-data``, ``status`` and ``serve``."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from modescope.cli.common import JsonOpt, WorkspaceOpt, emit_json, progress_bar, warn
from modescope.core.errors import ModescopeError
from modescope.core.workspace import DEFAULT_WORKSPACE, Workspace


def ingest(
    folder: Annotated[Path, typer.Argument(help="Folder of images; subfolders become labels.")],
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    size: Annotated[
        int | None,
        typer.Option(help="Training size in px: 32, 64, 128 or 256 [default: 64, or the "
                          "workspace's]"),
    ] = None,
    fit: Annotated[
        str | None,
        typer.Option(help="crop: centre-crop to a square; pad: fit inside it on white "
                          "[default: crop, or the workspace's]"),
    ] = None,
    max_pixels: Annotated[
        int | None, typer.Option(help="Reject images with more pixels (decompression bombs) "
                                      "[default: Pillow's 89,478,485]"),
    ] = None,
    max_aspect: Annotated[
        float, typer.Option(help="Reject images whose long side exceeds this many short sides.")
    ] = 4.0,
    workers: Annotated[
        int | None, typer.Option(help="Decoding processes [default: one per core].")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when any file in the folder is rejected.")
    ] = False,
    holdout: Annotated[
        float | None,
        typer.Option(help="Share of the images held out: indexed and shown, never trained on "
                          "or exported; the reference for the copy verdicts. At least 200 "
                          "images where a fifth of the set allows; none below 100 images; 0 "
                          "turns it off [default: 0.1, or the workspace's]"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Decode, normalise and catalog every image under FOLDER (safe to rerun)."""
    from modescope.core.ingest import ingest as run_ingest
    from modescope.core.normalise import DEFAULT_MAX_PIXELS

    if fit not in (None, "crop", "pad"):
        raise ModescopeError(f"--fit {fit!r} is not supported; use crop or pad")
    fit_value: Literal["crop", "pad"] | None = fit  # type: ignore[assignment]
    with progress_bar("ingesting") as progress:
        report = run_ingest(
            folder, Workspace(workspace), size=size, fit=fit_value,
            max_pixels=max_pixels or DEFAULT_MAX_PIXELS, max_aspect=max_aspect,
            workers=workers, progress=progress, holdout=holdout,
        )
    if as_json:
        emit_json(report.as_json())
    else:
        for item in report.rejected_files:
            typer.echo(f"rejected: {item['path']}: {item['reason']}", err=True)
        typer.echo(report.summary())
    if report.nothing_readable:
        typer.echo(f"modescope: error: no readable image in {folder}", err=True)
        raise typer.Exit(1)
    if strict and (report.rejected or _rejected_in(workspace, report.root)):
        raise typer.Exit(1)


def _rejected_in(workspace: Path, root: str) -> int:
    from modescope.core.catalog import Catalog

    with Catalog.reading(Workspace(workspace).catalog_path) as catalog:
        return catalog.rejected_under(root)


def demo_data(
    out: Annotated[Path, typer.Argument(help="Folder to write (created; must be empty).")],
    n: Annotated[int, typer.Option("--n", help="Number of files.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 0,
    modes: Annotated[int, typer.Option(
        help="Known modes: 8 families, 16 (every silhouette x style) or 32 (those on a light "
             "or dark background).")] = 8,
    as_json: JsonOpt = False,
) -> None:
    """Draw a synthetic mask-like data set with known modes, noise and duplicates."""
    from modescope.core.demodata import write_demo_data

    with progress_bar("drawing") as progress:
        truth = write_demo_data(out, n=n, seed=seed, modes=modes, progress=progress)
    summary = truth.summary()
    if as_json:
        emit_json(summary)
    else:
        typer.echo(
            f"wrote {summary['files']} files in {summary['modes']} modes to {out} "
            f"({summary['noise']} noise, {summary['duplicates']} exact and "
            f"{summary['near_duplicates']} near duplicates); ground truth in {out}/truth.json"
        )


def status(workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE), as_json: JsonOpt = False) -> None:
    """Show what the workspace holds: image counts and rejection reasons."""
    from modescope.core.catalog import Catalog

    ws = Workspace(workspace)
    config = ws.read_config()
    with Catalog.reading(ws.catalog_path) as catalog:
        counts, reasons, last = catalog.counts(), catalog.reasons(), catalog.last_ingest()
    from modescope.indexer.store import index_summary

    idx = index_summary(ws)
    if as_json:
        emit_json({
            "workspace": str(ws.root), "image_size": config.image_size, "fit": config.fit,
            "counts": counts, "rejected_by_reason": dict(reasons), "last_ingest": last,
            "index": idx,
        })
        return
    typer.echo(f"workspace {ws.root} ({config.image_size} px, {config.fit})")
    typer.echo(
        f"{counts['ok']} ok, {counts['duplicate']} duplicate, {counts['rejected']} rejected"
    )
    if counts["held_out"]:
        typer.echo(f"{counts['held_out']} of the ok images are held out: never trained on, the "
                   "reference for the copy verdicts")
    for kind, count in reasons:
        typer.echo(f"  {count:6d}  {kind}")
    if idx is None:
        typer.echo("not indexed yet: run `modescope index`")
    elif "error" in idx:
        typer.echo(f"index: {idx['error']}")
    else:
        typer.echo(f"index: {idx['count']} of {counts['ok']} images, weights {idx['weights']}, "
                   f"{idx['input_size']}-px input, {idx['index_kind']}")
        warn(idx["warning"])


# on SIGTERM, how long requests in flight may finish before they are cancelled and the app
# shuts down (its analysis child with it): a JSON twin waiting for a long analysis otherwise
# kept a stopping server up until the analysis was done
STOP_GRACE_S = 5


def serve(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token_file: Annotated[Path | None, typer.Option(
        help="File holding the login token (else MODESCOPE_TOKEN); required off loopback.",
    )] = None,
    access_log: Annotated[bool, typer.Option(
        help="Log every request (off by default: a line per thumbnail is noise, and costs).",
    )] = False,
    workers: Annotated[int, typer.Option(
        min=1, max=64,
        help="Server processes on the same port (more share the load, e.g. one per core).",
    )] = 1,
) -> None:
    """Serve the web app for a workspace."""
    import uvicorn
    from pydantic import SecretStr

    from modescope.app.main import create_app
    from modescope.app.settings import Settings

    ws = Workspace(workspace)
    ws.read_config()  # fail here, in one line, rather than on the first request
    extra: dict[str, Any] = {}
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            typer.echo(f"modescope: error: cannot read --token-file {token_file}: {exc}", err=True)
            raise typer.Exit(2) from None
        if not token:
            typer.echo(f"modescope: error: --token-file {token_file} is empty; put the token "
                       "in it", err=True)
            raise typer.Exit(2)
        extra["token"] = SecretStr(token)
    settings = Settings(workspace=ws.root, host=host, **extra)
    try:
        settings.check_exposure()
    except ValueError as exc:
        typer.echo(f"modescope: error: {exc}", err=True)
        raise typer.Exit(2) from None
    login = " (log in with the token)" if settings.token is not None else ""
    if workers == 1:
        app = create_app(settings)
        typer.echo(f"modescope serving {ws.root} on http://{host}:{port}{login}", err=True)
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log,
                    timeout_graceful_shutdown=STOP_GRACE_S)
        return
    # several processes: each builds the app from the environment (MODESCOPE_* settings);
    # one session secret for all, so a cookie signed by one process is good in every other
    os.environ["MODESCOPE_WORKSPACE"] = str(ws.root)
    os.environ["MODESCOPE_HOST"] = host
    if settings.token is not None:
        os.environ["MODESCOPE_TOKEN"] = settings.token.get_secret_value()
    elif settings.session_secret is None:
        os.environ["MODESCOPE_SESSION_SECRET"] = secrets.token_hex(32)
    typer.echo(f"modescope serving {ws.root} on http://{host}:{port} with {workers} "
               f"processes{login}", err=True)
    uvicorn.run("modescope.app.main:create_app", factory=True, workers=workers, host=host,
                port=port, log_level="info", access_log=access_log,
                timeout_graceful_shutdown=STOP_GRACE_S)


def register(cli: typer.Typer) -> None:
    """Add this module's commands to the ``modescope`` command."""
    cli.command()(ingest)
    cli.command("demo-data")(demo_data)
    cli.command()(status)
    cli.command()(serve)
