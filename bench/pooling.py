"""Choose each layer's pooling and the VGG input size by measurement (docs/features.md).

    python bench/pooling.py --workspace WS --truth DEMO/truth.json [--weights random|imagenet|PATH]

For every input size, one VGG16 pass per batch gives the raw block1_pool / block5_pool
activations; every candidate pooling is computed from them, and each descriptor's leave-one-out
precision@24 is measured against the demo data's ground truth: same mode (shape x style), same
style (what block1 should see) and same shape (what block5 should see). Noise and duplicates
are left out. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modescope.indexer.backend import keras_module  # noqa: E402
from modescope.indexer.evaluate import precision_at_k, raw_pixels  # noqa: E402
from modescope.indexer.features import LAYERS, FeatureSpec, build_trunk, pool, unit_concat  # noqa: E402

CANDIDATES = {"block1": ["grid4", "grid2", "meanstd", "gap"],
              "block5": ["gap", "gmp", "gapgmp", "grid2"]}


def load(ws: Path, truth_path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    truth = json.loads(truth_path.read_text())
    root = truth_path.parent.resolve()
    conn = sqlite3.connect(ws / "catalog.sqlite")
    images, modes = [], []
    for path, file in conn.execute("SELECT path, file FROM images WHERE status='ok' ORDER BY id"):
        entry = truth["files"].get(Path(path).resolve().relative_to(root).as_posix())
        if not entry or not entry["mode"] or entry["near_duplicate_of"]:
            continue
        images.append(np.asarray(Image.open(ws / file).convert("RGB")))
        modes.append(entry["mode"])
    info = truth["modes"]
    mode_arr = np.array(modes)
    labels = {"mode": mode_arr,
              "style": np.array([info[m]["style"] for m in modes]),
              "shape": np.array([info[m]["shape"] for m in modes])}
    return np.stack(images), labels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--weights", default="random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", default="64,128,224")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    images, labels = load(args.workspace, args.truth)
    keras = keras_module()
    ops = keras.ops
    print(f"{len(images)} mode images ({len(set(labels['mode']))} modes), weights "
          f"{args.weights}, precision@24 (leave-one-out)\n")
    rows = []
    base = raw_pixels(images)
    rows.append(("raw pixels 16x16", "-", 768, *(precision_at_k(base, labels[t])
                                                  for t in ("mode", "style", "shape")), "-"))
    for size in map(int, args.sizes.split(",")):
        spec = FeatureSpec(weights=args.weights, seed=args.seed, input_size=size)
        trunk = build_trunk(spec)
        model = keras.Model(trunk.input, [trunk.get_layer(LAYERS[k]).output for k in LAYERS])
        resize = keras.layers.Resizing(size, size, interpolation="bilinear")
        feats: dict[tuple[str, str], list[np.ndarray]] = {
            (layer, p): [] for layer in LAYERS for p in CANDIDATES[layer]}
        start = time.perf_counter()
        for s in range(0, len(images), args.batch):
            x = keras.applications.vgg16.preprocess_input(
                images[s:s + args.batch].astype(np.float32))
            acts = dict(zip(LAYERS, model(resize(x), training=False), strict=True))
            for layer, p in feats:
                feats[(layer, p)].append(np.asarray(unit_concat(ops, pool(ops, acts[layer], p))))
        secs = time.perf_counter() - start
        for (layer, p), chunks in feats.items():
            vec = np.concatenate(chunks)
            rows.append((f"{layer} {p}", size, vec.shape[1],
                         *(precision_at_k(vec, labels[t]) for t in ("mode", "style", "shape")),
                         f"{len(images) / secs:.1f}"))
    print("| descriptor | input px | dim | P@24 mode | P@24 style | P@24 shape | img/s (all) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, size, dim, pm, ps, psh, rate in rows:
        print(f"| {name} | {size} | {dim} | {pm:.3f} | {ps:.3f} | {psh:.3f} | {rate} |")


if __name__ == "__main__":
    main()
