"""The keras.io DCGAN example, re-implemented as a benchmark anchor: its models, its compiled
``train_step`` and the function ``fit`` calls for each batch, at 64 px.

Follows "DCGAN to generate face images" by fchollet (created 2019/04/29, last modified
2023/12/21, the Keras 3 version), https://keras.io/examples/generative/dcgan_overriding_train_step/
(source: github.com/keras-team/keras-io, examples/generative/dcgan_overriding_train_step.py).
As there:

- discriminator: 64x64x3 -> Conv2D 64, 128, 128 (kernel 4, stride 2, "same"), each followed by
  LeakyReLU 0.2 -> Flatten -> Dropout 0.2 -> Dense 1 sigmoid;
- generator: latent 128 -> Dense 8*8*128 -> Reshape -> Conv2DTranspose 128, 256, 512 (kernel 4,
  stride 2, "same"), each followed by LeakyReLU 0.2 -> Conv2D 3 (kernel 5, "same") sigmoid;
- ``GAN(keras.Model)`` overriding ``train_step``: random latent vectors (a ``SeedGenerator(1337)``),
  generated images concatenated before the real ones with labels 1 (fake) and 0 (real) plus
  0.05 x uniform noise, one discriminator update under a ``tf.GradientTape``; fresh latent
  vectors, then one generator update through the discriminator with the misleading labels 0;
  ``Mean`` trackers for both losses;
- ``BinaryCrossentropy()`` on the sigmoid outputs, ``Adam(learning_rate=1e-4)`` for both, and
  ``compile`` with Keras's defaults (``jit_compile="auto"``: no XLA on a CPU-only TensorFlow,
  XLA on a GPU; ``steps_per_execution`` 1); the images in [0, 1] (``x / 255.0``).

Where this differs, and why:

- the data: the example decodes CelebA JPEGs with ``image_dataset_from_directory`` (batch 32,
  shuffled). Here uint8 images held in memory go through a tf.data pipeline (shuffle, batch at
  the benchmark's batch size with full batches only, cast to float32, the example's ``/ 255.0``,
  repeated without end), so that both sides of the benchmark read in-memory images and no JPEG
  decoding is timed;
- the loop: instead of ``fit``, ``step()`` makes ``fit``'s own train function once
  (``make_train_function``) and calls it on the pipeline's iterator, once per step, which is
  what ``fit`` does for each batch; the callbacks, the progress bar and the example's
  ``GANMonitor`` (which saves images each epoch) are left out;
- ``size``: the example is 64 px (the default here, and what ``train_bench.py`` times); the
  mode-count benchmark (``modes_bench.py``) trains it at the benchmark's size, 32 px, with the
  same layers: D's three stride-2 convs end at 4 x 4 instead of 8 x 8, and G's Dense starts at
  size / 8 = 4 x 4 instead of 8 x 8 before the same three transposed convs;
- the example runs only on the TensorFlow backend (it uses ``tf.GradientTape``); ``build``
  says so instead of failing inside Keras on another backend.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.anchors.feed import SIZE, check_images

LATENT_DIM = 128
LEARNING_RATE = 1e-4


def build_discriminator(size: int = SIZE) -> Any:
    """The example's discriminator (64 x 64 x 3 in [0, 1] -> probability of "fake")."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(shape=(size, size, 3)),
        layers.Conv2D(64, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Dense(1, activation="sigmoid"),
    ], name="discriminator")


