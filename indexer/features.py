"""VGG16 descriptors: one forward pass, two layers, fixed-size L2-normalised vectors.

``block1_pool`` (colour, texture, lines) and ``block5_pool`` (shapes) are pooled inside the
compiled graph to at most 2,048 dimensions whatever the input size; docs/features.md has the
measurements behind the defaults. Arrays in, arrays out: uint8 images (N, H, W, 3) in RGB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modescope.core.errors import ModescopeError
from modescope.indexer.backend import keras_module, quiet_native_stderr

LAYERS = {"block1": "block1_pool", "block5": "block5_pool"}
LAYER_CHANNELS = {"block1": 64, "block5": 512}
# pooling name -> output dimension given the layer's channel count
POOLINGS: dict[str, Callable[[int], int]] = {
    "grid4": lambda c: 16 * c,
    "grid2": lambda c: 4 * c,
    "meanstd": lambda c: 2 * c,
    "gap": lambda c: c,
    "gmp": lambda c: c,
    "gapgmp": lambda c: 2 * c,
}
# chosen by leave-one-out precision@24 on the demo data's modes (docs/features.md)
DEFAULT_POOLING = {"block1": "grid4", "block5": "gapgmp"}
MIN_DEFAULT_INPUT, MAX_DEFAULT_INPUT = 64, 224
ENGINES = ("fp32", "int8")
MAX_DIM = 2048
WEIGHTS_FILE_HINT = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


class WeightsUnavailable(ModescopeError):
    """ImageNet weights could not be downloaded or found in Keras's cache."""

    status = 503
    title = "Weights unavailable"
    exit_code = 3


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that decides a descriptor's values; two indexes are comparable iff equal."""

    weights: str = "imagenet"  # "imagenet", "random" or a path to a weights file
    seed: int = 0  # for "random"
    input_size: int = 64
    pooling: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_POOLING))
    engine: str = "fp32"  # "fp32" (Keras) or "int8" (OpenVINO, indexer/int8.py)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ModescopeError(f"--engine {self.engine!r}: use {' or '.join(ENGINES)}")
        if self.input_size < 32 or self.input_size % 32:
            raise ModescopeError(
                f"--input-size {self.input_size} must be a multiple of 32 and at least 32"
            )
        for layer, name in self.pooling.items():
            if layer not in LAYERS or name not in POOLINGS:
                raise ModescopeError(f"unknown pooling {layer}={name}")
            if self.dim(layer) > MAX_DIM:
                raise ModescopeError(f"{layer}={name} gives {self.dim(layer)} dimensions, "
                                     f"over {MAX_DIM}")

    @property
    def trained(self) -> bool:
        return self.weights != "random"

    def dim(self, layer: str) -> int:
        return POOLINGS[self.pooling[layer]](LAYER_CHANNELS[layer])

    def weights_label(self) -> str:
        if self.weights == "random":
            return f"random (seed {self.seed})"
        if self.weights == "imagenet":
            return "imagenet"
        return f"file {self.weights}"

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.weights not in ("imagenet", "random"):
            out["weights_sha256"] = _sha256(Path(self.weights))
        if self.weights != "random":
            out.pop("seed")
        if self.engine == "fp32":
            out.pop("engine")  # fp32 specs read the same as before engines existed
        return out


def default_input_size(training_size: int) -> int:
    """The training size itself, kept within 64..224 px (docs/features.md compares sizes)."""
    return min(max(training_size, MIN_DEFAULT_INPUT), MAX_DEFAULT_INPUT)


def untrained_warning(spec_weights: str) -> str | None:
    if spec_weights != "random":
        return None
    return ("features come from UNTRAINED (random) VGG16 weights: neighbours follow colour and "
            "layout, not learned shapes; index with --weights imagenet or --weights PATH")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def adaptive_avg_grid(ops: Any, x: Any, g: int) -> Any:
    """Average (N, H, W, C) over a g x g grid of near-equal cells -> (N, g*g*C).

    Cells overlap when H or W is not a multiple of g (as torch's AdaptiveAvgPool2d), so every
    cell holds at least one position even when H < g.
    """
    h, w = int(x.shape[1]), int(x.shape[2])
    cells = []
    for i in range(g):
        h0, h1 = (i * h) // g, -(-((i + 1) * h) // g)
        for j in range(g):
            w0, w1 = (j * w) // g, -(-((j + 1) * w) // g)
            cells.append(ops.mean(x[:, h0:h1, w0:w1, :], axis=(1, 2)))
    return ops.concatenate(cells, axis=-1)


def pool(ops: Any, x: Any, name: str) -> list[Any]:
    """The pooled parts of one layer's activations; each part is L2-normalised separately."""
    if name == "grid4":
        return [adaptive_avg_grid(ops, x, 4)]
    if name == "grid2":
        return [adaptive_avg_grid(ops, x, 2)]
    if name == "meanstd":
        return [ops.mean(x, axis=(1, 2)), ops.std(x, axis=(1, 2))]
    if name == "gap":
        return [ops.mean(x, axis=(1, 2))]
    if name == "gmp":
        return [ops.max(x, axis=(1, 2))]
    if name == "gapgmp":
        return [ops.mean(x, axis=(1, 2)), ops.max(x, axis=(1, 2))]
    raise ValueError(f"unknown pooling {name!r}")


