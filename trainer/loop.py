"""``train(config, run_dir, files, progress_fn, abort_fn)``: a DCGAN run on the curated images.

The run folder is the trainer's only interface (docs/training.md):
    config.json, dataset.json (the curated file list and its hash: the dataset version),
    preview.png (the first real batch exactly as the model receives it, mapped back to pixels),
    noise.npy (the fixed noise of every epoch's grid), samples/epoch-NNNN.png,
    stats.jsonl (append-only), progress.json, checkpoints/latest/ (+ epoch-NNNN/ every N
    epochs), tensorboard/ (TensorFlow backend), log.txt.
Backends: TensorFlow (tf.distribute strategies, tf.data) or JAX (one device, numpy input; no
TensorFlow import at all). Progressive growing trains the sizes of ``config.progressive`` in turn.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modescope.core.training import TrainConfig, dataset_record
from modescope.trainer.data import load_images, numpy_batches, resize_images, tf_dataset
from modescope.trainer.runfolder import (
    Run,
    image_grid,
    load_checkpoint,
    save_checkpoint,
    save_png,
    to_pixels,
)

ProgressFn = Callable[[dict[str, Any]], None]
AbortFn = Callable[[], bool]
SampleFn = Callable[[np.ndarray], np.ndarray]
EpochFn = Callable[[int, SampleFn], dict[str, Any] | None]


class Models:
    """G, D, their optimizers and the step function of one stage (one image size)."""

    def __init__(self, config: TrainConfig, stage: int, strategy: Any, batch: int) -> None:
        import keras

        from modescope.trainer.models import build_discriminator, build_generator

        self.size = stage_sizes(config)[stage]
        self.stage = stage
        progressive = bool(config.progressive)
        fade = progressive and stage > 0
        final = config.size if progressive else None
        sync_bn = strategy is not None and strategy.num_replicas_in_sync > 1
        with strategy.scope() if strategy is not None else _nullcontext():
            self.g = build_generator(self.size, config.latent_dim, config.gen_filters,
                                     final=final, fade=fade, synchronized=sync_bn)
            self.d = build_discriminator(self.size, config.disc_filters, final=final,
                                         fade=fade, synchronized=sync_bn)
            self.opt_g = keras.optimizers.Adam(config.lr_g, beta_1=config.beta1)
            self.opt_d = keras.optimizers.Adam(config.lr_d, beta_1=config.beta1)
            self.opt_g.build(self.g.trainable_variables)
            self.opt_d.build(self.d.trainable_variables)

    def make_step(self, config: TrainConfig, strategy: Any, batch: int) -> Any:
        self.step: Any
        if strategy is None:
            from modescope.trainer.step_jax import JaxStep

            self.step = JaxStep(self.g, self.d, self.opt_g, self.opt_d, config, batch)
        else:
            from modescope.trainer.step_tf import TFStep

            self.step = TFStep(strategy, self.g, self.d, self.opt_g, self.opt_d, config, batch)
        return self.step


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def stage_sizes(config: TrainConfig) -> tuple[int, ...]:
    return config.progressive or (config.size,)


def stage_of(config: TrainConfig, epoch: int) -> int:
    """The stage that trains (0-based) ``epoch``."""
    if not config.progressive:
        return 0
    bounds = np.cumsum(config.stage_epochs)
    return int(np.searchsorted(bounds, epoch, side="right"))


def train(config: TrainConfig, run_dir: Path, files: list[Path] | None = None,
          progress_fn: ProgressFn | None = None, abort_fn: AbortFn | None = None,
          resume: bool = False, *, tpu: str | None = None, tfrecords: str | None = None,
          epoch_fn: EpochFn | None = None) -> dict[str, Any]:
    """Train (or resume) a run; returns {"status": "finished"|"cancelled", "epoch", "step"}.

    ``epoch_fn(epoch, sample)``, on the chief after each epoch's checkpoint, may score the
    generator: ``sample(z)`` turns latent vectors into uint8 images at the current size. A dict
    it returns becomes a row of ``metrics.jsonl`` (with the epoch and the seconds it took); its
    time is left out of ``wall_s``, so training time stays comparable."""
    import keras

    from modescope.trainer.strategy import describe, is_chief

    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        raise ValueError(f"KERAS_BACKEND={backend}: the trainer runs on tensorflow or jax")
    strategy = None
    if backend == "tensorflow":
        from modescope.trainer.strategy import choose

        strategy = choose(tpu)  # first: multi-worker and TPU set-up precede other TF work
    elif tpu or tfrecords:
        raise ValueError("--tpu and --tfrecords need KERAS_BACKEND=tensorflow")
    chief = is_chief()
    run = Run(Path(run_dir) if chief else Path(tempfile.mkdtemp(prefix="modescope-worker-")))
    run.root.mkdir(parents=True, exist_ok=True)
    run.path("samples").mkdir(exist_ok=True)
    batch = config.batch_size
    if tfrecords:
        from modescope.trainer.data import read_tfrecords

        source, ids, sha = read_tfrecords(tfrecords)
        record: dict[str, Any] = {"count": len(ids), "sha256": sha or dataset_record(
            [Path(i) for i in ids])["sha256"], "tfrecords": tfrecords, "ids": ids}
    else:
        files = list(files or [])
        source, record = None, dataset_record(files)
    if record["count"] < batch:
        raise ValueError(f"{record['count']} curated images are fewer than one batch "
                         f"({batch}); lower --batch")
    if config.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    _seed(keras, backend, config.seed)
    if not resume:
        run.path("config.json").write_text(config.dumps())
        run.path("dataset.json").write_text(json.dumps(record, indent=1))

    def images_at(size: int) -> np.ndarray:
        return resize_images(source, size) if source is not None else load_images(
            [Path(f) for f in record["files"]], size)

    epoch0, step, skip, stage, wall0 = 0, 0, 0, 0, 0.0
    latest = run.path("checkpoints", "latest")
    if resume:
        state = json.loads((latest / "state.json").read_text())
        epoch0, step, skip = state["epoch"], state["step"], state.get("batch_in_epoch", 0)
        stage, wall0 = state.get("stage", 0), state.get("wall_s", 0.0)
    m = Models(config, stage, strategy, batch)
    if resume:
        load_checkpoint(latest, m.g, m.d, m.opt_g, m.opt_d)
        run.log(f"resumed at epoch {epoch0 + 1}, step {step} ({m.size} px)")
    step_fn = m.make_step(config, strategy, batch)
    run.log(f"{backend} backend" + (f", {describe(strategy)}" if strategy is not None else ""))
    images = images_at(m.size)
    steps_per_epoch = len(images) // batch
    total_steps = steps_per_epoch * config.total_epochs

    def batches(epoch: int, skip: int = 0) -> Any:
        if strategy is None:
            return numpy_batches(images, batch, config.seed, epoch, config.flip, skip)
        return step_fn.distribute(lambda parts, first, count: tf_dataset(
            images, batch, config.seed, epoch, config.flip, skip, parts, first, count))

    if chief and not run.path("preview.png").exists():  # the very batch the first step gets
        first = next(iter(numpy_batches(images, batch, config.seed, 0, config.flip) if strategy
                          is None else tf_dataset(images, batch, config.seed, 0, config.flip)))
        save_png(image_grid(to_pixels(first)), run.path("preview.png"))
    noise_path = run.path("noise.npy")
    if not noise_path.exists():
        np.save(noise_path, np.random.default_rng(config.seed).standard_normal(
            (config.grid, config.latent_dim)).astype(np.float32))
    fixed = np.load(noise_path)
    board = _board(run) if strategy is not None and chief else None

    def stage_start(s: int) -> int:
        return int(sum(config.stage_epochs[:s])) * steps_per_epoch if config.progressive else 0

    def alpha_at(step: int) -> float:
        if m.stage == 0:
            return 1.0
        fade_steps = max(1, config.stage_epochs[m.stage] * steps_per_epoch // 2)
        return min(1.0, (step - stage_start(m.stage)) / fade_steps)

    started = time.perf_counter()
    eval_total = 0.0  # seconds spent in epoch_fn in this process: not training time
    info: dict[str, Any] = {"status": "running", "total_steps": total_steps,
                            "total_epochs": config.total_epochs, "d_loss": None,
                            "g_loss": None, "images_per_s": None, "eta_s": None}
    mark = (time.monotonic(), step)
    if chief:
        run.progress({**info, "step": step, "epoch": epoch0, "size": m.size}, force=True)
    ld: Any = None
    lg: Any = None
    for epoch in range(epoch0, config.total_epochs):
        if stage_of(config, epoch) != m.stage:  # progressive: grow G and D by one block
            old = m
            m = Models(config, stage_of(config, epoch), strategy, batch)
            carried = sorted(set(_carry(old.g, m.g) + _carry(old.d, m.d)))
            step_fn = m.make_step(config, strategy, batch)
            images = images_at(m.size)
            fade = config.stage_epochs[m.stage] * steps_per_epoch // 2
            run.log(f"stage {m.stage + 1}: {old.size} -> {m.size} px at epoch {epoch + 1}, "
                    f"step {step}; fade-in over {fade} steps; carried {len(carried)} layers")
        t_epoch, first_step = time.perf_counter(), step
        alpha = None
        for k, real in enumerate(batches(epoch, skip), start=skip):
            a = alpha_at(step)
            if a != alpha:
                step_fn.set_alpha((m.g, m.d), a)
                alpha = a
            sigma = config.instance_noise * max(0.0, 1.0 - step / max(1, total_steps))
            ld, lg = step_fn(real, step, sigma)
            step += 1
            now = time.monotonic()
            if now - mark[0] >= 1.0:  # read the losses (a host sync) about once a second
                rate = (step - mark[1]) * batch / (now - mark[0])
                info.update(step=step, epoch=epoch + 1, size=m.size, d_loss=float(ld),
                            g_loss=float(lg), images_per_s=round(rate, 1),
                            eta_s=round((total_steps - step) * batch / rate, 1))
                mark = (now, step)
                if chief:
                    run.progress(info, force=True)
            if progress_fn:
                progress_fn({**info, "step": step, "epoch": epoch + 1, "size": m.size})
            if abort_fn and abort_fn():
                step_fn.sync()
                state = _state(epoch, step, k + 1, m, wall0 + time.perf_counter() - started)
                if chief:
                    save_checkpoint(run, "latest", m.g, m.d, m.opt_g, m.opt_d, state)
                    run.log(f"cancelled in epoch {epoch + 1} at step {step}")
                    run.progress({**info, "status": "cancelled", "step": step,
                                  "epoch": epoch + 1, "size": m.size}, force=True)
                _drop_worker_folder(run, chief)
                return {"status": "cancelled", "epoch": epoch, "step": step}
        skip = 0
        elapsed = time.perf_counter() - t_epoch
        step_fn.sync()
        wall = wall0 + time.perf_counter() - started - eval_total
        row = {"step": step, "epoch": epoch + 1, "d_loss": float(ld), "g_loss": float(lg),
               "images_per_s": round((step - first_step) * batch / elapsed, 2),
               "wall_s": round(wall, 2), "size": m.size, "stage": m.stage + 1}
        if not chief:
            continue
        run.stat(row)
        grid = to_pixels(m.g(fixed, training=False))
        if m.size < config.size:  # upsampled so the timeline compares at the final size
            grid = grid.repeat(config.size // m.size, 1).repeat(config.size // m.size, 2)
        save_png(image_grid(grid), run.path("samples", f"epoch-{epoch + 1:04d}.png"))
        if board is not None:
            board(row, grid)
        state = _state(epoch + 1, step, 0, m, wall)
        save_checkpoint(run, "latest", m.g, m.d, m.opt_g, m.opt_d, state)
        if (epoch + 1) % config.checkpoint_every == 0:
            save_checkpoint(run, f"epoch-{epoch + 1:04d}", m.g, m.d, m.opt_g, m.opt_d, state)
        run.log(f"epoch {epoch + 1}: d_loss {row['d_loss']:.4f} g_loss {row['g_loss']:.4f} "
                f"{row['images_per_s']} img/s ({m.size} px)")
        if epoch_fn is not None:
            t_eval = time.perf_counter()
            metrics = epoch_fn(epoch + 1, functools.partial(sample_images, m.g))
            spent = time.perf_counter() - t_eval
            eval_total += spent
            if metrics is not None:
                run.metric({"epoch": epoch + 1, "step": step, "size": m.size, **metrics,
                            "eval_seconds": round(spent, 3), "train_wall_s": row["wall_s"]})
                run.log(f"epoch {epoch + 1}: evaluated in {spent:.1f} s: " + ", ".join(
                    f"{k} {v}" for k, v in metrics.items() if not isinstance(v, dict)))
        info.update(step=step, epoch=epoch + 1, size=m.size, d_loss=row["d_loss"],
                    g_loss=row["g_loss"])
        run.progress(info)
    if chief:
        run.progress({**info, "status": "finished", "step": step, "eta_s": 0}, force=True)
    _drop_worker_folder(run, chief)
    return {"status": "finished", "epoch": config.total_epochs, "step": step}


def sample_images(g: Any, z: np.ndarray, batch: int = 256) -> np.ndarray:
    """uint8 images of generator ``g`` for latent vectors ``z`` (N, latent_dim)."""
    parts = [to_pixels(g(z[i:i + batch], training=False)) for i in range(0, len(z), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 0, 0, 3), np.uint8)


def _drop_worker_folder(run: Run, chief: bool) -> None:
    if not chief:  # a non-chief worker's scratch run folder
        shutil.rmtree(run.root, ignore_errors=True)


def _seed(keras: Any, backend: str, seed: int) -> None:
    """keras.utils.set_random_seed, less its TensorFlow import on the JAX backend (it seeds TF
    whenever TF is installed): the same global seed for Keras's initialisers, Python, numpy."""
    if backend == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    import random

    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)


