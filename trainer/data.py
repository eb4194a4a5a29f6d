"""Input pipeline: the curated images in memory as uint8, shuffled by a per-epoch permutation,
scaled to [-1, 1], optionally mirrored. The same order, flips and scaling on both backends:
tf.data on TensorFlow (distributable), plain numpy on JAX (which must not import TensorFlow).

Both are deterministic functions of (seed, epoch), so ``preview.png`` (the first batch of epoch
1) is exactly what the model receives, and a resumed run skips to the same batch.
TFRecords (``modescope export-tfrecords``): one record per image, PNG bytes + id + label.
``training_images`` is what a run trains on: the curated files or TFRecords, and their record
(dataset.json).
"""

from __future__ import annotations

import glob as globlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modescope.core.training import dataset_record


@dataclass(frozen=True)
class TrainingImages:
    """A run's training images: ``record`` is its dataset.json (count, sha256, and the files
    or the TFRecords and ids); ``source`` holds the decoded TFRecords (None: read the files)."""

    record: dict[str, Any]
    source: np.ndarray | None = None

    def at(self, size: int) -> np.ndarray:
        """Every image as uint8 (N, size, size, 3)."""
        if self.source is not None:
            return resize_images(self.source, size)
        return load_images([Path(f) for f in self.record["files"]], size)


def training_images(files: list[Path] | None, tfrecords: str | None, batch: int
                    ) -> TrainingImages:
    """The curated ``files``, or the images of the TFRecords matching ``tfrecords``; at least
    one batch of them (ValueError otherwise)."""
    if tfrecords:
        source, ids, sha = read_tfrecords(tfrecords)
        sha = sha or dataset_record([Path(i) for i in ids])["sha256"]
        data = TrainingImages({"count": len(ids), "sha256": sha, "tfrecords": tfrecords,
                               "ids": ids}, source)
    else:
        data = TrainingImages(dataset_record(list(files or [])))
    count = data.record["count"]
    if count < batch:
        raise ValueError(f"{count} curated images are fewer than one batch ({batch}); lower "
                         "--batch")
    return data


def load_images(files: list[Path], size: int) -> np.ndarray:
    out = np.empty((len(files), size, size, 3), np.uint8)
    for i, f in enumerate(files):
        with Image.open(f) as img:
            out[i] = _fit(img.convert("RGB"), size)
    return out


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> (N, size, size, 3), Lanczos (progressive stages)."""
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([_fit(Image.fromarray(img), size) for img in images])


def _fit(rgb: Image.Image, size: int) -> np.ndarray:
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(rgb)


def epoch_order(n: int, batch: int, seed: int, epoch: int) -> np.ndarray:
    """The image indices of an epoch's full batches, in order."""
    steps = n // batch
    return np.random.default_rng([seed, epoch]).permutation(n)[:steps * batch]


def flip_mask(seed: int, epoch: int, batch: int, index: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, index, 7]).random(batch) < 0.5


def numpy_batches(images: np.ndarray, batch: int, seed: int, epoch: int, flip: bool,
                  skip: int = 0) -> Iterator[np.ndarray]:
    """float32 batches in [-1, 1] (the JAX pipeline and the preview)."""
    order = epoch_order(len(images), batch, seed, epoch)
    for i in range(skip, len(order) // batch):
        real = images[order[i * batch:(i + 1) * batch]].astype(np.float32) / 127.5 - 1.0
        if flip:
            mask = flip_mask(seed, epoch, batch, i)
            real[mask] = real[mask, :, ::-1]
        yield real


def tf_dataset(images: np.ndarray, batch: int, seed: int, epoch: int, flip: bool,
               skip: int = 0, parts: int = 1, first: int = 0, count: int | None = None) -> Any:
    """The same batches as :func:`numpy_batches`, as a prefetching tf.data.Dataset.

    For tf.distribute each global batch is cut into ``parts`` equal slices (one per replica,
    in replica order) and this input pipeline yields slices ``first .. first + count - 1`` of
    every batch, one element each (``strategy.distribute_datasets_from_function``).
    """
    import tensorflow as tf

    count = parts if count is None else count
    order = epoch_order(len(images), batch, seed, epoch)
    steps, local = len(order) // batch, batch // parts
    masks = np.stack([flip_mask(seed, epoch, batch, i) if flip else np.zeros(batch, bool)
                      for i in range(steps)])
    pick = slice(first, first + count)
    real = images[order].reshape(steps, parts, local, *images.shape[1:])[:, pick]
    masks = masks.reshape(steps, parts, local)[:, pick]
    ds = tf.data.Dataset.from_tensor_slices(
        (real.reshape(steps * count, local, *images.shape[1:]),
         masks.reshape(steps * count, local))).skip(skip * count)

    def prepare(real: Any, mask: Any) -> Any:
        real = tf.cast(real, tf.float32) / 127.5 - 1.0
        return tf.where(mask[:, None, None, None], tf.reverse(real, axis=[2]), real)

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF)  # sharded above, by replica
    return (ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE).with_options(options))