def build_generator(size: int = SIZE) -> Any:
    """The example's generator (latent 128 -> 64 x 64 x 3 in [0, 1]; at another ``size`` its
    Dense starts at size / 8)."""
    import keras
    from keras import layers

    if size % 8:
        raise ValueError(f"size {size}: the example's three 2x upsamplings need a multiple of 8")
    first = size // 8
    return keras.Sequential([
        keras.Input(shape=(LATENT_DIM,)),
        layers.Dense(first * first * 128),
        layers.Reshape((first, first, 128)),
        layers.Conv2DTranspose(128, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2DTranspose(256, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2DTranspose(512, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(3, kernel_size=5, padding="same", activation="sigmoid"),
    ], name="generator")


@functools.cache
def gan_class() -> type:
    """The example's ``GAN`` model class (made on first use: it needs Keras and TensorFlow)."""
    import keras
    import tensorflow as tf
    from keras import ops

    class GAN(keras.Model):
        def __init__(self, discriminator: Any, generator: Any, latent_dim: int) -> None:
            super().__init__()
            self.discriminator = discriminator
            self.generator = generator
            self.latent_dim = latent_dim
            self.seed_generator = keras.random.SeedGenerator(1337)

        def compile(self, d_optimizer: Any, g_optimizer: Any, loss_fn: Any) -> None:
            super().compile()
            self.d_optimizer = d_optimizer
            self.g_optimizer = g_optimizer
            self.loss_fn = loss_fn
            self.d_loss_metric = keras.metrics.Mean(name="d_loss")
            self.g_loss_metric = keras.metrics.Mean(name="g_loss")

        @property
        def metrics(self) -> list[Any]:
            return [self.d_loss_metric, self.g_loss_metric]

        def train_step(self, real_images: Any) -> dict[str, Any]:
            batch_size = ops.shape(real_images)[0]
            z = keras.random.normal(shape=(batch_size, self.latent_dim),
                                    seed=self.seed_generator)
            generated = self.generator(z)
            combined = ops.concatenate([generated, real_images], axis=0)
            labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))],
                                     axis=0)
            labels += 0.05 * tf.random.uniform(tf.shape(labels))  # "important trick"
            with tf.GradientTape() as tape:
                d_loss = self.loss_fn(labels, self.discriminator(combined))
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights,
                                                 strict=True))
            z = keras.random.normal(shape=(batch_size, self.latent_dim),
                                    seed=self.seed_generator)
            misleading = ops.zeros((batch_size, 1))  # "all real images"
            with tf.GradientTape() as tape:
                g_loss = self.loss_fn(misleading, self.discriminator(self.generator(z)))
            grads = tape.gradient(g_loss, self.generator.trainable_weights)
            self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights,
                                                 strict=True))
            self.d_loss_metric.update_state(d_loss)
            self.g_loss_metric.update_state(g_loss)
            return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}

    return GAN


def _size(images: np.ndarray) -> int:
    """The side of a batch of square images (64 for anything else: the check then says why)."""
    return int(images.shape[1]) if images.ndim == 4 else SIZE


def dataset(images: np.ndarray, batch_size: int, seed: int = 0) -> Any:
    """Endless shuffled full batches of ``images`` (N x size x size x 3 uint8) as float32 in
    [0, 1], the example's scaling."""
    import tensorflow as tf

    check_images(images, batch_size, _size(images))
    ds = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed)
    ds = ds.batch(batch_size, drop_remainder=True).map(lambda x: tf.cast(x, "float32"))
    return ds.map(lambda x: x / 255.0).repeat()


@dataclass
class KerasAnchor:
    """The compiled example and its input iterator; ``step()`` is one ``fit`` step."""

    gan: Any
    iterator: Any

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``n`` images from the generator (N x size x size x 3 uint8), latents drawn from a
        seeded standard normal."""
        z = np.random.default_rng(seed).standard_normal((n, LATENT_DIM)).astype(np.float32)
        out = np.asarray(self.gan.generator.predict(z, batch_size=256, verbose=0))
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)

    def step(self) -> tuple[Any, Any]:
        """One training step on the next batch: the (running-mean) D and G losses, as
        tensors (reading them waits for the step)."""
        logs = self.gan.train_function(self.iterator)
        return logs["d_loss"], logs["g_loss"]


def build(images: np.ndarray, batch_size: int, seed: int = 0) -> KerasAnchor:
    """The example's GAN, compiled as there, reading ``images`` in batches of ``batch_size``."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("the keras.io DCGAN example needs KERAS_BACKEND=tensorflow "
                           f"(it uses tf.GradientTape), not {keras.backend.backend()}")
    gan = gan_class()(discriminator=build_discriminator(_size(images)),
                      generator=build_generator(_size(images)),
                      latent_dim=LATENT_DIM)
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
                g_optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
                loss_fn=keras.losses.BinaryCrossentropy())
    gan.make_train_function()
    return KerasAnchor(gan, iter(dataset(images, batch_size, seed)))


def step_flops() -> dict[str, float]:
    """FLOPs per real image of one example step (docs/training.md): the D update on the
    concatenated fakes and reals, 2 x (3D - d1) (the images are constants for D's tape); G
    forward once for them; the G update on fresh latents, G forward again, D forward, D's input
    gradients only (the tape is asked for G's weights), G's weight and input gradients (not
    z's): 2D + 3G - g1. Total 8D + 4G - 2 d1 - g1."""
    from bench.anchors.flops import layer_flops

    g, d = layer_flops(build_generator()), layer_flops(build_discriminator())
    big_g, big_d = sum(g), sum(d)
    step = 2 * (3 * big_d - d[0]) + big_g + 2 * big_d + 3 * big_g - g[0]
    return {"g_forward": big_g, "d_forward": big_d, "step": step}