def _state(epoch: int, step: int, batch_in_epoch: int, m: Models, wall: float
           ) -> dict[str, Any]:
    return {"epoch": epoch, "step": step, "batch_in_epoch": batch_in_epoch, "stage": m.stage,
            "size": m.size, "wall_s": round(wall, 2)}


def _carry(old: Any, new: Any) -> list[str]:
    from modescope.trainer.models import carry_weights

    return carry_weights(old, new)


def _board(run: Run) -> Callable[[dict[str, Any], np.ndarray], None]:
    """TensorBoard scalars (d_loss, g_loss, images_per_s) and the sample grid, per epoch."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(run.path("tensorboard")))

    def write(row: dict[str, Any], grid: np.ndarray) -> None:
        with writer.as_default(step=row["epoch"]):
            for key in ("d_loss", "g_loss", "images_per_s"):
                tf.summary.scalar(key, row[key])
            tf.summary.image("samples", np.asarray(image_grid(grid))[None])
        writer.flush()

    return write


def generate(run_dir: Path, out_dir: Path, n: int, seed: int = 0,
             checkpoint: str = "latest") -> int:
    """Write n samples of a run's generator as out_dir/<k>.png (k = 0..n-1)."""
    from modescope.trainer.models import build_generator

    run = Run(run_dir)
    config = TrainConfig.loads(run.path("config.json").read_text())
    state = json.loads(run.path("checkpoints", checkpoint, "state.json").read_text())
    progressive = bool(config.progressive)
    g = build_generator(state.get("size", config.size), config.latent_dim, config.gen_filters,
                        final=config.size if progressive else None,
                        fade=progressive and state.get("stage", 0) > 0)
    g.load_weights(str(run.path("checkpoints", checkpoint, "generator.weights.h5")))
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = 0
    while k < n:
        m = min(256, n - k)
        z = rng.standard_normal((m, config.latent_dim)).astype(np.float32)
        for img in to_pixels(g(z, training=False)):
            save_png(Image.fromarray(img), out_dir / f"{k:06d}.png")
            k += 1
    return k
