"""Indexer benchmark: feature extraction vs the machine's own GEMM rate, and query latency.

    python bench/index_bench.py [--part extract,query,real] [--sizes 64,128,224]
        [--vectors 10k,100k,1M] [--real 10k,100k] [--weights random|FILE]
        [--engine fp32|int8] [--cache DIR]

(a) extract: VGG16 trunk + pooling at each input size, run three ways in one process: plain
    ``model.predict`` (the baseline), modescope's compiled fixed-batch function, and the same
    with XLA, each the median of 3 timed rounds. FLOPs per image are counted from the model's
    conv layers (2 per multiply-add); the ceiling is the best fp32 matmul rate (numpy and the
    backend) of the measurements taken before and between the timings in the same run.
(b) query: p50/p95 latency of one 24-neighbour query on synthetic descriptor-like 1,024-d unit
    vectors, exact (flat) and IVF, with IVF's recall@24 against exact search.
(d) real: the same on real descriptors (``--part real --real 10k,100k``): demo-data draws
    of N / 5 images, each extracted five times as augmented copies (a random crop of 80-100 %
    of the side, a mirror, brightness and contrast within 15 %) by the product's own Extractor
    (64-px input; ``--weights random`` or a weights file), both layers; the queries are
    augmented images of another draw. Synthetic vectors can make IVF look perfect (most of their
    energy in a few dimensions); these are what an index of a real set holds, near-duplicates
    included. Extraction is the cost: about 12 minutes per 100k on the 2-core CPU with fp32, so
    1M is measured with ``--engine int8`` (the product's quantised extractor, about 3.5x
    faster; its neighbours agree with fp32's, indexer/int8.py) and ``--cache DIR`` keeps the
    descriptors, so the searches can be timed again on a quiet machine without extracting.
Works with KERAS_BACKEND=jax too (extract part; use it on a GPU machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def time_it(fn: Any, n_images: int, reps: int = 3) -> float:
    """Images/s: the median of ``reps`` timed rounds after a warm-up (trace / compile)."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n_images / float(np.median(times))


@contextmanager
def demo_files(n: int, seed: int) -> Iterator[list[Path]]:
    """The image files of a demo-data draw of ``n``, in a folder removed afterwards."""
    import tempfile

    from modescope.core.demodata import write_demo_data

    with tempfile.TemporaryDirectory() as tmp:
        write_demo_data(Path(tmp) / "d", n=n, seed=seed)
        yield sorted(p for p in (Path(tmp) / "d").rglob("*.*") if p.suffix in (".jpg", ".png"))


def demo_images(n: int) -> list[Any]:
    """Demo-data pictures (the int8 engine must calibrate and be checked on real images)."""
    from PIL import Image

    with demo_files(n, seed=0) as files:
        return [Image.open(p).convert("RGB") for p in files]


