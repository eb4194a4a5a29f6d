"""Training throughput of the trainer's own step (images/s at 64 px), next to this machine's
arithmetic ceiling and the reference implementations, all measured in the same run.

CPU (default; TensorFlow backend):
    .venv/bin/python bench/train_bench.py [--batches 64,128] [--steps 8]
prints, per batch: our fused TF step (the full model, losses and default options of issue 5:
non-saturating loss, one-sided label smoothing, random flips in the input pipeline), the
keras.io-style anchor (.anchors/dcgan_keras_cpu_anchor.py, run in this process), and the ceiling
= measured fp32 GEMM rate / FLOPs per image per training step (counted from the layer shapes).

GPU (``--gpu``): our JAX step (KERAS_BACKEND=jax, fp32 and bf16) and the PyTorch example's
architecture (.anchors/dcgan_torch_anchor.py) in one run; ``--smoke`` runs it on the CPU with a
few small steps only to prove the code path (its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ANCHORS = ROOT / ".anchors"


def layer_flops(model) -> float:  # noqa: ANN001
    """Forward multiply-adds x 2 per image of Dense, Conv2D and Conv2DTranspose layers."""
    from keras import layers

    total = 0.0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):  # every input pixel x kernel x Cout
            _, h, w, cin = layer.input.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * h * w * cin * k * layer.filters
        elif isinstance(layer, layers.Conv2D):  # every output pixel x kernel x Cin
            _, h, w, cout = layer.output.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * h * w * cout * k * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total


def step_flops(size: int = 64) -> dict[str, float]:
    """FLOPs per real image per training step: D forward+backward on real and fake (3x forward
    each), G forward, the G update's D forward + backward to its input and G backward (2x G
    forward for input and weight gradients). Backward = 2x forward."""
    from modescope.trainer.models import build_discriminator, build_generator

    g, d = layer_flops(build_generator(size)), layer_flops(build_discriminator(size))
    return {"g_forward": g, "d_forward": d,
            "step": 3 * d + 3 * d + g + 3 * d + 2 * g}


def matmul_gflops(n: int = 2048, reps: int = 10) -> dict[str, float]:
    import numpy as np
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.matmul(a, b).numpy()
    t = time.perf_counter()
    for _ in range(reps):
        c = tf.matmul(a, b)
    c.numpy()
    tf_rate = 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
    x = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    x @ x
    t = time.perf_counter()
    for _ in range(reps):
        x @ x
    np_rate = 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
    return {"tf_matmul": round(tf_rate, 1), "numpy_gemm": round(np_rate, 1)}


def timed(step, batches: list, steps: int, warm: int = 3) -> float:  # noqa: ANN001
    """img/s of ``steps`` calls after ``warm`` ones; the loss is read once at the end (as the
    loop reads it about once a second), which waits for every step."""
    for i in range(warm):
        out = step(batches[i % len(batches)], i)
    float(out[0])
    t = time.perf_counter()
    for i in range(steps):
        out = step(batches[i % len(batches)], warm + i)
    float(out[0])
    return len(batches[0]) * steps / (time.perf_counter() - t)


def ours_tf(batch: int):  # noqa: ANN201
    """Our TF step with the issue's default options, fed by our tf.data pipeline."""
    import numpy as np
    import tensorflow as tf

    from modescope.core.training import TrainConfig
    from modescope.trainer.data import tf_dataset
    from modescope.trainer.stages import Models

    strategy = tf.distribute.get_strategy()
    cfg = TrainConfig(size=64, batch_size=batch)
    m = Models(cfg, 0, strategy, batch)
    step = m.make_step(cfg, strategy, batch)
    images = np.random.default_rng(0).integers(0, 256, (batch * 4, 64, 64, 3), dtype=np.uint8)
    batches = list(tf_dataset(images, batch, 0, 0, True))
    return lambda real, i: step(real, i, 0.0), batches


def anchor_tf(batch: int):  # noqa: ANN201
    """The anchor's own models and tf.function step (its file up to its timing code), timed
    here the way it times itself (random real batch, fresh z inside the step)."""
    import tensorflow as tf

    path = ANCHORS / "dcgan_keras_cpu_anchor.py"
    scope: dict = {"__name__": "anchor"}
    exec(compile(path.read_text().split("res = {}")[0], str(path), "exec"), scope)
    real = tf.random.uniform((batch, 64, 64, 3), -1, 1)
    return lambda r, i: scope["step"](r), [real]


