"""DCGAN (Radford et al. 2015) generator and discriminator for 32-256 px, one builder each.

The 64-px models are the PyTorch DCGAN example's (nz 100, ngf = ndf = 64, no biases: the same
trainable parameter counts). Each resolution adds one block; blocks are named by the resolution
they produce (``g_block_8``, ``d_block_16``...) so progressive growing can carry weights over.
"""

from __future__ import annotations

import math
from typing import Any

from trainer.config import SIZES

# PyTorch's BatchNorm defaults (its momentum 0.1 is Keras's 0.9): running statistics that keep
# up within an epoch, so samples drawn in inference mode look like training-mode ones
BN = {"momentum": 0.9, "epsilon": 1e-5}


def _init(keras: Any) -> dict[str, Any]:
    """DCGAN's initialisation (Radford et al.; the PyTorch example's weights_init): conv and
    dense kernels N(0, 0.02), batch-norm scales N(1, 0.02)."""
    return {"kernel": keras.initializers.RandomNormal(0.0, 0.02),
            "gamma": keras.initializers.RandomNormal(1.0, 0.02)}


def _check(size: int) -> int:
    if size not in SIZES:
        raise ValueError(f"size {size}: use one of {', '.join(map(str, SIZES))}")
    return int(math.log2(size // 4))  # number of 2x blocks between 4 px and size


def channels(size: int, res: int, filters: int) -> int:
    """Feature maps at resolution ``res`` in a ``size``-px model: doubling towards 4 px, capped at
    8 x filters (at 64 px: 512, 256, 128, 64 for 4, 8, 16, 32 px)."""
    return min(8 * filters, filters * (size // 2) // res)


def build_generator(size: int = 64, latent_dim: int = 100, filters: int = 64) -> Any:
    """z (latent_dim,) -> image (size, size, 3) in [-1, 1]."""
    import keras
    from keras import layers

    blocks = _check(size)
    init = _init(keras)
    bn = {**BN, "gamma_initializer": init["gamma"]}
    z = keras.Input((latent_dim,), name="z")
    c = channels(size, 4, filters)
    x = layers.Dense(4 * 4 * c, use_bias=False, kernel_initializer=init["kernel"],
                     name="g_project")(z)
    x = layers.Reshape((4, 4, c))(x)
    x = layers.BatchNormalization(**bn, name="g_project_bn")(x)
    x = layers.ReLU()(x)
    res = 4
    for _ in range(blocks - 1):
        res *= 2
        x = layers.Conv2DTranspose(channels(size, res, filters), 4, 2, "same", use_bias=False,
                                   kernel_initializer=init["kernel"], name=f"g_block_{res}")(x)
        x = layers.BatchNormalization(**bn, name=f"g_block_{res}_bn")(x)
        x = layers.ReLU()(x)
    x = layers.Conv2DTranspose(3, 4, 2, "same", use_bias=False, kernel_initializer=init["kernel"],
                               name=f"g_to_rgb_{size}")(x)
    out = layers.Activation("tanh", dtype="float32", name="g_tanh")(x)
    return keras.Model(z, out, name=f"generator_{size}")


def build_discriminator(size: int = 64, filters: int = 64) -> Any:
    """image (size, size, 3) in [-1, 1] -> one logit (real > 0)."""
    import keras
    from keras import layers

    blocks = _check(size)
    init = _init(keras)
    bn = {**BN, "gamma_initializer": init["gamma"]}
    img = keras.Input((size, size, 3), name="image")
    x = img
    res = size
    for i in range(blocks):
        res //= 2
        x = layers.Conv2D(channels(size, res, filters), 4, 2, "same", use_bias=False,
                          kernel_initializer=init["kernel"], name=f"d_block_{res}")(x)
        if i > 0:  # no normalisation on the first block, as in DCGAN
            x = layers.BatchNormalization(**bn, name=f"d_block_{res}_bn")(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    out = layers.Dense(1, use_bias=False, kernel_initializer=init["kernel"], dtype="float32",
                       name="d_logit")(x)
    return keras.Model(img, out, name=f"discriminator_{size}")
