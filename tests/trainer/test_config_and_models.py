"""Trainer configuration and DCGAN builders (no training here)."""

from __future__ import annotations

import numpy as np
import pytest

from modescope.core.training import ConfigError, TrainConfig
from modescope.trainer.models import build_discriminator, build_generator, channels


def test_config_round_trips_through_json() -> None:
    cfg = TrainConfig(size=128, progressive=(32, 64, 128), stage_epochs=(2, 3, 4), lr_d=4e-5,
                      lr_g=4e-4)
    back = TrainConfig.loads(cfg.dumps())
    assert back == cfg and back.total_epochs == 9


@pytest.mark.parametrize("bad, message", [
    ({"size": 48}, "size 48"),
    ({"lr_d": 0}, "learning rates"),
    ({"loss": "wgan"}, "loss 'wgan'"),
    ({"upsample": "bilinear"}, "upsample 'bilinear'"),
    ({"progressive": (64, 32), "stage_epochs": (1, 1), "size": 32}, "increasing"),
    ({"progressive": (32, 64), "size": 64}, "stage_epochs"),
    ({"stage_epochs": (3,)}, "only goes with progressive"),
])
def test_bad_options_are_refused_with_the_option_named(bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**bad)


def test_unknown_keys_in_a_saved_config_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown training option.*lr_x"):
        TrainConfig.from_json({"lr_x": 1})


def test_the_trainer_config_imports_no_tensorflow() -> None:
    import subprocess
    import sys

    code = ("import sys, modescope.core.training; "
            "assert not {'tensorflow', 'keras', 'jax'} & set(sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.slow  # builds Keras models
def test_64px_models_have_the_pytorch_examples_parameter_counts() -> None:
    g, d = build_generator(64), build_discriminator(64)
    count = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)  # noqa: E731
    assert count(g) == 3_576_704 and count(d) == 2_765_568
    assert [channels(64, r, 64) for r in (4, 8, 16, 32)] == [512, 256, 128, 64]


@pytest.mark.slow  # builds Keras models
@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_every_size_builds_and_maps_shapes(size: int) -> None:
    g, d = build_generator(size, latent_dim=16, filters=8), build_discriminator(size, filters=8)
    z = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    img = np.asarray(g(z, training=False))
    assert img.shape == (2, size, size, 3) and np.abs(img).max() <= 1.0
    assert np.asarray(d(img, training=False)).shape == (2, 1)
    res = [int(layer.name.rsplit("_", 1)[1]) for layer in g.layers
           if layer.name.startswith("g_block_") and not layer.name.endswith("_bn")]
    assert res == [2 ** i for i in range(3, int(np.log2(size)))]


@pytest.mark.slow  # builds Keras models
def test_the_resize_generator_has_no_transposed_convs_and_fades_in_like_dcgan() -> None:
    import keras

    g = build_generator(64, latent_dim=16, filters=8, upsample="resize", final=64, fade=True)
    kinds = {type(layer).__name__ for layer in g.layers}
    assert "Conv2DTranspose" not in kinds and "UpSampling2D" in kinds
    fresh = build_generator(64, latent_dim=16, filters=8, upsample="resize", final=64)
    shared = {layer.name for layer in g.layers if layer.weights} & {
        layer.name for layer in fresh.layers if layer.weights}
    assert {"g_block_8", "g_block_16", "g_block_32", "g_to_rgb_64"} <= shared
    z = keras.random.normal((2, 16), seed=1)
    assert tuple(g(z, training=False).shape) == (2, 64, 64, 3)