def cpu_main(args: argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    batches = [int(b) for b in args.batches.split(",")]
    flops = step_flops()
    have_anchor = (ANCHORS / "dcgan_keras_cpu_anchor.py").exists()
    runners = {b: (ours_tf(b), anchor_tf(b) if have_anchor else None) for b in batches}
    best: dict = {}
    gemm_best = {"tf_matmul": 0.0, "numpy_gemm": 0.0}
    loads: list[float] = []
    raw: list[tuple[int, float, float, float]] = []
    for _ in range(args.rounds):  # interleaved rounds, best of each: the CPUs are shared
        for b, (ours, anchor) in runners.items():
            gemm_now = matmul_gflops()
            for k, v in gemm_now.items():
                gemm_best[k] = max(gemm_best[k], v)
            ours_now = timed(*ours, args.steps)
            anchor_now = timed(*anchor, args.steps) if anchor else float("nan")
            best[("ours", b)] = max(best.get(("ours", b), 0.0), ours_now)
            if anchor:
                best[("anchor", b)] = max(best.get(("anchor", b), 0.0), anchor_now)
            loads.append(os.getloadavg()[0])
            raw.append((b, max(gemm_now.values()), ours_now, anchor_now))
    rate = max(gemm_best.values())
    ceiling = rate * 1e9 / flops["step"]
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs; 1-min load during the run "
          f"{min(loads):.2f}..{max(loads):.2f}; best of {args.rounds} interleaved rounds of "
          f"{args.steps} steps")
    print(f"# GEMM fp32 (2048^2): tf.matmul {gemm_best['tf_matmul']} GFLOP/s, numpy "
          f"{gemm_best['numpy_gemm']} GFLOP/s; FLOPs per image per step at 64 px: "
          f"{flops['step'] / 1e9:.3f} G (G fwd {flops['g_forward'] / 1e9:.3f} G, "
          f"D fwd {flops['d_forward'] / 1e9:.3f} G)")
    print(f"# ceiling = {rate:.1f} GFLOP/s / {flops['step'] / 1e9:.3f} GFLOP = "
          f"{ceiling:.1f} img/s")
    print("\nEach round: the GEMM rate measured just before our step and the anchor")
    print("| batch | GEMM GFLOP/s | ceiling img/s | ours img/s | ours % of ceiling | "
          "anchor img/s | ours / anchor |")
    print("|---|---|---|---|---|---|---|")
    for b, gemm, ours_now, anchor_now in raw:
        ceil_now = gemm * 1e9 / flops["step"]
        print(f"| {b} | {gemm:.0f} | {ceil_now:.1f} | {ours_now:.1f} | "
              f"{100 * ours_now / ceil_now:.0f} % | {anchor_now:.1f} | "
              f"{ours_now / anchor_now:.2f}x |")
    print("\nBest of the rounds, each column on its own")
    print("| batch | ours img/s | % of ceiling | keras.io anchor img/s | ours / anchor |")
    print("|---|---|---|---|---|")
    for b in batches:
        ips, a = best[("ours", b)], best.get(("anchor", b))
        anchor_cols = f"{a:.1f} | {ips / a:.2f}x" if a else "n/a | n/a"
        print(f"| {b} | {ips:.1f} | {100 * ips / ceiling:.0f} % | {anchor_cols} |")


JAX_PROBE = """
import json, os, sys, time
os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, sys.argv[1])
import jax, keras, numpy as np
from modescope.core.training import TrainConfig
from modescope.trainer.stages import Models
res = {}
for batch in map(int, sys.argv[2].split(",")):
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_dtype_policy(policy)
        cfg = TrainConfig(size=64, batch_size=batch, mixed_precision=policy != "float32")
        m = Models(cfg, 0, None, batch)
        step = m.make_step(cfg, None, batch)
        real = jax.device_put(np.random.default_rng(0).uniform(-1, 1, (batch, 64, 64, 3))
                              .astype(np.float32))
        steps, warm = int(sys.argv[3]), int(sys.argv[4])
        for i in range(warm):
            ld, lg = step(real, i, 0.0)
        ld.block_until_ready(); t = time.perf_counter()
        for i in range(steps):
            ld, lg = step(real, warm + i, 0.0)
        ld.block_until_ready()
        res[f"b{batch}_{policy}"] = round(batch * steps / (time.perf_counter() - t), 1)
        print(batch, policy, res[f"b{batch}_{policy}"], float(ld), float(lg), flush=True)
print(json.dumps({"ours_jax": res, "device": str(jax.devices()[0])}))
"""


def gpu_main(args: argparse.Namespace) -> None:
    batches = args.batches if args.batches != "64,128" else "128,1024"
    steps, warm = ("2", "1") if args.smoke else ("50", "10")
    if args.smoke:
        batches = "8"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, "-c", JAX_PROBE, str(ROOT), batches, steps, warm],
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"our JAX step failed:\n{proc.stderr[-3000:]}")
    ours = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"# ours (JAX step, {ours['device']}): {json.dumps(ours['ours_jax'])}")
    try:
        import torch
    except ImportError:
        print("# PyTorch anchor not run: torch is not installed here")
        return
    if not torch.cuda.is_available():
        print("# PyTorch anchor not run: it needs a CUDA GPU (--smoke ran ours only)")
        return
    proc = subprocess.run([sys.executable, str(ANCHORS / "dcgan_torch_anchor.py")],
                          capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout else proc.stderr[-2000:]
    print(f"# PyTorch anchor: {tail}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", default="64,128")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--gpu", action="store_true", help="our JAX step and the PyTorch anchor")
    p.add_argument("--smoke", action="store_true", help="with --gpu: tiny, on any device")
    args = p.parse_args()
    gpu_main(args) if args.gpu else cpu_main(args)


if __name__ == "__main__":
    main()
