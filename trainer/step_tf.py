"""The TensorFlow training step: one fused tf.function per batch doing ``d_steps`` D updates
and one G update, run on every replica with ``strategy.run``.

The G update reuses the last D update's fake batch (as the PyTorch DCGAN example does): G runs
forward once per batch. Randomness (z, smoothed labels, instance noise) comes from the slots of
trainer/noise.py: Philox (the default algorithm differs under XLA) seeded by (config.seed,
step * SLOTS + slot), drawn at the GLOBAL batch size and sliced by replica id. Losses come back
as tensors: the loop reads them about once a second, not every step (a read is a host sync).
"""

from __future__ import annotations

from typing import Any

from modescope.core.training import TrainConfig
from modescope.trainer.losses import d_loss, g_loss
from modescope.trainer.noise import LABEL_RANGE, SLOTS, StepNoise


def replica_noise(tf: Any, config: TrainConfig, global_batch: int, replicas: int, step: Any,
                  sigma: Any) -> StepNoise:
    """This replica's part of the step's random numbers (inside ``strategy.run``)."""
    local = global_batch // replicas

    def part(full: Any) -> Any:  # this replica's slice of a global-batch draw
        if replicas == 1:
            return full
        rid = tf.distribute.get_replica_context().replica_id_in_sync_group
        return full[rid * local:(rid + 1) * local]

    def seed(slot: int) -> Any:
        return tf.stack([tf.constant(config.seed, tf.int64), step * SLOTS + slot])

    def normal(slot: int, shape: tuple[int, ...]) -> Any:
        return part(tf.random.stateless_normal((global_batch, *shape), seed(slot),
                                               alg="philox"))

    def uniform(slot: int, shape: tuple[int, ...]) -> Any:
        return part(tf.random.stateless_uniform((global_batch, *shape), seed(slot),
                                                *LABEL_RANGE, alg="philox"))

    return StepNoise(config, normal, uniform, lambda shape: tf.ones((local, *shape)),
                     lambda x: tf.cast(x, tf.float32), sigma)


class TFStep:
    def __init__(self, strategy: Any, g: Any, d: Any, opt_g: Any, opt_d: Any,
                 config: TrainConfig, global_batch: int) -> None:
        import tensorflow as tf

        self.strategy = strategy
        self.tf = tf
        replicas = strategy.num_replicas_in_sync
        if global_batch % replicas:
            raise ValueError(f"batch {global_batch} does not split over {replicas} replicas; "
                             f"use a multiple of {replicas}")
        cfg = config

        def replica_step(real: Any, step: Any, sigma: Any) -> Any:
            rand = replica_noise(tf, cfg, global_batch, replicas, step, sigma)
            labels = rand.labels()
            ld = tf.constant(0.0)
            for k in range(cfg.d_steps - 1):  # extra D updates, each on fresh noise
                fake = g(rand.z(k), training=True)
                with tf.GradientTape() as tape:
                    ld = d_loss(cfg.loss, d(rand.real(real, k), training=True),
                                d(rand.fake(fake, k), training=True), labels, global_batch)
                opt_d.apply_gradients(zip(tape.gradient(ld, d.trainable_variables),
                                          d.trainable_variables, strict=True))
            k = cfg.d_steps - 1
            with tf.GradientTape(watch_accessed_variables=False) as g_tape:
                g_tape.watch([v.value for v in g.trainable_variables])
                fake = g(rand.z(k), training=True)
                with tf.GradientTape() as tape:
                    ld = d_loss(cfg.loss, d(rand.real(real, k), training=True),
                                d(rand.fake(tf.stop_gradient(fake), k), training=True),
                                labels, global_batch)
                opt_d.apply_gradients(zip(tape.gradient(ld, d.trainable_variables),
                                          d.trainable_variables, strict=True))
                lg = g_loss(cfg.loss, d(rand.for_g(fake), training=True), global_batch)
            opt_g.apply_gradients(zip(g_tape.gradient(lg, g.trainable_variables),
                                      g.trainable_variables, strict=True))
            return ld, lg

        def fused(real: Any, step: Any, sigma: Any) -> Any:
            ld, lg = strategy.run(replica_step, args=(real, step, sigma))
            total = tf.distribute.ReduceOp.SUM
            return (strategy.reduce(total, ld, axis=None),
                    strategy.reduce(total, lg, axis=None))

        # no jit_compile: XLA ran ~8 % faster on this CPU, but its first-step D loss disagreed
        # with the unjitted step's and a hand computation (which agree), so it is left out
        self._fused = tf.function(fused)

    def distribute(self, make: Any) -> Any:
        """``make(parts, first, count)`` -> this input pipeline's per-replica slices."""
        def dataset_fn(ctx: Any) -> Any:
            per_pipeline = ctx.num_replicas_in_sync // ctx.num_input_pipelines
            return make(ctx.num_replicas_in_sync, ctx.input_pipeline_id * per_pipeline,
                        per_pipeline)

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    def __call__(self, real: Any, step: int, sigma: float) -> tuple[Any, Any]:
        tf = self.tf
        return self._fused(real, tf.constant(step, tf.int64), tf.constant(sigma, tf.float32))

    def sync(self) -> None:
        """The models' variables are the state already."""

    def set_alpha(self, models: tuple[Any, ...], alpha: float) -> None:
        from modescope.trainer.models import fade_layer

        for model in models:
            layer = fade_layer(model)
            if layer is not None:
                layer.alpha.assign(alpha)
