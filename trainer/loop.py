"""``train(config, run_dir, progress_fn, abort_fn)``: a DCGAN run on the curated images.

The run folder is the trainer's only interface (docs/workspace.md):
    config.json, dataset.json (the curated file list and its hash: the dataset version),
    preview.png (the first real batch exactly as the model receives it, mapped back to pixels),
    noise.npy (the fixed noise of every epoch's grid), samples/epoch-NNNN.png,
    stats.jsonl (append-only), checkpoints/latest/ (+ epoch-NNNN/ every N epochs), log.txt.
Per-example losses are summed and divided by the global batch, so results do not depend on how
many replicas share a batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trainer.config import TrainConfig

ProgressFn = Callable[[dict[str, Any]], None]
AbortFn = Callable[[], bool]


def dataset_record(files: list[Path]) -> dict[str, Any]:
    names = [str(f) for f in files]
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return {"count": len(names), "sha256": digest, "files": names}


def image_grid(images: np.ndarray, cols: int | None = None) -> Image.Image:
    """uint8 (N, H, W, 3) -> one grid image, row-major."""
    n, h, w, _ = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = Image.new("RGB", (cols * w, rows * h), (255, 255, 255))
    for i, img in enumerate(images):
        grid.paste(Image.fromarray(img), ((i % cols) * w, (i // cols) * h))
    return grid


def to_pixels(x: np.ndarray) -> np.ndarray:
    """Model space [-1, 1] -> uint8 pixels (the inverse of the input pipeline's scaling)."""
    return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def load_images(files: list[Path], size: int) -> np.ndarray:
    out = np.empty((len(files), size, size, 3), np.uint8)
    for i, f in enumerate(files):
        with Image.open(f) as img:
            rgb = img.convert("RGB")
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
            out[i] = np.asarray(rgb)
    return out


def _save_png(img: Image.Image, path: Path) -> None:
    import io

    from modescope.workspace import atomic_write_bytes

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue(), durable=False)


