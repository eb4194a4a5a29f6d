"""Training throughput of the trainer's own step (images/s at 64 px), next to this machine's
arithmetic ceiling and two reference implementations kept in this repository
(bench/anchors/), all measured in the same run.

CPU (default; TensorFlow backend):
    .venv/bin/python bench/train_bench.py [--batches 64,128] [--steps 3] [--seconds 10]
                                          [--rounds 5]
times, per batch and round: our fused TF step fed by our tf.data pipeline *inside* the timed
loop, as training runs it (the full model, losses and default options of issue 5:
non-saturating loss, one-sided label smoothing, random flips in the input pipeline); the
keras.io DCGAN example (bench/anchors/keras_dcgan.py: its models and compiled train step,
fed by a tf.data pipeline inside the timed loop, one ``fit`` step per call); and, where torch
is installed, the PyTorch examples DCGAN (bench/anchors/torch_dcgan.py, on the CPU). Each
measurement runs whole steps until it has at least ``--steps`` of them and ``--seconds`` of
time. The ceiling = the best of the fp32 GEMM measurements taken before each round and after
the last / FLOPs per image per training step (counted from the layer shapes: ``step_flops``,
derived in docs/training.md). Every round is printed; the table gives medians.

GPU (``--gpu``): our JAX step (KERAS_BACKEND=jax, fp32 and bf16) and the PyTorch example
(fp32, and bf16 autocast with channels-last) in one run; ``--smoke`` runs any path tiny on
the CPU only to prove the code (its numbers mean nothing).
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

from bench.anchors import keras_dcgan, torch_dcgan  # noqa: E402
from bench.anchors.flops import layer_flops  # noqa: E402

TORCH_SKIPPED = "torch not installed: PyTorch anchor skipped"


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


def timed(step: Step, feed: Iterator[Any], batch: int, steps: int, seconds: float) -> float:
    """img/s of whole steps, at least ``steps`` of them and ``seconds`` of time, each taking
    its batch from ``feed`` inside the timed loop; the loss is read once at the end (as the
    loop reads it about once a second), which waits for every step."""
    t = time.perf_counter()
    n = 0
    while n < steps or time.perf_counter() - t < seconds:
        out = step(next(feed), n)
        n += 1
    float(out[0])
    return batch * n / (time.perf_counter() - t)


def warm_up(step: Step, feed: Iterator[Any], steps: int = 2) -> None:
    """Untimed steps before the first round: tracing, compiling, first allocations."""
    for i in range(steps):
        out = step(next(feed), i)
    float(out[0])


def random_images(batch: int, epoch_steps: int = 8) -> Any:
    """``epoch_steps`` batches of random 64 x 64 RGB uint8 images (the same for every runner:
    throughput does not depend on what the pixels show)."""
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (batch * epoch_steps, 64, 64, 3),
                                             dtype=np.uint8)


def ours_tf(images: Any, batch: int) -> tuple[Step, Iterator[Any]]:
    """Our TF step with the issue's default options, and an endless feed of its batches: our
    tf.data pipeline, distributed and rebuilt per epoch as trainer/stages.py does it."""
    import tensorflow as tf

    from modescope.core.training import TrainConfig
    from modescope.trainer.data import tf_dataset
    from modescope.trainer.stages import Models

    strategy = tf.distribute.get_strategy()
    cfg = TrainConfig(size=64, batch_size=batch)
    m = Models(cfg, 0, strategy, batch)
    step = m.make_step(cfg, strategy, batch)

    def feed() -> Iterator[Any]:
        epoch = 0
        while True:
            yield from step.distribute(lambda parts, first, count: tf_dataset(
                images, batch, cfg.seed, epoch, cfg.flip, 0, parts, first, count))
            epoch += 1

    return lambda real, i: step(real, i, 0.0), feed()


def keras_anchor(images: Any, batch: int) -> tuple[Step, Iterator[Any]]:
    """The keras.io example: each call is one ``fit`` step, which reads its batch from the
    example's tf.data iterator itself (so the feed hands it nothing)."""
    import itertools

    anchor = keras_dcgan.build(images, batch)
    return lambda _, i: anchor.step(), itertools.repeat(None)