def unit_concat(ops: Any, parts: list[Any]) -> Any:
    """Normalise each part, concatenate, normalise again (zero vectors stay zero)."""
    def unit(a: Any) -> Any:
        a = ops.cast(a, "float32")
        return a / ops.maximum(ops.sqrt(ops.sum(a * a, axis=-1, keepdims=True)), 1e-12)

    return unit(ops.concatenate([unit(p) for p in parts], axis=-1))


def build_trunk(spec: FeatureSpec) -> Any:
    """VGG16 without its classifier, at ``spec.input_size``, with the requested weights."""
    keras = keras_module()
    size = (spec.input_size, spec.input_size, 3)
    with quiet_native_stderr():
        if spec.weights == "random":
            keras.utils.set_random_seed(spec.seed)
            return keras.applications.VGG16(include_top=False, weights=None, input_shape=size)
    if spec.weights == "imagenet":
        try:
            with quiet_native_stderr():
                return keras.applications.VGG16(include_top=False, weights="imagenet",
                                                input_shape=size)
        except Exception as exc:
            raise WeightsUnavailable(
                f"cannot obtain ImageNet VGG16 weights ({_short(exc)}); either copy "
                f"{WEIGHTS_FILE_HINT} (Keras keeps it in ~/.keras/models on a machine with "
                "internet) to this machine and use --weights PATH, or use --weights random "
                "--seed S for untrained features"
            ) from None
    path = Path(spec.weights)
    if not path.is_file():
        raise ModescopeError(f"--weights {path}: no such file; give a VGG16 (no top) weights "
                             f"file such as {WEIGHTS_FILE_HINT}")
    model = keras.applications.VGG16(include_top=False, weights=None, input_shape=size)
    try:
        model.load_weights(str(path))
    except Exception as exc:
        raise ModescopeError(f"--weights {path} does not fit VGG16 without its top "
                             f"({_short(exc)}); use {WEIGHTS_FILE_HINT}") from None
    return model


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


class Extractor:
    """Compiled, fixed-batch VGG16 forward pass that returns both layers' descriptors."""

    def __init__(self, spec: FeatureSpec, batch_size: int = 32) -> None:
        self.spec = spec
        self.batch_size = batch_size
        keras = keras_module()
        ops = keras.ops
        trunk = build_trunk(spec)
        # uint8 in: 4x less to copy to a GPU; Keras's own preprocess_input runs in the graph
        inputs = keras.Input((None, None, 3), dtype="uint8")
        x = keras.layers.Lambda(
            lambda t: keras.applications.vgg16.preprocess_input(ops.cast(t, "float32")),
            name="vgg16_preprocess")(inputs)
        x = keras.layers.Resizing(spec.input_size, spec.input_size, interpolation="bilinear")(x)
        feats = keras.Model(trunk.input, [trunk.get_layer(LAYERS[k]).output for k in LAYERS])(x)
        outs = [
            keras.layers.Lambda(
                lambda a, name=spec.pooling[k]: unit_concat(ops, pool(ops, a, name)),
                name=f"{k}_{spec.pooling[k]}")(act)
            for k, act in zip(LAYERS, feats, strict=True)
        ]
        self.model = keras.Model(inputs, outs)
        self._fn = self._compile(keras)

    def _compile(self, keras: Any) -> Callable[[np.ndarray], Any]:
        """A compiled call on one fixed-shape batch; it returns backend tensors, so device
        work for the next batch is dispatched before this one is copied back."""
        model = self.model
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
            return lambda x: fn(tf.constant(x))
        if keras.backend.backend() == "jax":
            import jax

            state = ([v.value for v in model.trainable_variables],
                     [v.value for v in model.non_trainable_variables])
            jfn = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
            return lambda x: jfn(*state, x)
        return lambda x: model.predict_on_batch(x)

    def dims(self) -> dict[str, int]:
        return {k: self.spec.dim(k) for k in LAYERS}

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 RGB images (N, H, W, 3) -> {"block1": (N, d1), "block5": (N, d5)} float32."""
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            raise TypeError("images must be a uint8 numpy array")
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must have shape (N, H, W, 3), got {images.shape}")
        pending = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            m = len(chunk)
            if m < self.batch_size:  # keep one compiled shape: pad the last batch
                pad = np.zeros((self.batch_size - m, *chunk.shape[1:]), np.uint8)
                chunk = np.concatenate([chunk, pad])
            pending.append((m, self._fn(chunk)))
        out: dict[str, list[np.ndarray]] = {k: [] for k in LAYERS}
        for m, outs in pending:
            for layer, t in zip(LAYERS, outs, strict=True):
                out[layer].append(np.asarray(t, dtype=np.float32)[:m])
        return {k: np.concatenate(v) if v else np.zeros((0, self.spec.dim(k)), np.float32)
                for k, v in out.items()}


def preprocess(images: np.ndarray) -> np.ndarray:
    """Keras's own VGG16 ``preprocess_input`` (RGB -> BGR, ImageNet mean subtracted), in numpy
    (the Extractor runs the same function inside its graph)."""
    keras = keras_module()
    return np.asarray(
        keras.applications.vgg16.preprocess_input(images.astype(np.float32)), np.float32)
