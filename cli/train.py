"""``modescope train``, ``modescope generate`` and ``modescope export-tfrecords``.

SIGTERM or SIGINT (Ctrl-C) cancels a training run: the loop saves its latest checkpoint, writes
status "cancelled" to progress.json and the command exits 0 saying how to resume. A second signal
stops at once. Any other failure writes status "failed" with the error to progress.json.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from modescope.cli.common import JsonOpt, WorkspaceOpt, emit_json, load_tensorflow
from modescope.core.catalog import Catalog
from modescope.core.errors import InputError
from modescope.core.runfolder import RunFolder
from modescope.core.training import (
    TrainConfig,
    TrainRequest,
    dataset_record,
    training_files,
)
from modescope.core.workspace import DEFAULT_WORKSPACE, Workspace


class _Cancel:
    """The first SIGTERM/SIGINT asks the loop to stop at the next step; a second one exits."""

    def __init__(self) -> None:
        self.asked = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Cancel:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.asked:
            sys.stderr.write("modescope: stopped without saving\n")
            raise SystemExit(130)
        self.asked = True
        sys.stderr.write("modescope: cancelling: saving the latest checkpoint...\n")

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def __call__(self) -> bool:
        return self.asked


class _Bar:
    """A rich progress bar on a terminal's stderr: step, losses, img/s, ETA."""

    def __init__(self) -> None:
        self.progress: Any = None

    def __enter__(self) -> _Bar:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[losses]}"), console=Console(stderr=True),
                transient=True)
            self.progress.start()
            self.task = self.progress.add_task("training", total=None, losses="")
        return self

    def __call__(self, info: dict[str, Any]) -> None:
        if self.progress is None:
            return
        losses = ""
        if info.get("d_loss") is not None:
            eta = time.strftime("%H:%M:%S", time.gmtime(info.get("eta_s") or 0))
            losses = (f"epoch {info['epoch']}/{info['total_epochs']} {info['size']}px "
                      f"D {info['d_loss']:.3f} G {info['g_loss']:.3f} "
                      f"{info['images_per_s']:.0f} img/s ETA {eta}")
        self.progress.update(self.task, completed=info["step"], total=info["total_steps"],
                             losses=losses)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _sizes(text: str | None, option: str) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{option} {text!r}: give comma-separated numbers, e.g. 32,64,128"
                         ) from None