def torch_anchor(images: Any, batch: int, device: str | None = None, bf16: bool = False,
                 channels_last: bool = False) -> tuple[Step, Iterator[Any]]:
    """The PyTorch example, fed uint8 batches from memory inside the timed loop."""
    anchor = torch_dcgan.build(device, bf16=bf16, channels_last=channels_last)
    return lambda real, i: anchor.step(real), torch_dcgan.batches(images, batch)


RUNNERS = ("ours", "keras", "torch")


def cpu_rounds(args: argparse.Namespace, batches: list[int]) -> dict[str, Any]:
    """Interleaved rounds: a GEMM measurement, then per batch our step and each anchor, and
    a last GEMM after the last round (the CPUs are shared: their speed drifts)."""
    have_torch = torch_dcgan.torch_available()
    runners: dict[int, dict[str, tuple[Step, Iterator[Any]]]] = {}
    for b in batches:
        images = random_images(b)
        runners[b] = {"ours": ours_tf(images, b), "keras": keras_anchor(images, b)}
        if have_torch:
            runners[b]["torch"] = torch_anchor(images, b, "cpu")
        for step, feed in runners[b].values():
            warm_up(step, feed, args.warm)
    gemm: list[float] = []
    rounds: list[dict[str, Any]] = []
    loads: list[float] = []
    for r in range(args.rounds):
        gemm.append(matmul_gflops(args.gemm_n))
        for b, mine in runners.items():
            row: dict[str, Any] = {"round": r + 1, "batch": b, "torch": None}
            for name, (step, feed) in mine.items():
                row[name] = timed(step, feed, b, args.steps, args.seconds)
            rounds.append(row)
            loads.append(os.getloadavg()[0])
    gemm.append(matmul_gflops(args.gemm_n))
    return {"gemm": gemm, "rounds": rounds, "loads": loads, "torch": have_torch,
            "versions": versions(have_torch)}


def versions(have_torch: bool) -> dict[str, str]:
    """The libraries whose kernels the rounds timed."""
    import keras
    import numpy as np
    import tensorflow as tf

    out = {"python": platform.python_version(), "tensorflow": tf.__version__,
           "keras": keras.__version__, "numpy": np.__version__}
    if have_torch:
        import torch

        out["torch"] = torch.__version__
    return out


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def _rate(a: float | None) -> str:
    return f"{a:.2f}" if a else "n/a"


