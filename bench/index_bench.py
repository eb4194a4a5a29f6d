"""Indexer benchmark: feature extraction vs the machine's own GEMM rate, and query latency.

    python bench/index_bench.py [--part extract,query] [--sizes 64,128,224] [--vectors 10k,100k,1M]

(a) extract: VGG16 trunk + pooling at each input size, run three ways in one process: plain
    ``model.predict`` (the baseline), modescope's compiled fixed-batch function, and the same
    with XLA. FLOPs per image are counted from the model's conv layers (2 per multiply-add);
    the ceiling is the best fp32 matmul rate measured in the same run (numpy and the backend).
(b) query: p50/p95 latency of one 24-neighbour query on synthetic descriptor-like 1,024-d unit
    vectors, exact (flat) and IVF, with IVF's recall@24 against exact search.
Works with KERAS_BACKEND=jax too (extract part; use it on a GPU machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modescope.indexer.backend import keras_module  # noqa: E402
from modescope.indexer.features import Extractor, FeatureSpec  # noqa: E402


def gemm_ceiling(keras: Any) -> tuple[float, str]:
    """Best fp32 matmul GFLOP/s of numpy and the Keras backend on this machine, now."""
    best, name = 0.0, ""
    n = 2048
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)

    def rate(fn: Any, reps: int = 8) -> float:
        fn()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9

    r = rate(lambda: a @ b)
    if r > best:
        best, name = r, "numpy"
    ka, kb = keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        mm = jax.jit(lambda x, y: x @ y)
        r = rate(lambda: mm(ka, kb).block_until_ready())
    else:
        r = rate(lambda: np.asarray(keras.ops.matmul(ka, kb)))
    if r > best:
        best, name = r, backend
    return best, name


def conv_flops(model: Any) -> float:
    """2 x multiply-adds of every Conv2D layer in the (possibly nested) model, per image."""
    keras = keras_module()
    total = 0.0
    stack = [model]
    while stack:
        m = stack.pop()
        for layer in m.layers:
            if isinstance(layer, keras.Model):
                stack.append(layer)
            elif isinstance(layer, keras.layers.Conv2D):
                _, h, w, cout = layer.output.shape
                kh, kw = layer.kernel_size
                cin = layer.input.shape[-1]
                total += 2.0 * h * w * cout * kh * kw * cin
    return total


def _int8_extractor(spec: FeatureSpec, x: np.ndarray, batch: int) -> Any:
    try:
        from modescope.indexer.int8 import Int8Extractor
    except ImportError:
        return None
    import tempfile

    tmp = tempfile.mkdtemp()
    try:
        calib = x if len(x) >= 64 else None
        return Int8Extractor(spec, Path(tmp) / "model", x.shape[1], calib, batch_size=batch)
    except Exception as exc:  # report, keep benchmarking the rest
        print(f"(int8 engine unavailable: {exc})")
        return None


def time_it(fn: Any, n_images: int, reps: int = 2) -> float:
    fn()  # warm up: trace / compile
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n_images / best


def demo_images(n: int) -> list[Any]:
    """Demo-data pictures (the int8 engine must calibrate and be checked on real images)."""
    import tempfile

    from PIL import Image

    from modescope.core.demodata import write_demo_data

    with tempfile.TemporaryDirectory() as tmp:
        write_demo_data(Path(tmp) / "d", n=n, seed=0)
        return [Image.open(p).convert("RGB") for p in sorted((Path(tmp) / "d").rglob("*.*"))
                if p.suffix in (".jpg", ".png")]


def extract_part(sizes: list[int], batch: int) -> None:
    from PIL import Image

    keras = keras_module()
    pictures = demo_images(520)
    ceiling, src = gemm_ceiling(keras)
    backend = keras.backend.backend()
    print(f"\n(a) feature extraction, {backend} backend, batch {batch}; fp32 matmul ceiling "
          f"{ceiling:.0f} GFLOP/s ({src}, 2048x2048, same run)")
    print("| input px | GFLOP/img | way | img/s | GFLOP/s | share of ceiling |")
    print("|---:|---:|---|---:|---:|---:|")
    for size in sizes:
        n = max(batch * 2, {64: 512, 128: 128, 224: 64}.get(size, 64))
        n = min(n, len(pictures))
        n -= n % batch
        x = np.stack([np.asarray(p.resize((size, size), Image.Resampling.BILINEAR))
                      for p in pictures[:n]])
        spec = FeatureSpec(weights="random", seed=0, input_size=size)
        ex = Extractor(spec, batch_size=batch)
        flops = conv_flops(ex.model)
        ways: list[tuple[str, Any]] = [
            ("keras predict (baseline)",
             lambda: ex.model.predict(x, batch_size=batch, verbose=0)),
            ("modescope compiled", lambda: ex(x)),
        ]
        if backend == "tensorflow":
            import tensorflow as tf

            xla = tf.function(lambda t: ex.model(t, training=False), jit_compile=True)

            def run_xla() -> None:
                for s in range(0, n, batch):
                    [o.numpy() for o in xla(tf.constant(x[s:s + batch]))]

            ways.append(("compiled + XLA", run_xla))
            int8 = _int8_extractor(spec, x, batch)
            if int8 is not None:
                ways.append(("int8 OpenVINO (--engine int8)", lambda: int8(x)))
        for name, fn in ways:
            rate = time_it(fn, n)
            gf = rate * flops / 1e9
            print(f"| {size} | {flops / 1e9:.2f} | {name} | {rate:.1f} | {gf:.0f} | "
                  f"{gf / ceiling:.0%} |")


def device_part(sizes: list[int], batch: int) -> None:
    """(c) JAX on an accelerator: the product's Extractor (uint8 numpy in, vectors out) and the
    jitted graph alone on device-resident batches, in fp32 and in mixed bf16."""
    import jax

    keras = keras_module()
    print(f"\n(c) extraction on {jax.devices()[0].device_kind}, keras {keras.__version__}, "
          f"jax {jax.__version__}, batch {batch}")
    print("| input px | precision | way | img/s |")
    print("|---:|---|---|---:|")
    for size in sizes:
        n = batch * 16
        x = np.random.default_rng(size).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        for policy in ("float32", "mixed_bfloat16"):
            keras.mixed_precision.set_global_policy(policy)
            ex = Extractor(FeatureSpec(weights="random", seed=0, input_size=size),
                           batch_size=batch)
            model = ex.model
            state = ([v.value for v in model.trainable_variables],
                     [v.value for v in model.non_trainable_variables])
            fn = jax.jit(lambda tv, ntv, t: model.stateless_call(tv, ntv, t, training=False)[0])
            xd = [jax.device_put(x[s:s + batch]) for s in range(0, n, batch)]

            def resident() -> None:
                out = [fn(*state, b) for b in xd]
                jax.block_until_ready(out)

            rate_dev = time_it(resident, n, reps=3)
            rate_e2e = time_it(lambda: ex(x), n, reps=2)
            print(f"| {size} | {policy} | graph only, device-resident | {rate_dev:,.0f} |")
            print(f"| {size} | {policy} | Extractor, uint8 numpy in, vectors out | "
                  f"{rate_e2e:,.0f} |")
        keras.mixed_precision.set_global_policy("float32")


def descriptor_like(n: int, d: int, seed: int, modes: int = 20, latent: int = 32) -> np.ndarray:
    """Unit vectors with descriptor-like structure: a mixture of ``modes`` Gaussians in a
    ``latent``-d space, lifted to ``d`` dimensions by a fixed random map, plus isotropic noise.
    (Isotropic noise alone in 1,024-d makes every neighbour a near-tie, which no real image
    descriptor shows and no index can rank.)"""
    lift = np.random.default_rng(0).standard_normal((latent, d)).astype(np.float32)
    centres = np.random.default_rng(1).standard_normal((modes, latent)).astype(np.float32) * 2
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        z = centres[rng.integers(0, modes, m)] + rng.standard_normal((m, latent)).astype(
            np.float32)
        x = z @ lift + 0.5 * rng.standard_normal((m, d)).astype(np.float32)
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def query_part(sizes: list[int], dim: int = 1024) -> None:
    import faiss

    from modescope.indexer.index import VectorIndex

    print(f"\n(b) one query, k=24, {dim}-d descriptor-like unit vectors, "
          f"{faiss.omp_get_max_threads()} threads")
    print("| vectors | index | build s | p50 ms | p95 ms | recall@24 vs exact |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in sizes:
        db = descriptor_like(n, dim, seed=n)
        q = descriptor_like(300, dim, seed=n + 1)
        ids = np.arange(n, dtype=np.int64)
        exact_ids = None
        for kind in ("flat", "ivf"):
            t = time.perf_counter()
            vi = VectorIndex.build(ids, db, kind=kind)
            build = time.perf_counter() - t
            nq = 300 if (kind == "ivf" or n <= 100_000) else 40
            lat, found = [], []
            for i in range(nq):
                t = time.perf_counter()
                _, f = vi.search(q[i:i + 1], 24)
                lat.append((time.perf_counter() - t) * 1e3)
                found.append(f[0])
            if kind == "flat":
                exact_ids = found
                recall = "exact"
            else:
                assert exact_ids is not None
                m = len(exact_ids)
                recall = f"{np.mean([len(set(a) & set(b)) / 24 for a, b in zip(found[:m], exact_ids, strict=True)]):.3f}"  # noqa: E501
            print(f"| {n:,} | {kind} | {build:.1f} | {np.percentile(lat, 50):.2f} | "
                  f"{np.percentile(lat, 95):.2f} | {recall} |")
            del vi
        del db


def parse_count(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="extract,query")
    ap.add_argument("--sizes", default="64,128,224")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--vectors", default="10k,100k,1M")
    args = ap.parse_args()
    print(f"index benchmark on {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    parts = args.part.split(",")
    if "extract" in parts:
        extract_part([int(s) for s in args.sizes.split(",")], args.batch)
    if "device" in parts:
        device_part([int(s) for s in args.sizes.split(",")], args.batch)
    if "query" in parts:
        query_part([parse_count(s) for s in args.vectors.split(",")])


if __name__ == "__main__":
    main()
