"""DCGAN (Radford et al. 2015) generator and discriminator for 32-256 px, one builder each.

The 64-px models are the PyTorch DCGAN example's (nz 100, ngf = ndf = 64, no biases: the same
trainable parameter counts). Each resolution adds one block; blocks are named by the resolution
they produce (``g_block_8``, ``d_block_16``...) so progressive growing can carry weights over.

Progressive growing (Karras et al. 2017) builds every stage with the channel widths of the final
size (``final``), so a block keeps its kernel shape from stage to stage; the discriminator then
reads images through a 1x1 ``d_from_rgb_<size>`` (the DCGAN's first conv is no longer the input
layer). With ``fade=True`` the new block is blended in: G's output is ``alpha * new + (1 - alpha)
* upsample(old toRGB)``, D's features ``alpha * new + (1 - alpha) * old fromRGB(downsample(x))``,
``alpha`` being a non-trainable variable of the ``fade`` layer that the loop raises from 0 to 1.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from modescope.core.training import SIZES, UPSAMPLES

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
    return min(8 * filters, max(1, filters * (size // 2) // res))


@functools.cache
def fade_class() -> Any:
    import keras

    class Fade(keras.layers.Layer):
        """(old, new) -> old + alpha * (new - old); alpha set by the training loop."""

        def build(self, input_shape: Any) -> None:
            self.alpha = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                         name="alpha", dtype="float32")

        def call(self, inputs: Any) -> Any:
            old, new = inputs
            a = keras.ops.cast(self.alpha, new.dtype)
            return old + a * (new - old)

    return Fade


def fade_layer(model: Any) -> Any | None:
    return next((layer for layer in model.layers if layer.name.startswith("fade")), None)


def _bn(layers: Any, init: dict[str, Any], name: str, synchronized: bool) -> Any:
    extra = {"synchronized": True} if synchronized else {}
    return layers.BatchNormalization(**BN, gamma_initializer=init["gamma"], name=name, **extra)


def _up(layers: Any, init: dict[str, Any], width: int, upsample: str, name: str) -> Any:
    """One 2x step of G: DCGAN's 4x4 stride-2 transposed conv, or (``resize``) nearest-neighbour
    upsampling then a 3x3 conv, which cannot draw the transposed conv's checkerboard (Odena et
    al. 2016, "Deconvolution and Checkerboard Artifacts")."""
    kernel = init["kernel"]
    if upsample == "transpose":
        return layers.Conv2DTranspose(width, 4, 2, "same", use_bias=False,
                                      kernel_initializer=kernel, name=name)
    if upsample != "resize":
        raise ValueError(f"upsample {upsample!r}: use {' or '.join(UPSAMPLES)}")

    def step(x: Any) -> Any:
        x = layers.UpSampling2D(2, name=f"{name}_up")(x)
        return layers.Conv2D(width, 3, 1, "same", use_bias=False, kernel_initializer=kernel,
                             name=name)(x)
    return step


def build_generator(size: int = 64, latent_dim: int = 100, filters: int = 64, *,
                    final: int | None = None, fade: bool = False,
                    synchronized: bool = False, upsample: str = "transpose") -> Any:
    """z (latent_dim,) -> image (size, size, 3) in [-1, 1]. ``final``: the last progressive
    size (channel widths); ``fade``: blend in the ``size`` block over the ``size // 2`` output;
    ``synchronized``: batch statistics over all replicas (tf.distribute); ``upsample``: how
    each block doubles the resolution (:func:`_up`)."""
    import keras
    from keras import layers

    blocks = _check(size)
    top = final or size
    _check(top)
    if fade and size == 32:
        raise ValueError("there is no smaller stage than 32 px to fade from")
    init = _init(keras)
    z = keras.Input((latent_dim,), name="z")
    c = channels(top, 4, filters)
    x = layers.Dense(4 * 4 * c, use_bias=False, kernel_initializer=init["kernel"],
                     name="g_project")(z)
    x = layers.Reshape((4, 4, c))(x)
    x = _bn(layers, init, "g_project_bn", synchronized)(x)
    x = layers.ReLU()(x)
    res = 4
    for _ in range(blocks - 1):
        res *= 2
        if fade and res == size // 2:
            old = _up(layers, init, 3, upsample, f"g_to_rgb_{res}")(x)
            old = layers.Activation("tanh", dtype="float32", name="g_tanh_old")(old)
            old = layers.UpSampling2D(2, dtype="float32", name="g_upsample")(old)
        x = _up(layers, init, channels(top, res, filters), upsample, f"g_block_{res}")(x)
        x = _bn(layers, init, f"g_block_{res}_bn", synchronized)(x)
        x = layers.ReLU()(x)
    x = _up(layers, init, 3, upsample, f"g_to_rgb_{size}")(x)
    out = layers.Activation("tanh", dtype="float32", name="g_tanh")(x)
    if fade:
        out = fade_class()(dtype="float32", name=f"fade_{size}")([old, out])
    return keras.Model(z, out, name=f"generator_{size}")


def build_discriminator(size: int = 64, filters: int = 64, *, final: int | None = None,
                        fade: bool = False, synchronized: bool = False) -> Any:
    """image (size, size, 3) in [-1, 1] -> one logit (real > 0). ``final``/``fade``/
    ``synchronized`` as for :func:`build_generator`."""
    import keras
    from keras import layers

    blocks = _check(size)
    if fade and size == 32:
        raise ValueError("there is no smaller stage than 32 px to fade from")
    init = _init(keras)
    img = keras.Input((size, size, 3), name="image")
    x = img
    if final:  # progressive: a 1x1 fromRGB, then blocks whose shapes do not change by stage
        _check(final)
        x = layers.Conv2D(channels(final, size, filters), 1, use_bias=False,
                          kernel_initializer=init["kernel"], name=f"d_from_rgb_{size}")(x)
        x = layers.LeakyReLU(0.2)(x)
    res = size
    for i in range(blocks):
        res //= 2
        widths = channels(final or size, res, filters)
        x = layers.Conv2D(widths, 4, 2, "same", use_bias=False,
                          kernel_initializer=init["kernel"], name=f"d_block_{res}")(x)
        first = (res == final // 2) if final else i == 0
        if not first:  # no normalisation on the first block, as in DCGAN
            x = _bn(layers, init, f"d_block_{res}_bn", synchronized)(x)
        x = layers.LeakyReLU(0.2)(x)
        if fade and i == 0:
            old = layers.AveragePooling2D(2, name="d_downsample")(img)
            old = layers.Conv2D(widths, 1, use_bias=False, kernel_initializer=init["kernel"],
                                name=f"d_from_rgb_{res}")(old)
            old = layers.LeakyReLU(0.2)(old)
            x = fade_class()(name=f"fade_{size}")([old, x])
    x = layers.Flatten()(x)
    out = layers.Dense(1, use_bias=False, kernel_initializer=init["kernel"], dtype="float32",
                       name="d_logit")(x)
    return keras.Model(img, out, name=f"discriminator_{size}")


def carry_weights(old: Any, new: Any) -> list[str]:
    """Copy the weights of every layer ``new`` shares (by name and shapes) with ``old``;
    returns the names copied. Progressive growing calls it at each stage change."""
    previous = {layer.name: layer for layer in old.layers}
    copied = []
    for layer in new.layers:
        src = previous.get(layer.name)
        if src is None or not layer.weights or layer.name.startswith("fade"):
            continue
        if [w.shape for w in src.weights] == [w.shape for w in layer.weights]:
            layer.set_weights(src.get_weights())
            copied.append(layer.name)
    return copied
