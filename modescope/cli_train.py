"""``modescope train`` and ``modescope generate``: the DCGAN on the curated set."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from modescope.catalog import Catalog
from modescope.cli import JsonOpt, WorkspaceOpt, _emit_json, _progress, cli
from modescope.errors import InputError
from modescope.samples import run_dir
from modescope.workspace import DEFAULT_WORKSPACE, Workspace


def curated_files(ws: Workspace) -> list[Path]:
    """The training images not flagged, by id: the curated set at the start of a run."""
    catalog = Catalog.open(ws.catalog_path, readonly=True)
    try:
        flagged = catalog.flagged_ids()
        return [ws.root / f for i, _, f in catalog.ok_files() if i not in flagged]
    finally:
        catalog.close()


@cli.command()
def train(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    run: Annotated[str | None, typer.Option(help="Run name [default: run-DATE-TIME].")] = None,
    size: Annotated[int | None, typer.Option(help="Image size [default: the workspace's].")]
    = None,
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 25,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr_d: Annotated[float, typer.Option(help="Discriminator learning rate.")] = 2e-4,
    lr_g: Annotated[float, typer.Option(help="Generator learning rate.")] = 2e-4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[str | None, typer.Option(help="Continue RUN from its latest checkpoint.")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a DCGAN on the curated (unflagged) training images; resumable."""
    from trainer.config import ConfigError, TrainConfig
    from trainer.loop import train as run_train

    ws = Workspace(workspace)
    ws_config = ws.read_config()
    if resume:
        folder = run_dir(ws, resume)
        if not (folder / "checkpoints" / "latest" / "state.json").is_file():
            raise InputError(f"run {resume} has no checkpoint to resume from")
        config = TrainConfig.loads((folder / "config.json").read_text())
        files = [Path(f) for f in json.loads((folder / "dataset.json").read_text())["files"]]
        name = resume
    else:
        name = run or time.strftime("run-%Y%m%d-%H%M%S")
        folder = run_dir(ws, name)
        if (folder / "config.json").exists():
            raise InputError(f"run {name} exists; use --resume {name} or another --run")
        try:
            config = TrainConfig(size=size or ws_config.image_size, epochs=epochs,
                                 batch_size=batch, lr_d=lr_d, lr_g=lr_g, seed=seed)
        except ConfigError as exc:
            raise InputError(str(exc)) from None
        files = curated_files(ws)
    last: dict[str, Any] = {}
    with _progress("training", unit="step") as bar:
        def progress(info: dict[str, Any]) -> None:
            last.update(info)
            if bar:
                bar(info["step"], info["total_steps"])

        try:
            result = run_train(config, folder, files, progress_fn=progress,
                               resume=bool(resume))
        except ValueError as exc:
            raise InputError(str(exc)) from None
    result = {"run": name, "folder": str(folder), **result,
              "d_loss": last.get("d_loss"), "g_loss": last.get("g_loss")}
    if as_json:
        _emit_json(result)
    else:
        typer.echo(f"run {name}: {result['status']} after epoch {result['epoch']} "
                   f"(step {result['step']}); samples in {folder / 'samples'}")


@cli.command()
def generate(
    run: Annotated[str, typer.Option("--run", help="The run whose generator to sample.")],
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    n: Annotated[int, typer.Option("--n", help="How many samples.")] = 500,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    checkpoint: Annotated[str, typer.Option(help="latest or epoch-NNNN.")] = "latest",
    as_json: JsonOpt = False,
) -> None:
    """Write a run's samples to runs/RUN/generated/ for `modescope index --source generated:RUN`."""
    from trainer.loop import generate as run_generate

    ws = Workspace(workspace)
    folder = run_dir(ws, run)
    if not (folder / "checkpoints" / checkpoint).is_dir():
        raise InputError(f"run {run} has no checkpoint {checkpoint!r}")
    if not 1 <= n <= 100_000:
        raise InputError("--n must be between 1 and 100000")
    written = run_generate(folder, folder / "generated", n, seed=seed, checkpoint=checkpoint)
    if as_json:
        _emit_json({"run": run, "generated": written, "folder": str(folder / "generated")})
    else:
        typer.echo(f"wrote {written} samples to {folder / 'generated'}; next: modescope index "
                   f"--source generated:{run}")
