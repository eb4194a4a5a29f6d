"""Progressive growing: the stages of a run and the models of one stage.

Without ``config.progressive`` a run has one stage at ``config.size``. With it, the sizes train
in turn, ``config.stage_epochs`` epochs each: at the first epoch of a stage ``Growth`` builds G
and D one block bigger, carries the shared layers' weights over and fades the new block in,
alpha rising from 0 to 1 over the stage's first half (by step).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from modescope.core.training import TrainConfig
from modescope.trainer.checkpoint import load_checkpoint
from modescope.trainer.data import TrainingImages, numpy_batches, tf_dataset


def stage_sizes(config: TrainConfig) -> tuple[int, ...]:
    return config.progressive or (config.size,)


def stage_of(config: TrainConfig, epoch: int) -> int:
    """The stage that trains (0-based) ``epoch``."""
    if not config.progressive:
        return 0
    bounds = np.cumsum(config.stage_epochs)
    return int(np.searchsorted(bounds, epoch, side="right"))


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
        with strategy.scope() if strategy is not None else nullcontext():
            self.g = build_generator(self.size, config.latent_dim, config.gen_filters,
                                     final=final, fade=fade, synchronized=sync_bn,
                                     upsample=config.upsample)
            self.d = build_discriminator(self.size, config.disc_filters, final=final,
                                         fade=fade, synchronized=sync_bn)
            self.opt_g = keras.optimizers.Adam(config.lr_g, beta_1=config.beta1)
            self.opt_d = keras.optimizers.Adam(config.lr_d, beta_1=config.beta1)
            self.opt_g.build(self.g.trainable_variables)
            self.opt_d.build(self.d.trainable_variables)

    def make_step(self, config: TrainConfig, strategy: Any, batch: int) -> Any:
        """The step of these models: TFStep under a tf.distribute strategy, else JaxStep."""
        self.step: Any
        if strategy is None:
            from modescope.trainer.step_jax import JaxStep

            self.step = JaxStep(self.g, self.d, self.opt_g, self.opt_d, config, batch)
        else:
            from modescope.trainer.step_tf import TFStep

            self.step = TFStep(strategy, self.g, self.d, self.opt_g, self.opt_d, config, batch)
        return self.step


class Growth:
    """The models, step and images of the stage in training.

    Built for ``stage`` (read from ``checkpoint`` before the step reads the variables, on a
    resume); ``enter(epoch)`` grows them when the epoch starts the next stage; ``fade(step)``
    sets the fade-in alpha of a grown stage before each step.
    """

    def __init__(self, config: TrainConfig, strategy: Any, data: TrainingImages, stage: int,
                 checkpoint: Path | None = None) -> None:
        self.config, self.strategy, self.data = config, strategy, data
        self.batch = config.batch_size
        self.models = Models(config, stage, strategy, self.batch)
        if checkpoint is not None:
            load_checkpoint(checkpoint, self.models)
        self.step_fn = self.models.make_step(config, strategy, self.batch)
        self.images = data.at(self.models.size)
        self.steps_per_epoch = len(self.images) // self.batch
        self._alpha: float | None = None

    @property
    def size(self) -> int:
        return self.models.size

    @property
    def stage(self) -> int:
        return self.models.stage

    def enter(self, epoch: int, step: int) -> str | None:
        """Before (0-based) ``epoch``: grow G and D by one block if it starts the next stage,
        carrying the shared layers' weights; returns the log line of a growth."""
        self._alpha = None  # set again at the epoch's first step
        stage = stage_of(self.config, epoch)
        if stage == self.models.stage:
            return None
        from modescope.trainer.models import carry_weights

        old = self.models
        self.models = Models(self.config, stage, self.strategy, self.batch)
        carried = sorted(set(carry_weights(old.g, self.models.g)
                             + carry_weights(old.d, self.models.d)))
        self.step_fn = self.models.make_step(self.config, self.strategy, self.batch)
        self.images = self.data.at(self.models.size)
        fade = self.config.stage_epochs[stage] * self.steps_per_epoch // 2
        return (f"stage {stage + 1}: {old.size} -> {self.models.size} px at epoch {epoch + 1}, "
                f"step {step}; fade-in over {fade} steps; carried {len(carried)} layers")

    def fade(self, step: int) -> None:
        """Set the fade-in alpha for ``step`` (where it changed)."""
        alpha = self.alpha_at(step)
        if alpha != self._alpha:
            self.step_fn.set_alpha((self.models.g, self.models.d), alpha)
            self._alpha = alpha

    def alpha_at(self, step: int) -> float:
        """1 in the first stage; in a grown one, rising by step over its first half."""
        stage = self.models.stage
        if stage == 0:
            return 1.0
        start = int(sum(self.config.stage_epochs[:stage])) * self.steps_per_epoch
        fade_steps = max(1, self.config.stage_epochs[stage] * self.steps_per_epoch // 2)
        return min(1.0, (step - start) / fade_steps)

    def batches(self, epoch: int, skip: int = 0) -> Iterable[Any]:
        """The real batches of (0-based) ``epoch`` from batch ``skip`` on, as the step takes
        them (numpy on JAX, distributed tf.data under a strategy)."""
        c = self.config
        if self.strategy is None:
            return numpy_batches(self.images, self.batch, c.seed, epoch, c.flip, skip)
        return self.step_fn.distribute(lambda parts, first, count: tf_dataset(
            self.images, self.batch, c.seed, epoch, c.flip, skip, parts, first, count))

    def first_batch(self) -> Any:
        """The very batch the first step of the run gets (preview.png), undistributed."""
        c = self.config
        if self.strategy is None:
            return next(iter(numpy_batches(self.images, self.batch, c.seed, 0, c.flip)))
        return next(iter(tf_dataset(self.images, self.batch, c.seed, 0, c.flip)))