def extract_part(sizes: list[int], batch: int) -> None:
    from PIL import Image

    keras = keras_module()
    pictures = demo_images(520)
    ceilings = [gemm_ceiling(keras)]  # measured again between the sizes: the best is the ceiling
    backend = keras.backend.backend()
    measured: list[tuple[int, float, str, float]] = []
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
            measured.append((size, flops, name, time_it(fn, n)))
            ceilings.append(gemm_ceiling(keras))
    ceiling, src = max(ceilings)
    print(f"\n(a) feature extraction, {backend} backend, batch {batch}; images/s the median of 3 "
          f"rounds; fp32 matmul ceiling {ceiling:.0f} GFLOP/s ({src}, 2048x2048: the best of "
          f"{len(ceilings)} measurements between the timings, "
          f"{min(c for c, _ in ceilings):.0f}-{ceiling:.0f})")
    print("| input px | GFLOP/img | way | img/s | GFLOP/s | share of ceiling |")
    print("|---:|---:|---|---:|---:|---:|")
    for size, flops, name, rate in measured:
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

    print(f"\n(b) one query, k=24, {dim}-d descriptor-like unit vectors, "
          f"{faiss.omp_get_max_threads()} threads")
    print("| vectors | index | build s | p50 ms | p95 ms | recall@24 vs exact |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in sizes:
        db = descriptor_like(n, dim, seed=n)
        q = descriptor_like(300, dim, seed=n + 1)
        for kind, build, p50, p95, recall in search_rows(db, q):
            print(f"| {n:,} | {kind} | {build:.1f} | {p50:.2f} | {p95:.2f} | {recall} |")
        del db


def augmented(pictures: list[Any], copies: int, size: int, seed: int) -> np.ndarray:
    """``copies`` augmented versions of each picture at ``size`` px (uint8): a random crop of
    80-100 % of the side, a mirror half of the time, brightness and contrast within 15 %."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = np.empty((len(pictures) * copies, size, size, 3), np.uint8)
    for i, picture in enumerate(pictures):
        w, h = picture.size
        for c in range(copies):
            side = rng.uniform(0.8, 1.0)
            cw, ch = max(1, int(w * side)), max(1, int(h * side))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            img = picture.crop((x0, y0, x0 + cw, y0 + ch)).resize(
                (size, size), Image.Resampling.BILINEAR)
            a = np.asarray(img, np.float32)
            if rng.random() < 0.5:
                a = a[:, ::-1]
            mean = a.mean()
            a = (a - mean) * rng.uniform(0.85, 1.15) + mean * rng.uniform(0.85, 1.15)
            out[i * copies + c] = np.clip(a, 0, 255).astype(np.uint8)
    return out


def real_extractor(weights: str, engine: str, scratch: Path) -> Any:
    """The product's extractor for part real: fp32 (Keras) or int8 (OpenVINO), the latter
    quantised once on augmented demo images of its own draw, as ``index --engine int8``
    calibrates on the first images it indexes (and refuses where its neighbours disagree with
    fp32's)."""
    spec = FeatureSpec(weights=weights, seed=0) if weights == "random" else \
        FeatureSpec(weights=weights)
    if engine == "fp32":
        return Extractor(spec, batch_size=64)
    from modescope.indexer.int8 import CALIBRATION, Int8Extractor

    calibration = augmented(demo_images(CALIBRATION), 1, spec.input_size, seed=7)
    return Int8Extractor(spec, scratch / "int8", spec.input_size, calibration, batch_size=64)


def real_descriptors(n: int, weights: str, seed: int, copies: int = 5, ex: Any = None,
                     cache: Path | None = None) -> dict[str, np.ndarray]:
    """Both layers' descriptors of ``n`` augmented demo images (a draw of n / copies), by
    ``ex`` (``real_extractor``; fp32 when not given). With ``cache`` the vectors are written
    there (one .npy per layer, filled in place: 1M x 1,024 float32 is 4 GB a layer) and a later
    run with the same arguments reads them instead of extracting again."""
    from PIL import Image

    from modescope.core.demodata import MIN_N

    if ex is None:
        ex = real_extractor(weights, "fp32", Path("."))
    spec = ex.spec
    engine = "fp32" if isinstance(ex, Extractor) else "int8"
    tag = f"{n}-{copies}-{seed}-{engine}-{Path(weights).stem}"
    files_of = {layer: cache / f"real-{tag}-{layer}.npy" for layer in spec.pooling} if cache \
        else {}
    if files_of and all(f.is_file() for f in files_of.values()):
        return {layer: np.load(f, mmap_mode="r") for layer, f in files_of.items()}
    out = {layer: (np.lib.format.open_memmap(files_of[layer].with_suffix(".part.npy"), "w+",
                                              np.float32, (n, spec.dim(layer))) if files_of
                   else np.empty((n, spec.dim(layer)), np.float32)) for layer in spec.pooling}
    base = max(MIN_N, -(-n // copies))
    with demo_files(base, seed) as files:
        done = 0
        for start in range(0, len(files), 2_000):  # a few thousand pictures in memory at once
            if done >= n:
                break
            pictures = [Image.open(f).convert("RGB") for f in files[start:start + 2_000]]
            x = augmented(pictures, copies, spec.input_size, seed + start)[:n - done]
            for layer, v in ex(x).items():
                out[layer][done:done + len(x)] = v
            done += len(x)
    if not files_of:
        return out
    for layer, f in files_of.items():
        out[layer].flush()  # type: ignore[union-attr]
        del out[layer]
        f.with_suffix(".part.npy").rename(f)  # whole or not at all
    return {layer: np.load(f, mmap_mode="r") for layer, f in files_of.items()}


def real_part(sizes: list[int], weights: str, engine: str = "fp32",
              cache: Path | None = None) -> None:
    """(d) one 24-neighbour query, exact and IVF, on real descriptors of augmented images."""
    import tempfile

    import faiss

    print(f"\n(d) one query, k=24, real descriptors (demo images, 5 augmented copies each, "
          f"64-px input, weights {weights}, engine {engine}), {faiss.omp_get_max_threads()} "
          f"threads")
    print("| vectors | layer | index | extract s | build s | p50 ms | p95 ms | "
          "recall@24 vs exact |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        ex = real_extractor(weights, engine, Path(scratch))
        for n in sizes:
            t = time.perf_counter()
            db = real_descriptors(n, weights, seed=n, ex=ex, cache=cache)
            queries = real_descriptors(300, weights, seed=n + 1, copies=1, ex=ex, cache=cache)
            extract = time.perf_counter() - t
            for layer in db:
                for kind, build, p50, p95, recall in search_rows(np.asarray(db[layer]),
                                                                 queries[layer]):
                    print(f"| {n:,} | {layer} | {kind} | {extract:.0f} | {build:.1f} | "
                          f"{p50:.2f} | {p95:.2f} | {recall} |", flush=True)
            del db


def search_rows(db: np.ndarray, q: np.ndarray) -> list[tuple[str, float, float, float, str]]:
    """(index, build s, p50 ms, p95 ms, recall@24 against exact) for flat and IVF."""
    from modescope.indexer.index import VectorIndex

    n = len(db)
    ids = np.arange(n, dtype=np.int64)
    exact_ids: list[np.ndarray] = []
    rows = []
    for kind in ("flat", "ivf"):
        t = time.perf_counter()
        vi = VectorIndex.build(ids, db, kind=kind)
        build = time.perf_counter() - t
        nq = len(q) if (kind == "ivf" or n <= 100_000) else 40
        lat, found = [], []
        for i in range(nq):
            t = time.perf_counter()
            _, f = vi.search(q[i:i + 1], 24)
            lat.append((time.perf_counter() - t) * 1e3)
            found.append(f[0])
        if kind == "flat":
            exact_ids, recall = found, "exact"
        else:
            overlap = [len(set(a) & set(b)) / 24
                       for a, b in zip(found[:len(exact_ids)], exact_ids, strict=True)]
            recall = f"{np.mean(overlap):.3f}"
        rows.append((kind, build, float(np.percentile(lat, 50)), float(np.percentile(lat, 95)),
                     recall))
        del vi
    return rows


def parse_count(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="extract,query,real")
    ap.add_argument("--sizes", default="64,128,224")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--vectors", default="10k,100k,1M")
    ap.add_argument("--real", default="10k,100k", help="real-descriptor index sizes (part real)")
    ap.add_argument("--weights", default="random", help="VGG16 weights of part real")
    ap.add_argument("--engine", default="fp32", choices=("fp32", "int8"),
                    help="the extractor of part real (int8: about 3.5x faster on a CPU)")
    ap.add_argument("--cache", type=Path, help="part real: keep the descriptors here and reuse "
                    "them (re-measure the searches without extracting again)")
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
    if "real" in parts:
        if args.cache:
            args.cache.mkdir(parents=True, exist_ok=True)
        real_part([parse_count(s) for s in args.real.split(",")], args.weights, args.engine,
                  args.cache)


if __name__ == "__main__":
    main()