class Run:
    """Paths of one run folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def log(self, message: str) -> None:
        with open(self.path("log.txt"), "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")

    def stat(self, row: dict[str, Any]) -> None:
        with open(self.path("stats.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def train(config: TrainConfig, run_dir: Path, files: list[Path],
          progress_fn: ProgressFn | None = None, abort_fn: AbortFn | None = None,
          resume: bool = False) -> dict[str, Any]:
    """Train (or resume) a run; returns {"status": "finished"|"cancelled", "epoch", "step"}."""
    import keras
    import tensorflow as tf

    from trainer.models import build_discriminator, build_generator

    run = Run(run_dir)
    run.root.mkdir(parents=True, exist_ok=True)
    (run.path("samples")).mkdir(exist_ok=True)
    if config.progressive:
        raise ValueError("progressive growing is not in this version of the trainer yet; "
                         "train at one size")
    if len(files) < config.batch_size:
        raise ValueError(f"{len(files)} curated images are fewer than one batch "
                         f"({config.batch_size}); lower --batch")
    keras.utils.set_random_seed(config.seed)
    if not resume:
        run.path("config.json").write_text(config.dumps())
        run.path("dataset.json").write_text(json.dumps(dataset_record(files), indent=1))
    images = load_images(files, config.size)
    g = build_generator(config.size, config.latent_dim, config.gen_filters)
    d = build_discriminator(config.size, config.disc_filters)
    opt_g = keras.optimizers.Adam(config.lr_g, beta_1=config.beta1)
    opt_d = keras.optimizers.Adam(config.lr_d, beta_1=config.beta1)
    opt_g.build(g.trainable_variables)
    opt_d.build(d.trainable_variables)
    noise_path = run.path("noise.npy")
    if not noise_path.exists():
        fixed = np.random.default_rng(config.seed).standard_normal(
            (config.grid, config.latent_dim)).astype(np.float32)
        np.save(noise_path, fixed)
    fixed = np.load(noise_path)
    epoch0, step = 0, 0
    if resume:
        state = json.loads(run.path("checkpoints", "latest", "state.json").read_text())
        _load_checkpoint(run.path("checkpoints", "latest"), g, d, opt_g, opt_d)
        epoch0, step = state["epoch"], state["step"]
        run.log(f"resumed at epoch {epoch0}, step {step}")
    batch = config.batch_size
    steps_per_epoch = len(images) // batch
    total_steps = steps_per_epoch * config.total_epochs
    rng = np.random.default_rng([config.seed, epoch0])

    def batches(epoch: int) -> Any:
        order = np.random.default_rng([config.seed, epoch]).permutation(len(images))
        for s in range(steps_per_epoch):
            real = images[order[s * batch:(s + 1) * batch]].astype(np.float32) / 127.5 - 1.0
            if config.flip:
                flips = rng.random(batch) < 0.5
                real[flips] = real[flips, :, ::-1]
            yield real

    if not run.path("preview.png").exists():
        first = next(batches(0))
        _save_png(image_grid(to_pixels(first)), run.path("preview.png"))

    bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction="none")

    def per_example(labels: Any, logits: Any) -> Any:
        return tf.reduce_sum(bce(labels, logits)) / batch  # divide by the global batch

    @tf.function
    def d_step(real: Any, z: Any, sigma: Any) -> Any:
        fake = g(z, training=True)
        if config.label_smoothing:
            ones = tf.random.uniform((batch, 1), 0.9, 1.0)
        else:
            ones = tf.ones((batch, 1))
        real_in = real + sigma * tf.random.normal(tf.shape(real))
        fake_in = fake + sigma * tf.random.normal(tf.shape(fake))
        with tf.GradientTape() as tape:
            loss = (per_example(ones, d(real_in, training=True))
                    + per_example(tf.zeros((batch, 1)), d(fake_in, training=True)))
        grads = tape.gradient(loss, d.trainable_variables)
        opt_d.apply_gradients(zip(grads, d.trainable_variables, strict=True))
        return loss

    @tf.function
    def g_step(z: Any, sigma: Any) -> Any:
        with tf.GradientTape() as tape:
            fake = g(z, training=True)
            fake_in = fake + sigma * tf.random.normal(tf.shape(fake))
            loss = per_example(tf.ones((batch, 1)), d(fake_in, training=True))
        grads = tape.gradient(loss, g.trainable_variables)
        opt_g.apply_gradients(zip(grads, g.trainable_variables, strict=True))
        return loss

    status = "finished"
    started = time.perf_counter()
    epoch = epoch0
    for epoch in range(epoch0, config.total_epochs):
        t_epoch = time.perf_counter()
        for real in batches(epoch):
            # a tensor, not a Python float: a new float would retrace the step every time
            sigma = tf.constant(config.instance_noise * max(0.0, 1.0 - step / max(1, total_steps)),
                                tf.float32)
            for _ in range(config.d_steps):
                z = rng.standard_normal((batch, config.latent_dim)).astype(np.float32)
                d_loss = float(d_step(real, z, sigma))
            z = rng.standard_normal((batch, config.latent_dim)).astype(np.float32)
            g_loss = float(g_step(z, sigma))
            step += 1
            if progress_fn:
                progress_fn({"step": step, "total_steps": total_steps, "epoch": epoch + 1,
                             "d_loss": d_loss, "g_loss": g_loss})
            if abort_fn and abort_fn():
                status = "cancelled"
                break
        elapsed = time.perf_counter() - t_epoch
        done_in_epoch = steps_per_epoch if status == "finished" else 0
        run.stat({"step": step, "epoch": epoch + 1, "d_loss": d_loss, "g_loss": g_loss,
                  "images_per_s": round(done_in_epoch * batch / elapsed, 2) if elapsed else None,
                  "wall_s": round(time.perf_counter() - started, 2)})
        if status == "cancelled":
            _save_checkpoint(run, "latest", g, d, opt_g, opt_d, epoch, step)
            run.log(f"cancelled during epoch {epoch + 1}")
            return {"status": status, "epoch": epoch, "step": step}
        grid = to_pixels(np.asarray(g(fixed, training=False)))
        _save_png(image_grid(grid), run.path("samples", f"epoch-{epoch + 1:04d}.png"))
        _save_checkpoint(run, "latest", g, d, opt_g, opt_d, epoch + 1, step)
        if (epoch + 1) % config.checkpoint_every == 0:
            _save_checkpoint(run, f"epoch-{epoch + 1:04d}", g, d, opt_g, opt_d, epoch + 1, step)
        run.log(f"epoch {epoch + 1}: d_loss {d_loss:.4f} g_loss {g_loss:.4f}")
    return {"status": status, "epoch": config.total_epochs, "step": step}


def _save_checkpoint(run: Run, name: str, g: Any, d: Any, opt_g: Any, opt_d: Any,
                     epoch: int, step: int) -> None:
    """Write a whole checkpoint folder to a temp name, then swap it in."""
    final = run.path("checkpoints", name)
    tmp = run.path("checkpoints", f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    g.save_weights(str(tmp / "generator.weights.h5"))
    d.save_weights(str(tmp / "discriminator.weights.h5"))
    arrays = {**{f"g{i}": np.asarray(v) for i, v in enumerate(opt_g.variables)},
              **{f"d{i}": np.asarray(v) for i, v in enumerate(opt_d.variables)}}
    np.savez(tmp / "optimizers.npz", allow_pickle=False, **arrays)
    (tmp / "state.json").write_text(json.dumps({"epoch": epoch, "step": step}))
    old = run.path("checkpoints", f".{name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(folder: Path, g: Any, d: Any, opt_g: Any, opt_d: Any) -> None:
    g.load_weights(str(folder / "generator.weights.h5"))
    d.load_weights(str(folder / "discriminator.weights.h5"))
    with np.load(folder / "optimizers.npz") as z:
        for i, v in enumerate(opt_g.variables):
            v.assign(z[f"g{i}"])
        for i, v in enumerate(opt_d.variables):
            v.assign(z[f"d{i}"])


def generate(run_dir: Path, out_dir: Path, n: int, seed: int = 0,
             checkpoint: str = "latest") -> int:
    """Write n samples of a run's generator as out_dir/<k>.png (k = 0..n-1)."""
    from trainer.models import build_generator

    run = Run(run_dir)
    config = TrainConfig.loads(run.path("config.json").read_text())
    g = build_generator(config.size, config.latent_dim, config.gen_filters)
    g.load_weights(str(run.path("checkpoints", checkpoint, "generator.weights.h5")))
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = 0
    while k < n:
        m = min(256, n - k)
        z = rng.standard_normal((m, config.latent_dim)).astype(np.float32)
        for img in to_pixels(np.asarray(g(z, training=False))):
            _save_png(Image.fromarray(img), out_dir / f"{k:06d}.png")
            k += 1
    return k
