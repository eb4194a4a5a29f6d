"""What happens around the training steps, as callbacks.

In the spirit of keras-io's ``GANMonitor`` (a ``keras.callbacks.Callback`` that saves sample
images at each epoch's end); the loop is a custom one, not ``model.fit``, so the protocol is its
own. The loop calls, in list order:

    on_train_begin(t)         the models built (or resumed), before the first step
    on_step_end(t)            after every step
    on_epoch_end(t, row)      after every epoch, with its stats.jsonl row (the models synced)
    on_train_end(t, status)   "finished" or "cancelled" (the models synced)

``t`` is the ``Training`` (trainer/session.py); a callback ends the run by setting ``t.stop``.
Everything goes through ``t.run``, the ``RunFolder`` (core/runfolder.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from modescope.core.runfolder import LATEST
from modescope.trainer.checkpoint import save_checkpoint
from modescope.trainer.images import image_grid, png_bytes, sample_images, to_pixels
from modescope.trainer.session import Training

ProgressFn = Callable[[dict[str, Any]], None]
AbortFn = Callable[[], bool]
SampleFn = Callable[[np.ndarray], np.ndarray]
EpochFn = Callable[[int, SampleFn], dict[str, Any] | None]
Row = dict[str, Any]


class Callback:
    """Does nothing at each event; a callback overrides the events it needs."""

    def on_train_begin(self, t: Training) -> None:
        pass

    def on_step_end(self, t: Training) -> None:
        pass

    def on_epoch_end(self, t: Training, row: Row) -> None:
        pass

    def on_train_end(self, t: Training, status: str) -> None:
        pass


class CallbackList(Callback):
    """Several callbacks as one, called in order."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = callbacks

    def on_train_begin(self, t: Training) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(t)

    def on_step_end(self, t: Training) -> None:
        for cb in self.callbacks:
            cb.on_step_end(t)

    def on_epoch_end(self, t: Training, row: Row) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(t, row)

    def on_train_end(self, t: Training, status: str) -> None:
        for cb in self.callbacks:
            cb.on_train_end(t, status)


class Preview(Callback):
    """preview.png: the run's very first real batch as the model receives it, in pixels."""

    def on_train_begin(self, t: Training) -> None:
        if not t.run.preview_path.exists():
            first = t.growth.first_batch()
            t.run.write_png(t.run.preview_path, png_bytes(image_grid(to_pixels(first))))


class Stats(Callback):
    """A stats.jsonl row and a log line per epoch."""

    def on_epoch_end(self, t: Training, row: Row) -> None:
        t.run.append_stat(row)
        t.run.log(f"epoch {row['epoch']}: d_loss {row['d_loss']:.4f} g_loss "
                  f"{row['g_loss']:.4f} {row['images_per_s']} img/s ({t.size} px)")


class SampleGrid(Callback):
    """The grid of the fixed noise (noise.npy, drawn once per run) after every epoch, at the
    final size (a smaller stage's images upsampled) so the timeline compares."""

    def __init__(self) -> None:
        self.fixed: np.ndarray | None = None
        self.latest: np.ndarray | None = None  # this epoch's grid images, for TensorBoard

    def on_train_begin(self, t: Training) -> None:
        if not t.run.noise_path.exists():
            np.save(t.run.noise_path, np.random.default_rng(t.config.seed).standard_normal(
                (t.config.grid, t.config.latent_dim)).astype(np.float32))
        self.fixed = np.load(t.run.noise_path)

    def on_epoch_end(self, t: Training, row: Row) -> None:
        grid = to_pixels(t.models.g(self.fixed, training=False))
        if t.size < t.config.size:
            scale = t.config.size // t.size
            grid = grid.repeat(scale, 1).repeat(scale, 2)
        self.latest = grid
        t.run.write_png(t.run.grid_path(t.epoch), png_bytes(image_grid(grid)))


class TensorBoard(Callback):
    """TensorBoard scalars (d_loss, g_loss, images_per_s) and the sample grid, per epoch
    (TensorFlow backend only)."""

    def __init__(self, grids: SampleGrid) -> None:
        self.grids = grids
        self.writer: Any = None

    def on_train_begin(self, t: Training) -> None:
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(str(t.run.tensorboard_dir))

    def on_epoch_end(self, t: Training, row: Row) -> None:
        import tensorflow as tf

        with self.writer.as_default(step=row["epoch"]):
            for key in ("d_loss", "g_loss", "images_per_s"):
                tf.summary.scalar(key, row[key])
            if self.grids.latest is not None:
                tf.summary.image("samples", np.asarray(image_grid(self.grids.latest))[None])
        self.writer.flush()


