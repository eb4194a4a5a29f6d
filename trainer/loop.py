"""``train(config, run, files, progress_fn, abort_fn)``: a DCGAN run on the curated images, and
``generate(run, n)``: samples of a trained run.

The trainer reads and writes the run only through ``RunFolder`` (core/runfolder.py lists the
files). Backends: TensorFlow (tf.distribute strategies, tf.data) or JAX (one device, numpy
input; no TensorFlow import at all). Progressive growing (trainer/stages.py) trains the sizes of
``config.progressive`` in turn; everything around the steps is a callback (trainer/callbacks.py).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modescope.core.runfolder import LATEST, RunFolder
from modescope.core.training import TrainConfig
from modescope.core.workspace import Workspace
from modescope.trainer.callbacks import (
    AbortFn,
    Callback,
    CallbackList,
    Cancel,
    Checkpoints,
    EpochFn,
    Evaluation,
    Preview,
    Progress,
    ProgressFn,
    SampleGrid,
    Stats,
    TensorBoard,
)
from modescope.trainer.checkpoint import GENERATOR, Start
from modescope.trainer.data import training_images
from modescope.trainer.images import png_bytes, to_pixels
from modescope.trainer.session import Training
from modescope.trainer.stages import Growth


def train(config: TrainConfig, run: RunFolder, files: list[Path] | None = None,
          progress_fn: ProgressFn | None = None, abort_fn: AbortFn | None = None,
          resume: bool = False, *, tpu: str | None = None, tfrecords: str | None = None,
          epoch_fn: EpochFn | None = None) -> dict[str, Any]:
    """Train (or resume) a run; returns {"status": "finished"|"cancelled", "epoch", "step"}.

    ``epoch_fn(epoch, sample)``, on the chief after each epoch's checkpoint, may score the
    generator: ``sample(z)`` turns latent vectors into uint8 images at the current size. A dict
    it returns becomes a row of ``metrics.jsonl`` (with the epoch and the seconds it took); its
    time is left out of ``wall_s``, so training time stays comparable."""
    backend, strategy, described = _backend(tpu, tfrecords)
    with _this_workers_folder(run) as out:
        out.create()
        out.grids_dir.mkdir(exist_ok=True)
        data = training_images(files, tfrecords, config.batch_size)
        _seed(backend, config)
        if not resume:
            out.write_config(config)
            out.write_dataset(data.record)
        start = Start.from_state(run.checkpoint_state()) if resume else Start()
        growth = Growth(config, strategy, data, start.stage,
                        run.checkpoint_dir() if resume else None)
        if resume:
            out.log(f"resumed at epoch {start.epoch + 1}, step {start.step} ({growth.size} px)")
        out.log(described)
        t = Training.starting(config, out, growth, start)
        hooks = _callbacks(out is run, strategy is not None, progress_fn, abort_fn, epoch_fn)
        hooks.on_train_begin(t)
        skip = start.batch_in_epoch
        for epoch in range(start.epoch, config.total_epochs):
            grown = growth.enter(epoch, t.step)
            if grown:
                out.log(grown)
            t.begin_epoch()
            for real in growth.batches(epoch, skip):
                t.train_step(real)
                hooks.on_step_end(t)
                if t.stop and not t.epoch_done:  # stopped at an epoch's end: end it first
                    break
            else:  # the epoch ran to its end
                hooks.on_epoch_end(t, t.end_epoch())
            skip = 0
            if t.stop:
                break
        growth.step_fn.sync()
        status = "cancelled" if t.stop else "finished"
        hooks.on_train_end(t, status)
    return {"status": status, "epoch": t.epoch if t.stop else config.total_epochs,
            "step": t.step}


@contextmanager
def _this_workers_folder(run: RunFolder) -> Iterator[RunFolder]:
    """``run`` on the chief; on any other worker a scratch run folder, removed at the end (the
    keras-io multi-worker guide's rule: one writer)."""
    from modescope.trainer.strategy import is_chief

    if is_chief():
        yield run
        return
    scratch = tempfile.mkdtemp(prefix="modescope-worker-")
    try:
        yield Workspace(scratch).run("worker")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _callbacks(chief: bool, tensorboard: bool, progress_fn: ProgressFn | None,
               abort_fn: AbortFn | None, epoch_fn: EpochFn | None) -> CallbackList:
    """What happens around the steps, in order. Only the chief keeps stats, grids,
    checkpoints, TensorBoard summaries and scores."""
    hooks: list[Callback] = []
    if chief:
        grids = SampleGrid()
        hooks += [Preview(), Stats(), grids, *([TensorBoard(grids)] if tensorboard else []),
                  Checkpoints(), *([Evaluation(epoch_fn)] if epoch_fn else [])]
    hooks += [Progress(progress_fn), *([Cancel(abort_fn)] if abort_fn else [])]
    return CallbackList(hooks)


def _backend(tpu: str | None, tfrecords: str | None) -> tuple[str, Any, str]:
    """The Keras backend, on TensorFlow the tf.distribute strategy (None on JAX), and the
    log line that says so."""
    import keras

    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        raise ValueError(f"KERAS_BACKEND={backend}: the trainer runs on tensorflow or jax")
    if backend == "jax":
        if tpu or tfrecords:
            raise ValueError("--tpu and --tfrecords need KERAS_BACKEND=tensorflow")
        return backend, None, "jax backend"
    from modescope.trainer.strategy import choose, describe

    strategy = choose(tpu)  # first: multi-worker and TPU set-up precede other TF work
    return backend, strategy, f"tensorflow backend, {describe(strategy)}"


def _seed(backend: str, config: TrainConfig) -> None:
    """The dtype policy, and keras.utils.set_random_seed less its TensorFlow import on the JAX
    backend (it seeds TF whenever TF is installed): the same global seed for Keras's
    initialisers, Python and numpy."""
    import keras

    if config.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    if backend == "tensorflow":
        keras.utils.set_random_seed(config.seed)
        return
    import random

    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, config.seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(config.seed)
    np.random.seed(config.seed)


def generate(run: RunFolder, n: int, seed: int = 0, checkpoint: str = LATEST) -> int:
    """Write n samples of a run's generator at ``checkpoint`` as
    ``run.generated_dir / run.sample_name(k)`` (000000.png, 000001.png, ... for k = 0..n-1);
    returns how many it wrote."""
    from modescope.trainer.models import build_generator

    config = run.read_config()
    state = run.checkpoint_state(checkpoint)
    progressive = bool(config.progressive)
    g = build_generator(state.get("size", config.size), config.latent_dim, config.gen_filters,
                        final=config.size if progressive else None,
                        fade=progressive and state.get("stage", 0) > 0,
                        upsample=config.upsample)
    g.load_weights(str(run.checkpoint_dir(checkpoint) / GENERATOR))
    rng = np.random.default_rng(seed)
    k = 0
    while k < n:
        z = rng.standard_normal((min(256, n - k), config.latent_dim)).astype(np.float32)
        for img in to_pixels(g(z, training=False)):
            run.write_png(run.generated_dir / run.sample_name(k), png_bytes(Image.fromarray(img)))
            k += 1
    return k