# --- TFRecords -------------------------------------------------------------------------------

def write_tfrecords(items: list[dict[str, Any]], out: Path, shards: int,
                    dataset_sha256: str) -> dict[str, Any]:
    """items ({id, sha256, file, label}) -> out/curated-SSSSS-of-NNNNN.tfrecord (round robin)
    + manifest.json (count, the dataset hash of the curated file list, shards)."""
    import tensorflow as tf

    out.mkdir(parents=True, exist_ok=True)
    shards = max(1, min(shards, len(items)))
    names = [f"curated-{s:05d}-of-{shards:05d}.tfrecord" for s in range(shards)]
    counts = [0] * shards
    writers = [tf.io.TFRecordWriter(str(out / f".{n}.tmp")) for n in names]
    try:
        for k, item in enumerate(items):
            feature = {
                "image": _bytes(tf, Path(item["file"]).read_bytes()),
                "id": _bytes(tf, str(item["id"]).encode()),
                "sha256": _bytes(tf, item["sha256"].encode()),
                "label": _bytes(tf, (item["label"] or "").encode()),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writers[k % shards].write(example.SerializeToString())
            counts[k % shards] += 1
    finally:
        for w in writers:
            w.close()
    for n in names:
        (out / f".{n}.tmp").rename(out / n)
    manifest = {"format": "modescope-tfrecords-1", "count": len(items),
                "dataset_sha256": dataset_sha256, "features": {
                    "image": "PNG bytes (RGB)", "id": "catalog id", "sha256": "of the source file",
                    "label": "label from the ingest (may be empty)"},
                "shards": [{"file": n, "count": c} for n, c in zip(names, counts, strict=True)]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _bytes(tf: Any, value: bytes) -> Any:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def read_tfrecords(pattern: str) -> tuple[np.ndarray, list[str], str | None]:
    """All images of the shards matching ``pattern`` (local or gs://) as uint8 (N, H, W, 3),
    their ids (shard by shard), and the dataset hash of a manifest.json beside them."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(pattern)) if "://" in pattern else sorted(
        globlib.glob(pattern))
    if not files:
        raise ValueError(f"no TFRecord files match {pattern}; export them with "
                         "`modescope export-tfrecords --out DIR`")
    spec = {"image": tf.io.FixedLenFeature([], tf.string),
            "id": tf.io.FixedLenFeature([], tf.string)}
    images, ids = [], []
    for record in tf.data.TFRecordDataset(files):
        ex = tf.io.parse_single_example(record, spec)
        images.append(tf.io.decode_png(ex["image"], channels=3).numpy())
        ids.append(ex["id"].numpy().decode())
    shapes = {img.shape for img in images}
    if len(shapes) != 1:
        raise ValueError(f"the TFRecords in {pattern} mix image sizes {sorted(shapes)}")
    manifest = files[0].rsplit("/", 1)[0] + "/manifest.json" if "/" in files[0] else "manifest.json"
    sha = None
    if tf.io.gfile.exists(manifest):
        with tf.io.gfile.GFile(manifest) as fh:
            sha = json.loads(fh.read()).get("dataset_sha256")
    return np.stack(images), ids, sha