def train(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    run: Annotated[str | None, typer.Option(help="Run name [default: run-DATE-TIME].")] = None,
    size: Annotated[int | None, typer.Option(help="Image size [default: the workspace's].")]
    = None,
    epochs: Annotated[int | None, typer.Option(
        help="Epochs [default: 25]; with --resume: the run's new total.")] = None,
    batch: Annotated[int, typer.Option(help="Global batch size (all replicas).")] = 64,
    filters: Annotated[int, typer.Option(
        help="Width of G and D (ngf = ndf): feature maps of the outermost blocks.")] = 64,
    upsample: Annotated[str, typer.Option(
        help="How G doubles its resolution: transpose (DCGAN's transposed convs) or resize "
             "(nearest-neighbour upsampling + 3x3 conv: no checkerboard).")] = "transpose",
    lr_d: Annotated[float, typer.Option(help="Discriminator learning rate.")] = 2e-4,
    lr_g: Annotated[float, typer.Option(help="Generator learning rate.")] = 2e-4,
    loss: Annotated[str, typer.Option(help="nonsaturating or hinge.")] = "nonsaturating",
    label_smoothing: Annotated[bool, typer.Option(
        help="One-sided label smoothing: real labels drawn from [0.9, 1.0].")] = True,
    instance_noise: Annotated[float, typer.Option(
        help="Initial sigma of noise on D's inputs, decaying to 0.")] = 0.0,
    d_steps: Annotated[int, typer.Option(help="D updates per G update.")] = 1,
    flip: Annotated[bool, typer.Option(help="Random horizontal flips.")] = True,
    progressive: Annotated[str | None, typer.Option(
        help="Progressive growing: sizes in turn, e.g. 32,64,128 (the last = --size).")] = None,
    stage_epochs: Annotated[str | None, typer.Option(
        help="Epochs per progressive stage, e.g. 2,2,4.")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Keep a checkpoint every N epochs.")] = 5,
    mixed_precision: Annotated[bool, typer.Option(
        help="bf16 compute, float32 losses (for GPUs/TPUs; slow on most CPUs).")] = False,
    tpu: Annotated[str | None, typer.Option(
        help="Train on a TPU: its address, or 'local' on a TPU VM.")] = None,
    tfrecords: Annotated[str | None, typer.Option(
        help="Read the images from these TFRecords (a glob; gs:// works) instead of the "
             "workspace's curated set.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    fraction: Annotated[float, typer.Option(
        help="Train on this share of the curated set: a random subset seeded by --seed.")] = 1.0,
    include_flagged: Annotated[bool, typer.Option(
        help="Ignore the flags: train on every ingested image (the uncurated baseline).")]
    = False,
    eval_every: Annotated[int | None, typer.Option(
        help="Score the generator every N epochs (NDB/K, JS, copy rate, dropped modes) into "
             "metrics.jsonl; 0 = never [default: --checkpoint-every].")] = None,
    eval_samples: Annotated[int, typer.Option(help="Fixed samples per evaluation.")] = 500,
    resume: Annotated[str | None, typer.Option(help="Continue RUN from its latest checkpoint.")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a DCGAN on the curated (unflagged) training images; resumable, cancellable."""
    from modescope.trainer.strategy import is_chief

    load_tensorflow()
    ws = Workspace(workspace)
    ws.read_config()
    try:
        chief = is_chief()
    except ValueError as exc:
        raise InputError(str(exc)) from None
    request = TrainRequest(
        run=resume or run or time.strftime("run-%Y%m%d-%H%M%S"), resume=resume is not None,
        size=size, epochs=epochs, batch=batch, filters=filters, upsample=upsample, lr_d=lr_d,
        lr_g=lr_g, loss=loss,
        label_smoothing=label_smoothing, instance_noise=instance_noise, d_steps=d_steps,
        flip=flip, progressive=_sizes(progressive, "--progressive"),
        stage_epochs=_sizes(stage_epochs, "--stage-epochs"), checkpoint_every=checkpoint_every,
        mixed_precision=mixed_precision, seed=seed, fraction=fraction,
        include_flagged=include_flagged, eval_every=eval_every, eval_samples=eval_samples,
        tpu=tpu, tfrecords=tfrecords)
    result = _train(ws, request, chief)
    name = request.run
    if as_json:
        emit_json(result)
    elif result["status"] == "cancelled":
        typer.echo(f"run {name}: cancelled in epoch {result['epoch'] + 1} (step "
                   f"{result['step']}); continue with: modescope train -w {ws.root} "
                   f"--resume {name}")
    else:
        typer.echo(f"run {name}: {result['status']} after epoch {result['epoch']} "
                   f"(step {result['step']}); sample grids in {ws.run(name).grids_dir}")


def _train(ws: Workspace, request: TrainRequest, chief: bool) -> dict[str, Any]:
    """Start or resume the run the request names; its result with the run and folder."""
    folder = ws.run(request.run)
    files: list[Path] | None = None
    tfrecords = request.tfrecords
    if request.resume:
        if not folder.has_checkpoint():
            raise InputError(f"run {request.run} has no checkpoint to resume from")
        config = folder.read_config()
        if request.epochs is not None and request.epochs != config.epochs:
            config = _retarget(config, request.epochs, folder, chief)
        record = folder.dataset() or {}
        tfrecords = record.get("tfrecords")
        files = None if tfrecords else [Path(f) for f in record.get("files", [])]
    else:
        if chief and folder.is_trained():
            raise InputError(f"run {request.run} exists; use --resume {request.run} or "
                             "another --run")
        config = request.config(ws.read_config().image_size)
        if not tfrecords:
            files = training_files(ws, request)
    evaluation = _evaluation(folder, request, chief)
    epoch_fn = make_epoch_fn(ws, evaluation, config) if chief and evaluation["every"] else None
    result = _run(config, folder, files, request.resume, request.tpu, tfrecords, chief,
                  epoch_fn)
    return {"run": request.run, "folder": str(folder.root), **result}


def _retarget(config: TrainConfig, epochs: int, folder: RunFolder, chief: bool) -> TrainConfig:
    """A resumed run's new total of epochs (not below those done), saved in its config.json."""
    done = folder.checkpoint_state()["epoch"]
    if config.progressive:
        raise InputError("--epochs cannot change a progressive run; its stages are fixed")
    if epochs < done:
        raise InputError(f"--epochs {epochs}: the run has done {done} epochs already")
    config = dataclasses.replace(config, epochs=epochs)
    if chief:
        folder.write_config(config)
    return config


def _evaluation(folder: RunFolder, request: TrainRequest, chief: bool) -> dict[str, Any]:
    """How often and on how many fixed samples the run is scored; kept in evaluation.json so
    a resumed run scores the same way."""
    if request.resume:
        kept = folder.evaluation()
        if kept is not None:
            return kept
    every = request.eval_every
    settings = {"every": request.checkpoint_every if every is None else every,
                "samples": request.eval_samples, "seed": request.seed}
    if chief and not request.resume:
        folder.create()
        folder.write_evaluation(settings)
    return settings


def make_epoch_fn(ws: Workspace, evaluation: dict[str, Any], config: Any) -> Any:
    """Score the generator at every ``every``-th epoch and the last one against the curated
    training set (indexer.checkpoint_eval); without a training index, say so once and skip."""
    import numpy as np

    from modescope.indexer.store import IndexStore

    if IndexStore(ws, "train").read_meta() is None:
        typer.secho("warning: no training index: the run is not scored per checkpoint; run "
                    "`modescope index` first to get NDB/K and copy rate in metrics.jsonl",
                    err=True, fg=typer.colors.YELLOW)
        return None
    z = np.random.default_rng([evaluation["seed"], 2]).standard_normal(
        (evaluation["samples"], config.latent_dim)).astype(np.float32)
    state: dict[str, Any] = {}

    def epoch_fn(epoch: int, sample: Any) -> dict[str, Any] | None:
        if epoch % evaluation["every"] and epoch != config.total_epochs:
            return None
        if "evaluator" not in state:
            from modescope.indexer.checkpoint_eval import CheckpointEvaluator

            state["evaluator"] = CheckpointEvaluator(ws)
        result: dict[str, Any] = state["evaluator"].evaluate(sample(z))
        return result

    return epoch_fn


def _run(config: TrainConfig, folder: RunFolder, files: list[Path] | None, resume: bool,
         tpu: str | None, tfrecords: str | None, chief: bool, epoch_fn: Any = None
         ) -> dict[str, Any]:
    from modescope.trainer.loop import train as run_train

    last: dict[str, Any] = {}

    def failed(message: str) -> None:
        if chief and folder.exists():
            folder.write_progress({**last, "status": "failed", "error": message})

    with _Cancel() as cancel, _Bar() as bar:
        def progress(info: dict[str, Any]) -> None:
            last.update(info)
            bar(info)

        try:
            result = run_train(config, folder, files, progress_fn=progress, abort_fn=cancel,
                               resume=resume, tpu=tpu, tfrecords=tfrecords, epoch_fn=epoch_fn)
        except ValueError as exc:
            failed(str(exc))
            raise InputError(str(exc)) from None
        except SystemExit:  # a second signal: stopped at once, without a new checkpoint
            if chief and folder.exists():
                folder.write_progress({**last, "status": "cancelled", "error":
                                       "stopped without saving; --resume continues from the "
                                       "last checkpoint"})
            raise
        except BaseException as exc:
            failed(f"{type(exc).__name__}: {exc}")
            raise
    return {**result, "d_loss": last.get("d_loss"), "g_loss": last.get("g_loss")}


def generate(
    run: Annotated[str, typer.Option("--run", help="The run whose generator to sample.")],
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    n: Annotated[int, typer.Option("--n", help="How many samples.")] = 500,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    checkpoint: Annotated[str, typer.Option(help="latest or epoch-NNNN.")] = "latest",
    as_json: JsonOpt = False,
) -> None:
    """Write a run's samples to runs/RUN/generated/ for `modescope index --source generated:RUN`."""
    from modescope.trainer.loop import generate as run_generate

    ws = Workspace(workspace)
    folder = ws.run(run)
    if not folder.has_checkpoint(checkpoint):
        raise InputError(f"run {run} has no checkpoint {checkpoint!r}")
    if not 1 <= n <= 100_000:
        raise InputError("--n must be between 1 and 100000")
    load_tensorflow()
    written = run_generate(folder, n, seed=seed, checkpoint=checkpoint)
    if as_json:
        emit_json({"run": run, "generated": written, "folder": str(folder.generated_dir)})
    else:
        typer.echo(f"wrote {written} samples to {folder.generated_dir}; next: modescope index "
                   f"--source generated:{run}")


def export_tfrecords(
    out: Annotated[Path, typer.Option("--out", help="Folder for the shards and manifest.json.")],
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    shards: Annotated[int, typer.Option(help="Number of shard files.")] = 8,
    as_json: JsonOpt = False,
) -> None:
    """Write the curated set as sharded TFRecords (PNG + id + label) for `train --tfrecords`
    (TPUs read from cloud storage: copy the folder there with gsutil)."""
    from modescope.trainer.data import write_tfrecords

    load_tensorflow()
    if not 1 <= shards <= 10_000:
        raise InputError("--shards must be between 1 and 10000")
    ws = Workspace(workspace)
    with Catalog.reading(ws.catalog_path) as catalog:
        curated = catalog.curated()
    items = [{"id": c.id, "sha256": c.sha256, "file": ws.resolve(c.file), "label": c.label}
             for c in curated]
    if not items:
        raise InputError(f"workspace {ws.root} has no curated images; run modescope ingest first")
    if out.exists() and any(out.glob("*.tfrecord")):
        raise InputError(f"{out} already holds TFRecords; give an empty or new --out folder")
    sha = dataset_record([ws.resolve(c.file) for c in curated])["sha256"]
    manifest = write_tfrecords(items, out, shards, sha)
    if as_json:
        emit_json({"out": str(out), **manifest})
    else:
        typer.echo(f"wrote {manifest['count']} images in {len(manifest['shards'])} shards to "
                   f"{out}; train with: modescope train --tfrecords '{out}/*.tfrecord'")


def retrain(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    run: Annotated[str | None, typer.Option(
        help="The new run's name [default: curated-DATE-TIME].")] = None,
    parent: Annotated[str | None, typer.Option(
        help="The run it is compared with and whose training options it keeps [default: the "
             "last inspected run trained on an earlier dataset version].")] = None,
    size: Annotated[int | None, typer.Option(help="Image size [default: the parent's].")]
    = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs [default: the parent's].")] = None,
    batch: Annotated[int | None, typer.Option(help="Batch size [default: the parent's].")]
    = None,
    n: Annotated[int, typer.Option("--n", help="Samples generated and inspected.")] = 500,
    queue: Annotated[bool, typer.Option(
        help="Queue it as a job for `modescope serve`, which runs it and shows it on /jobs, "
             "instead of running it here.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Retrain on the curated set with the parent run's options, then generate, index, inspect
    and compare it with the parent: did curation help? (the /jobs page's one-click loop)."""
    import subprocess

    from modescope.app.job_specs import RetrainForm, retrain_job

    ws = Workspace(workspace)
    ws.read_config()
    name, params, argv = retrain_job(ws, RetrainForm(run or "", size, epochs, batch, n,
                                                     parent or ""))
    if queue:
        from modescope.app.jobs import JobRunner

        runner = JobRunner(ws)
        try:  # the same retrain asked for again while it waits or runs: that job
            job = next((j for j in runner.db.list(("queued", "running"))
                        if (j.kind, j.run, j.argv) == ("retrain", name, argv)), None) or \
                runner.submit("retrain", name, params, argv)
        finally:
            runner.db.close()
        if as_json:
            emit_json({"job": job.id, "run": name, **params})
        else:
            typer.echo(f"queued retrain job #{job.id}: run {name}, compared with "
                       f"{params['parent'] or 'no parent'}; `modescope serve -w {ws.root}` runs "
                       "it (progress on /jobs)")
        return
    code = subprocess.call(argv, stdin=subprocess.DEVNULL)
    if code:
        raise typer.Exit(code)
    if as_json:
        emit_json({"run": name, **params})
    else:
        typer.echo(f"run {name}: retrained and inspected"
                   + (f"; compare at /compare?a={params['parent']}&b={name}"
                      if params["parent"] else ""))


def register(cli: typer.Typer) -> None:
    """Add this module's commands to the ``modescope`` command."""
    cli.command()(train)
    cli.command()(retrain)
    cli.command()(generate)
    cli.command("export-tfrecords")(export_tfrecords)
