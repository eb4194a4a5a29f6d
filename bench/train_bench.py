"""Training throughput of the trainer's own step (images/s at 64 px), next to this machine's
arithmetic ceiling and the reference implementations, all measured in the same run.

CPU (default; TensorFlow backend):
    .venv/bin/python bench/train_bench.py [--batches 64,128] [--steps 8] [--rounds 5]
times, per batch and round: our fused TF step fed by our tf.data pipeline *inside* the timed
loop, as training runs it (the full model, losses and default options of issue 5:
non-saturating loss, one-sided label smoothing, random flips in the input pipeline), and the
keras.io-style anchor (.anchors/dcgan_keras_cpu_anchor.py, run in this process, timed the way it
times itself). The ceiling = the best of the fp32 GEMM measurements taken before, between and
after the rounds / FLOPs per image per training step (counted from the layer shapes:
``step_flops``, derived in docs/training.md). Every round is printed; the table gives medians.

GPU (``--gpu``): our JAX step (KERAS_BACKEND=jax, fp32 and bf16) and the PyTorch example's
architecture (.anchors/dcgan_torch_anchor.py) in one run; ``--smoke`` runs it on the CPU with a
few small steps only to prove the code path (its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ANCHORS = ROOT / ".anchors"


def layer_flops(model: Any) -> list[float]:
    """Forward FLOPs (2 x multiply-adds) per image of each Dense, Conv2D and Conv2DTranspose
    layer, in order; other layers (BN, activations, the loss) are not counted."""
    from keras import layers

    out = []
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):  # every input pixel x kernel x Cout
            _, h, w, cin = layer.input.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            out.append(2.0 * h * w * cin * k * layer.filters)
        elif isinstance(layer, layers.Conv2D):  # every output pixel x kernel x Cin
            _, h, w, cout = layer.output.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            out.append(2.0 * h * w * cout * k * layer.input.shape[-1])
        elif isinstance(layer, layers.Dense):
            out.append(2.0 * layer.input.shape[-1] * layer.units)
    return out


def step_flops(size: int = 64) -> dict[str, float]:
    """FLOPs per real image of one training step (d_steps = 1), as trainer/step_tf.py and
    step_jax.py compute it; docs/training.md derives each term. A layer's backward pass is two
    products the size of its forward one: the gradient for its weights and the gradient for
    its input; a pass computes only the gradients something asks for.

    - D update, on the real batch and on the fake batch (G's output, stop-gradient): D forward,
      D weight gradients, D input gradients (to reach the lower layers' weights; not the
      image's, which nothing needs): 2 x (3D - d1);
    - G forward, once (the D update reuses its batch);
    - G update: D forward on the fakes again, D input gradients only (G's tape watches only
      G's variables, so D's weight gradients are not computed), G weight gradients and G input
      gradients (not z's): 2D + 2G - g1.

    Total 8D + 3G - 2 d1 - g1, where d1 and g1 are the first layers' forward FLOPs."""
    from modescope.trainer.models import build_discriminator, build_generator

    g, d = layer_flops(build_generator(size)), layer_flops(build_discriminator(size))
    big_g, big_d, g1, d1 = sum(g), sum(d), g[0], d[0]
    d_update = 2 * (3 * big_d - d1)
    g_update = 2 * big_d + 2 * big_g - g1
    return {"g_forward": big_g, "d_forward": big_d, "g_first": g1, "d_first": d1,
            "d_update": d_update, "g_update": big_g + g_update,
            "step": d_update + big_g + g_update, "rule_8d_3g": 8 * big_d + 3 * big_g}


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
    """The best fp32 GEMM rate of this moment, GFLOP/s: TensorFlow's and numpy's n x n."""
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
    return max(tf_rate, np_rate)


Step = Callable[[Any, int], Any]


def timed(step: Step, feed: Iterator[Any], batch: int, steps: int, warm: int = 3) -> float:
    """img/s of ``steps`` calls after ``warm`` ones, each taking its batch from ``feed`` inside
    the timed loop; the loss is read once at the end (as the loop reads it about once a
    second), which waits for every step."""
    for i in range(warm):
        out = step(next(feed), i)
    float(out[0])
    t = time.perf_counter()
    for i in range(steps):
        out = step(next(feed), warm + i)
    float(out[0])
    return batch * steps / (time.perf_counter() - t)


def ours_tf(batch: int, epoch_steps: int = 8) -> tuple[Step, Iterator[Any]]:
    """Our TF step with the issue's default options, and an endless feed of its batches: our
    tf.data pipeline, distributed and rebuilt per epoch as trainer/stages.py does it, over
    ``epoch_steps`` batches of random uint8 images."""
    import numpy as np
    import tensorflow as tf

    from modescope.core.training import TrainConfig
    from modescope.trainer.data import tf_dataset
    from modescope.trainer.stages import Models

    strategy = tf.distribute.get_strategy()
    cfg = TrainConfig(size=64, batch_size=batch)
    m = Models(cfg, 0, strategy, batch)
    step = m.make_step(cfg, strategy, batch)
    images = np.random.default_rng(0).integers(0, 256, (batch * epoch_steps, 64, 64, 3),
                                               dtype=np.uint8)

    def feed() -> Iterator[Any]:
        epoch = 0
        while True:
            yield from step.distribute(lambda parts, first, count: tf_dataset(
                images, batch, cfg.seed, epoch, cfg.flip, 0, parts, first, count))
            epoch += 1

    return lambda real, i: step(real, i, 0.0), feed()


def anchor_tf(batch: int) -> tuple[Step, Iterator[Any]]:
    """The anchor's own models and tf.function step (its file up to its timing code), timed
    here the way it times itself (one random real batch, fresh z inside the step)."""
    import itertools

    import tensorflow as tf

    path = ANCHORS / "dcgan_keras_cpu_anchor.py"
    scope: dict[str, Any] = {"__name__": "anchor"}
    exec(compile(path.read_text().split("res = {}")[0], str(path), "exec"), scope)
    real = tf.random.uniform((batch, 64, 64, 3), -1, 1)
    return lambda r, i: scope["step"](r), itertools.repeat(real)


def cpu_rounds(args: argparse.Namespace, batches: list[int]) -> dict[str, Any]:
    """Interleaved rounds: a GEMM measurement, then per batch our step and the anchor, and
    a last GEMM after the last round (the CPUs are shared: their speed drifts)."""
    have_anchor = (ANCHORS / "dcgan_keras_cpu_anchor.py").exists()
    runners = {b: (ours_tf(b), anchor_tf(b) if have_anchor else None) for b in batches}
    gemm: list[float] = []
    rounds: list[dict[str, Any]] = []
    loads: list[float] = []
    for r in range(args.rounds):
        gemm.append(matmul_gflops())
        for b, (ours, anchor) in runners.items():
            rounds.append({"round": r + 1, "batch": b, "ours": timed(*ours, b, args.steps),
                           "anchor": timed(*anchor, b, args.steps) if anchor else None})
            loads.append(os.getloadavg()[0])
    gemm.append(matmul_gflops())
    return {"gemm": gemm, "rounds": rounds, "loads": loads}


def cpu_main(args: argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    batches = [int(b) for b in args.batches.split(",")]
    flops = step_flops()
    res = cpu_rounds(args, batches)
    rate = max(res["gemm"])
    ceiling = rate * 1e9 / flops["step"]
    if args.json:
        print(json.dumps({"flops": flops, "ceiling_img_s": ceiling, **res}))
        return
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs; 1-min load during the run "
          f"{min(res['loads']):.2f}..{max(res['loads']):.2f}; {args.rounds} interleaved "
          f"rounds of {args.steps} steps, the tf.data pipeline inside the timed loop")
    print(f"# FLOPs per image per step at 64 px: {flops['step'] / 1e9:.3f} G = 8D + 3G "
          f"({flops['rule_8d_3g'] / 1e9:.3f} G) less the first layers' input gradients; "
          f"D forward {flops['d_forward'] / 1e9:.3f} G, G forward "
          f"{flops['g_forward'] / 1e9:.3f} G")
    print("# GEMM fp32 (2048^2) GFLOP/s before each round and after the last: "
          + ", ".join(f"{g:.0f}" for g in res["gemm"]))
    print(f"# ceiling = best GEMM {rate:.1f} GFLOP/s / {flops['step'] / 1e9:.3f} GFLOP = "
          f"{ceiling:.1f} img/s")
    print("\nEvery round")
    print("| round | batch | ours img/s | % of ceiling | anchor img/s | ours / anchor |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in res["rounds"]:
        a = r["anchor"]
        print(f"| {r['round']} | {r['batch']} | {r['ours']:.1f} | "
              f"{100 * r['ours'] / ceiling:.0f} % | "
              + (f"{a:.1f} | {r['ours'] / a:.2f}x |" if a else "n/a | n/a |"))
    print(f"\nMedian of the {args.rounds} rounds")
    print("| batch | ours img/s | % of ceiling | keras.io anchor img/s | ours / anchor |")
    print("|---:|---:|---:|---:|---:|")
    for b in batches:
        mine = [r for r in res["rounds"] if r["batch"] == b]
        ours = statistics.median(r["ours"] for r in mine)
        cols = "n/a | n/a"
        if all(r["anchor"] for r in mine):
            anchor = statistics.median(r["anchor"] for r in mine)
            ratio = statistics.median(r["ours"] / r["anchor"] for r in mine)
            cols = f"{anchor:.1f} | {ratio:.2f}x"
        print(f"| {b} | {ours:.1f} | {100 * ours / ceiling:.0f} % | {cols} |")


JAX_PROBE = """
import json, os, sys, time
os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, sys.argv[1])
import jax, keras, numpy as np
from modescope.core.training import TrainConfig
from modescope.trainer.data import numpy_batches
from modescope.trainer.stages import Models
res = {}
for batch in map(int, sys.argv[2].split(",")):
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_dtype_policy(policy)
        cfg = TrainConfig(size=64, batch_size=batch, mixed_precision=policy != "float32")
        m = Models(cfg, 0, None, batch)
        step = m.make_step(cfg, None, batch)
        images = np.random.default_rng(0).integers(0, 256, (batch * 8, 64, 64, 3), np.uint8)
        def feed():  # the loop's numpy pipeline, epoch after epoch, inside the timed loop
            epoch = 0
            while True:
                yield from numpy_batches(images, batch, cfg.seed, epoch, cfg.flip)
                epoch += 1
        batches = feed()
        steps, warm = int(sys.argv[3]), int(sys.argv[4])
        for i in range(warm):
            ld, lg = step(next(batches), i, 0.0)
        ld.block_until_ready(); t = time.perf_counter()
        for i in range(steps):
            ld, lg = step(next(batches), warm + i, 0.0)
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
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--batches", default="64,128")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", action="store_true", help="CPU: every measurement as JSON")
    p.add_argument("--gpu", action="store_true", help="our JAX step and the PyTorch anchor")
    p.add_argument("--smoke", action="store_true", help="with --gpu: tiny, on any device")
    args = p.parse_args()
    gpu_main(args) if args.gpu else cpu_main(args)


if __name__ == "__main__":
    main()
