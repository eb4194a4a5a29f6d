"""The JAX training step (KERAS_BACKEND=jax): the same losses, options and update order as
step_tf.TFStep, as one ``jax.jit`` function over explicit state with Keras ``stateless_call``.
Imports no TensorFlow. One device (tf.distribute has no JAX counterpart here). Randomness comes
from the slots of trainer/noise.py: ``fold_in(fold_in(key(seed), step), slot)``.

State lives in arrays between steps; ``sync()`` writes it back into the Keras variables before
samples and checkpoints are taken, ``load()`` reads it from them (after a resume or a fade-in
change of alpha).
"""

from __future__ import annotations

from typing import Any

from modescope.core.training import TrainConfig
from modescope.trainer.losses import d_loss, g_loss
from modescope.trainer.noise import LABEL_RANGE, StepNoise


class JaxStep:
    def __init__(self, g: Any, d: Any, opt_g: Any, opt_d: Any, config: TrainConfig,
                 global_batch: int) -> None:
        import jax
        import jax.numpy as jnp

        self.g, self.d, self.opt_g, self.opt_d = g, d, opt_g, opt_d
        cfg, batch = config, global_batch
        self.load()

        def step_fn(state: Any, real: Any, step: Any, sigma: Any) -> Any:
            gtv, gntv, dtv, dntv, ogv, odv = state
            key = jax.random.fold_in(jax.random.key(cfg.seed), step)

            def normal(slot: int, shape: tuple[int, ...]) -> Any:
                return jax.random.normal(jax.random.fold_in(key, slot), (batch, *shape))

            def uniform(slot: int, shape: tuple[int, ...]) -> Any:
                low, high = LABEL_RANGE
                return jax.random.uniform(jax.random.fold_in(key, slot), (batch, *shape),
                                          minval=low, maxval=high)

            rand = StepNoise(cfg, normal, uniform, lambda shape: jnp.ones((batch, *shape)),
                             lambda x: x.astype(jnp.float32), sigma)
            labels = rand.labels()

            def d_update(dtv: Any, dntv: Any, odv: Any, fake: Any, k: int) -> Any:
                def loss(p: Any, ntv: Any) -> Any:
                    lr, ntv = d.stateless_call(p, ntv, rand.real(real, k), training=True)
                    lf, ntv = d.stateless_call(p, ntv, rand.fake(fake, k), training=True)
                    return d_loss(cfg.loss, lr, lf, labels, batch), ntv

                (ld, dntv), grads = jax.value_and_grad(loss, has_aux=True)(dtv, dntv)
                dtv, odv = opt_d.stateless_apply(odv, grads, dtv)
                return ld, dtv, dntv, odv

            for k in range(cfg.d_steps - 1):
                fake, gntv = g.stateless_call(gtv, gntv, rand.z(k), training=True)
                _, dtv, dntv, odv = d_update(dtv, dntv, odv, jax.lax.stop_gradient(fake), k)
            k = cfg.d_steps - 1
            z = rand.z(k)
            fake, g_vjp, gntv = jax.vjp(
                lambda p: g.stateless_call(p, gntv, z, training=True), gtv, has_aux=True)
            ld, dtv, dntv, odv = d_update(dtv, dntv, odv, jax.lax.stop_gradient(fake), k)

            def through_d(f: Any) -> Any:
                logits, ntv = d.stateless_call(dtv, dntv, rand.for_g(f), training=True)
                return g_loss(cfg.loss, logits, batch), ntv

            (lg, dntv), d_fake = jax.value_and_grad(through_d, has_aux=True)(fake)
            (g_grads,) = g_vjp(d_fake)
            gtv, ogv = opt_g.stateless_apply(ogv, g_grads, gtv)
            return (gtv, gntv, dtv, dntv, ogv, odv), ld, lg

        self._step = jax.jit(step_fn, donate_argnums=(0,))
        self._jnp = jnp

    def load(self) -> None:
        """Read the state from the Keras variables."""
        def values(vs: Any) -> list[Any]:
            return [v.value for v in vs]

        g, d = self.g, self.d
        self.state = (values(g.trainable_variables), values(g.non_trainable_variables),
                      values(d.trainable_variables), values(d.non_trainable_variables),
                      values(self.opt_g.variables), values(self.opt_d.variables))

    def sync(self) -> None:
        """Write the state into the Keras variables."""
        g, d = self.g, self.d
        owners = (g.trainable_variables, g.non_trainable_variables, d.trainable_variables,
                  d.non_trainable_variables, self.opt_g.variables, self.opt_d.variables)
        for variables, vals in zip(owners, self.state, strict=True):
            for v, val in zip(variables, vals, strict=True):
                v.assign(val)

    def set_alpha(self, models: tuple[Any, ...], alpha: float) -> None:
        """Set the fade-in alpha in the state (G's and D's non-trainable lists) and the model."""
        from modescope.trainer.models import fade_layer

        for model, slot in zip(models, (1, 3), strict=True):
            layer = fade_layer(model)
            if layer is None:
                continue
            layer.alpha.assign(alpha)
            for i, v in enumerate(model.non_trainable_variables):
                if v is layer.alpha:
                    self.state[slot][i] = self._jnp.asarray(alpha, self._jnp.float32)

    def __call__(self, real: Any, step: int, sigma: float) -> tuple[Any, Any]:
        jnp = self._jnp
        self.state, ld, lg = self._step(self.state, real, jnp.asarray(step, jnp.uint32),
                                        jnp.asarray(sigma, jnp.float32))
        return ld, lg