def print_cpu(args: argparse.Namespace, batches: list[int], res: dict[str, Any]) -> None:
    flops = res["flops"]
    rate = max(res["gemm"])
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs; 1-min load during the run "
          f"{min(res['loads']):.2f}..{max(res['loads']):.2f}; {args.rounds} interleaved "
          f"rounds, each measurement >= {args.steps} steps and >= {args.seconds:g} s, input "
          f"pipelines inside the timed loop")
    print(f"# FLOPs per image per step at 64 px: ours {flops['ours'] / 1e9:.3f} G (8D + 3G "
          "less the first layers' input gradients), keras.io example "
          f"{flops['keras'] / 1e9:.3f} G (8D + 4G - ...; its G is larger), PyTorch example "
          f"{flops['torch'] / 1e9:.3f} G (9D + 3G - ...)")
    print(f"# GEMM fp32 ({args.gemm_n}^2) GFLOP/s before each round and after the last: "
          + ", ".join(f"{g:.0f}" for g in res["gemm"]))
    print(f"# ceiling (ours) = best GEMM {rate:.1f} GFLOP/s / {flops['ours'] / 1e9:.3f} GFLOP "
          f"= {rate * 1e9 / flops['ours']:.1f} img/s; '% GEMM' = img/s x own FLOPs / best GEMM")
    print(f"# versions: {json.dumps(res['versions'])}")
    if not res["torch"]:
        print(f"# {TORCH_SKIPPED}")
    print("\nEvery round (img/s)")
    print("| round | batch | ours | keras.io | PyTorch | ours / keras.io | ours / PyTorch |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in res["rounds"]:
        print(f"| {r['round']} | {r['batch']} | {r['ours']:.2f} | {r['keras']:.2f} | "
              f"{_rate(r['torch'])} | {_ratio(r['ours'], r['keras'])} | "
              f"{_ratio(r['ours'], r['torch'])} |")
    print(f"\nMedian of the {args.rounds} rounds (img/s; % GEMM; ratio = median of the "
          "rounds' ratios)")
    print("| batch | ours | % GEMM | keras.io example | % GEMM | ours / keras.io | "
          "PyTorch example | % GEMM | ours / PyTorch |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for b in batches:
        mine = [r for r in res["rounds"] if r["batch"] == b]
        cols = []
        for name in RUNNERS:
            if not all(r[name] for r in mine):
                cols += ["n/a"] * (2 if name == "ours" else 3)
                continue
            med = statistics.median(r[name] for r in mine)
            cols += [f"{med:.2f}", f"{100 * med * flops[name] / (rate * 1e9):.0f} %"]
            if name != "ours":
                cols.append(f"{statistics.median(r['ours'] / r[name] for r in mine):.2f}x")
        print(f"| {b} | " + " | ".join(cols) + " |")


def cpu_main(args: argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    batches = [int(b) for b in args.batches.split(",")]
    res = cpu_rounds(args, batches)
    res["flops"] = {"ours": step_flops()["step"], "keras": keras_dcgan.step_flops()["step"],
                    "torch": torch_dcgan.step_flops()["step"]}
    if args.json:
        print(json.dumps({"step_flops": step_flops(), **res}))
        return
    print_cpu(args, batches, res)


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


def gpu_torch(batches: list[int], steps: int, warm: int, device: str) -> dict[str, float]:
    """The PyTorch example per batch: fp32, and bf16 autocast with channels-last."""
    res = {}
    for b in batches:
        images = random_images(b)
        for key, bf16 in (("float32", False), ("bf16_channels_last", True)):
            step, feed = torch_anchor(images, b, device, bf16=bf16, channels_last=bf16)
            warm_up(step, feed, warm)
            res[f"b{b}_{key}"] = round(timed(step, feed, b, steps, 0.0), 1)
            print(f"# PyTorch example, batch {b}, {key}: {res[f'b{b}_{key}']} img/s",
                  flush=True)
    return res


def gpu_main(args: argparse.Namespace) -> None:
    batches = args.batches if args.batches != DEFAULT_BATCHES else "128,1024"
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
    if not torch_dcgan.torch_available():
        print(f"# {TORCH_SKIPPED}")
        return
    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print("# PyTorch anchor not run: no CUDA GPU here (--smoke runs it on the CPU)")
        return
    device = "cuda" if torch.cuda.is_available() else "cpu"
    anchor = gpu_torch([int(b) for b in batches.split(",")], int(steps), int(warm), device)
    print(f"# PyTorch example ({torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}):"
          f" {json.dumps(anchor)}")
    print("| batch | ours fp32 | PyTorch fp32 | ours / PyTorch | ours bf16 | "
          "PyTorch bf16 channels-last | ours / PyTorch |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for b in batches.split(","):
        o32, o16 = ours["ours_jax"][f"b{b}_float32"], ours["ours_jax"][f"b{b}_mixed_bfloat16"]
        t32, t16 = anchor[f"b{b}_float32"], anchor[f"b{b}_bf16_channels_last"]
        print(f"| {b} | {o32} | {t32} | {_ratio(o32, t32)} | {o16} | {t16} | "
              f"{_ratio(o16, t16)} |")


DEFAULT_BATCHES = "64,128"


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--batches", default=DEFAULT_BATCHES)
    p.add_argument("--steps", type=int, default=3, help="CPU: least steps per measurement")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="CPU: least seconds per measurement")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warm", type=int, default=2, help="CPU: untimed steps before round 1")
    p.add_argument("--gemm-n", type=int, default=2048, help="CPU: GEMM size (n x n)")
    p.add_argument("--json", action="store_true", help="CPU: every measurement as JSON")
    p.add_argument("--gpu", action="store_true", help="our JAX step and the PyTorch anchor")
    p.add_argument("--smoke", action="store_true",
                   help="tiny and on the CPU, only to prove the code path runs")
    args = p.parse_args()
    if args.smoke and not args.gpu:
        args.batches, args.rounds, args.steps, args.seconds = "2", 1, 1, 0.0
        args.warm, args.gemm_n = 1, 256
    gpu_main(args) if args.gpu else cpu_main(args)


if __name__ == "__main__":
    main()