class Checkpoints(Callback):
    """``latest`` after every epoch and at a cancel; ``epoch-NNNN`` every
    ``config.checkpoint_every`` epochs."""

    def on_epoch_end(self, t: Training, row: Row) -> None:
        state = t.state(row["wall_s"])
        save_checkpoint(t.run, LATEST, t.models, state)
        if t.epoch % t.config.checkpoint_every == 0:
            save_checkpoint(t.run, t.run.epoch_checkpoint(t.epoch), t.models, state)

    def on_train_end(self, t: Training, status: str) -> None:
        if status == "cancelled":
            save_checkpoint(t.run, LATEST, t.models, t.state(t.wall()))


class Evaluation(Callback):
    """``epoch_fn(epoch, sample)`` after each epoch's checkpoint: ``sample(z)`` turns latent
    vectors into uint8 images at the current size; a dict it returns is a metrics.jsonl row
    (with the seconds it took). Its time is not training time (``t.not_training_s``)."""

    def __init__(self, epoch_fn: EpochFn) -> None:
        self.epoch_fn = epoch_fn

    def on_epoch_end(self, t: Training, row: Row) -> None:
        started = time.perf_counter()
        metrics = self.epoch_fn(t.epoch, functools.partial(sample_images, t.models.g))
        spent = time.perf_counter() - started
        t.not_training_s += spent
        if metrics is None:
            return
        t.run.append_metric({"epoch": t.epoch, "step": t.step, "size": t.size, **metrics,
                             "eval_seconds": round(spent, 3), "train_wall_s": row["wall_s"]})
        t.run.log(f"epoch {t.epoch}: evaluated in {spent:.1f} s: " + ", ".join(
            f"{k} {v}" for k, v in metrics.items() if not isinstance(v, dict)))


class Progress(Callback):
    """progress.json (at the start, about once a second while training, after each epoch and
    at the end) and ``progress_fn`` after every step. Reading the losses is a host sync, so
    they are read about once a second, not every step."""

    def __init__(self, progress_fn: ProgressFn | None = None) -> None:
        self.progress_fn = progress_fn
        self.info: dict[str, Any] = {}
        self.mark = (0.0, 0)  # (time, step) of the last reading

    def on_train_begin(self, t: Training) -> None:
        self.info = {"status": "running", "total_steps": t.total_steps,
                     "total_epochs": t.config.total_epochs, "d_loss": None, "g_loss": None,
                     "images_per_s": None, "eta_s": None}
        self.mark = (time.monotonic(), t.step)
        t.run.write_progress({**self.info, "step": t.step, "epoch": t.epoch, "size": t.size},
                             force=True)

    def on_step_end(self, t: Training) -> None:
        now = time.monotonic()
        if now - self.mark[0] >= 1.0:
            rate = (t.step - self.mark[1]) * t.config.batch_size / (now - self.mark[0])
            d_loss, g_loss = t.losses
            self.info.update(step=t.step, epoch=t.epoch_now, size=t.size, d_loss=float(d_loss),
                             g_loss=float(g_loss), images_per_s=round(rate, 1),
                             eta_s=round((t.total_steps - t.step) * t.config.batch_size / rate,
                                         1))
            self.mark = (now, t.step)
            t.run.write_progress(self.info, force=True)
        if self.progress_fn:
            self.progress_fn({**self.info, "step": t.step, "epoch": t.epoch_now,
                              "size": t.size})

    def on_epoch_end(self, t: Training, row: Row) -> None:
        self.info.update(step=t.step, epoch=t.epoch, size=t.size, d_loss=row["d_loss"],
                         g_loss=row["g_loss"])
        t.run.write_progress(self.info, force=False)

    def on_train_end(self, t: Training, status: str) -> None:
        if status == "finished":
            end = {**self.info, "status": status, "step": t.step, "eta_s": 0}
        else:
            end = {**self.info, "status": status, "step": t.step, "epoch": t.epoch_now,
                   "size": t.size}
        t.run.write_progress(end, force=True)


class Cancel(Callback):
    """Ends the run when ``abort_fn()`` says so (asked after every step); the Checkpoints
    callback then saves ``latest`` mid-epoch, so a resume continues at the next batch."""

    def __init__(self, abort_fn: AbortFn) -> None:
        self.abort_fn = abort_fn

    def on_step_end(self, t: Training) -> None:
        if self.abort_fn():
            t.stop = True

    def on_train_end(self, t: Training, status: str) -> None:
        if status == "cancelled":
            t.run.log(f"cancelled in epoch {t.epoch_now} at step {t.step}")
