"""The random numbers of one training step, by slot: the one scheme both step implementations
(step_tf.TFStep, step_jax.JaxStep) draw from.

Every random stream is stateless, a pure function of (config.seed, step, slot), so a resumed run
draws what the uninterrupted run would have, and each stream is drawn at the GLOBAL batch size
(a replica keeps its own slice), so one step on N replicas draws what one device draws
(tests/trainer/test_strategy.py). The backends turn (seed, step, slot) into a stream their own
way: TensorFlow seeds Philox with ``(seed, step * SLOTS + slot)``; JAX folds ``step`` and then
``slot`` into ``key(seed)``.

The slots of one step: D update ``k`` (0-based) draws its z from ``3k``, the instance noise on
the real batch from ``3k + 1`` and on the fake batch from ``3k + 2``; the smoothed real labels
come from ``LABELS`` and the instance noise of the G update from ``G_NOISE``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modescope.core.training import TrainConfig

SLOTS = 64  # random streams per step (d_steps <= 10 uses slots 0..29 and the last two)
LABELS = SLOTS - 2
G_NOISE = SLOTS - 1
LABEL_RANGE = (0.9, 1.0)  # one-sided label smoothing: real labels drawn from [0.9, 1.0)

Draw = Callable[[int, tuple[int, ...]], Any]  # (slot, shape of one example) -> this batch's


def instance_sigma(config: TrainConfig, step: int, total_steps: int) -> float:
    """The instance noise at ``step``: ``config.instance_noise`` decaying linearly to 0."""
    return config.instance_noise * max(0.0, 1.0 - step / max(1, total_steps))


@dataclass(frozen=True)
class StepNoise:
    """One step's random numbers, in a backend's own arrays.

    ``normal(slot, shape)`` and ``uniform(slot, shape)`` (in ``LABEL_RANGE``) draw this
    device's part of the global batch of stream ``slot``; ``ones(shape)`` is the unsmoothed
    labels of this part, ``as_float`` casts to float32; ``sigma`` is this step's instance noise.
    """

    config: TrainConfig
    normal: Draw
    uniform: Draw
    ones: Callable[[tuple[int, ...]], Any]
    as_float: Callable[[Any], Any]
    sigma: Any

    def z(self, k: int) -> Any:
        """The latent vectors of D update ``k``."""
        return self.normal(3 * k, (self.config.latent_dim,))

    def real(self, x: Any, k: int) -> Any:
        """The real batch as D update ``k``'s discriminator sees it."""
        return self._noisy(x, 3 * k + 1)

    def fake(self, x: Any, k: int) -> Any:
        """A fake batch as D update ``k``'s discriminator sees it."""
        return self._noisy(x, 3 * k + 2)

    def for_g(self, x: Any) -> Any:
        """The fake batch as the discriminator sees it in the G update."""
        return self._noisy(x, G_NOISE)

    def labels(self) -> Any:
        """The real labels: smoothed for the nonsaturating loss with label smoothing, else 1."""
        if self.config.label_smoothing and self.config.loss == "nonsaturating":
            return self.uniform(LABELS, (1,))
        return self.ones((1,))

    def _noisy(self, x: Any, slot: int) -> Any:
        if self.config.instance_noise <= 0:
            return x
        x = self.as_float(x)
        return x + self.sigma * self.normal(slot, tuple(x.shape[1:]))
