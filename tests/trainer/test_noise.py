"""The random slots of one step (trainer/noise.py), which both backends' steps draw from: each
stream has its own slot, and options that switch randomness off draw nothing."""

from __future__ import annotations

from typing import Any

import numpy as np

from modescope.core.training import TrainConfig
from modescope.trainer.noise import G_NOISE, LABELS, SLOTS, StepNoise, instance_sigma


def recording(config: TrainConfig, sigma: float = 0.5) -> tuple[StepNoise, list[tuple[str, int]]]:
    drawn: list[tuple[str, int]] = []

    def draw(kind: str) -> Any:
        def fn(slot: int, shape: tuple[int, ...]) -> np.ndarray:
            drawn.append((kind, slot))
            return np.full((4, *shape), float(slot), np.float32)
        return fn

    noise = StepNoise(config, draw("normal"), draw("uniform"),
                      lambda shape: np.ones((4, *shape), np.float32),
                      lambda x: np.asarray(x, np.float32), sigma)
    return noise, drawn


def test_every_stream_of_a_step_has_its_own_slot() -> None:
    config = TrainConfig(d_steps=10, instance_noise=0.1)
    noise, drawn = recording(config)
    x = np.zeros((4, 2, 2, 3), np.float32)
    for k in range(config.d_steps):
        assert noise.z(k).shape == (4, config.latent_dim)
        noise.real(x, k)
        noise.fake(x, k)
    noise.for_g(x)
    assert noise.labels().shape == (4, 1)
    slots = [slot for _, slot in drawn]
    assert len(slots) == len(set(slots)) and max(slots) < SLOTS  # no two streams share a slot
    assert slots[:3] == [0, 1, 2] and slots[-2:] == [G_NOISE, LABELS]
    assert ("uniform", LABELS) in drawn
    # instance noise adds sigma times its slot's normal draw
    assert np.array_equal(noise.fake(x, 1), x + 0.5 * 5.0)


def test_switched_off_options_draw_nothing() -> None:
    x = np.zeros((4, 2, 2, 3), np.float32)
    for config in (TrainConfig(label_smoothing=False), TrainConfig(loss="hinge")):
        noise, drawn = recording(config)
        assert noise.real(x, 0) is x and noise.for_g(x) is x  # instance_noise 0: untouched
        assert np.array_equal(noise.labels(), np.ones((4, 1)))
        assert drawn == []


def test_instance_noise_decays_linearly_to_zero() -> None:
    config = TrainConfig(instance_noise=0.2)
    assert [instance_sigma(config, s, 4) for s in (0, 2, 4, 5)] == [0.2, 0.1, 0.0, 0.0]
