"""Mode-count benchmark: how many of the demo's known modes a trainer configuration covers at
an equal number of training steps, in the spirit of stacked MNIST (Metz et al. 2017; Srivastava
et al. 2017, VEEGAN; Lin et al. 2018, PacGAN).

    .venv/bin/python bench/modes_bench.py [--modes 16] [--n 3000] [--steps 1500] [--batch 32]
        [--size 32] [--configs dcgan,resize-32] [--seeds 0,1] [--samples 2000]
        [--weights random|FILE] [--work DIR]

1. ``modescope demo-data --modes M`` draws the training set (seed 0) and a second, unseen draw
   (seed 1) of the same modes; the training set is ingested and indexed as a user would.
2. A mode classifier (a small CNN, Keras) is fitted on the training images' true modes, at the
   training size and with the trainer's own resizing; its accuracy on the unseen draw is
   printed: the counts below are only as good as it.
3. Each configuration (``CONFIGS``: options of ``modescope train``) trains for ``--steps``
   steps per seed (whole epochs of the curated set); ``keras-io``, the anchor, is the keras.io
   DCGAN example (bench/anchors/keras_dcgan.py, at the benchmark's size) trained in this
   process on the same curated images for the same number of steps at the same batch.
   ``--samples`` samples of each are classified: a sample counts when the classifier gives it
   probability >= ``CONFIDENT``; a mode is *covered* when it holds at least ``COVERED`` of the
   samples it would hold under the training proportions; KL is KL(generated || training) of the
   confident samples' mode histogram. The same samples become the run's samples in the
   workspace (``generate``, or ``import-samples`` for the anchor), are indexed, and the product's
   own analyses give NDB/K (modes) and coverage on block5 (prdc): one path for every row.
4. A reference row classifies the unseen real draw (and scores it as a run the same way): what
   a generator that matches the data scores.

The table gives medians over the seeds, and each seed's row. Training seconds are wall time of
the whole ``modescope train`` command on this machine (shared and noisy): equal steps are not
equal time, so both are shown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before Keras imports TensorFlow

CONFIDENT = 0.9  # classifier probability for a sample to count towards a mode
COVERED = 0.1  # a mode is covered with >= this share of its expected count of samples
CONFIGS: dict[str, list[str]] = {
    # DCGAN as published (Radford et al.; the PyTorch example): transposed convs, ngf = ndf = 64
    "dcgan": ["--filters", "64", "--upsample", "transpose"],
    # nearest-neighbour upsampling + 3x3 conv (Odena et al. 2016), half the width
    "resize-32": ["--filters", "32", "--upsample", "resize"],
    "resize-64": ["--filters", "64", "--upsample", "resize"],
    "transpose-32": ["--filters", "32", "--upsample", "transpose"],
    "resize-32-lr5e-4": ["--filters", "32", "--upsample", "resize", "--lr-d", "5e-4",
                         "--lr-g", "5e-4"],
}
ANCHOR = "keras-io"  # the keras.io DCGAN example (bench/anchors/keras_dcgan.py)


def modescope(*args: str | Path, json_out: bool = True) -> dict[str, Any]:
    argv = [sys.executable, "-m", "modescope", *map(str, args), *(["--json"] if json_out else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        raise SystemExit(f"modescope {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                         f"{proc.stderr.strip()[-3000:]}")
    return json.loads(proc.stdout) if json_out else {}


def prepare(work: Path, modes: int, n: int, weights: str) -> tuple[Path, Path, Path]:
    """The training draw, the unseen draw and the indexed workspace (reused when present)."""
    train, unseen, ws = work / "train", work / "unseen", work / "workspace"
    if not (train / "truth.json").exists():
        modescope("demo-data", train, "--n", n, "--seed", 0, "--modes", modes)
    if not (unseen / "truth.json").exists():
        modescope("demo-data", unseen, "--n", max(n // 2, 4 * modes), "--seed", 1,
                  "--modes", modes)
    if not (ws / "index").exists():
        modescope("ingest", train, "--workspace", ws, "--size", 64)
        extra = ["--seed", "0"] if weights == "random" else []
        modescope("index", "--workspace", ws, "--weights", weights, *extra)
    return train, unseen, ws


def labelled(folder: Path, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The draw's mode images (noise and copies left out) at ``size`` px, their mode indices
    and the mode names."""
    from modescope.trainer.data import load_images

    truth = json.loads((folder / "truth.json").read_text())
    names = sorted(truth["modes"])
    files = sorted(f for f, e in truth["files"].items()
                   if e["mode"] and not e["duplicate_of"] and not e["near_duplicate_of"])
    labels = np.array([names.index(truth["files"][f]["mode"]) for f in files])
    return load_images([folder / f for f in files], size), labels, names


class ModeClassifier:
    """A small CNN on uint8 images: 3 stride-2 convs, global average pooling, softmax."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: int, seed: int = 0
                 ) -> None:
        import keras

        keras.utils.set_random_seed(seed)
        size = images.shape[1]
        layers = keras.layers
        self.model = keras.Sequential([
            keras.Input((size, size, 3)), layers.Rescaling(1 / 127.5, offset=-1),
            layers.Conv2D(32, 3, 2, "same", activation="relu"),
            layers.Conv2D(64, 3, 2, "same", activation="relu"),
            layers.Conv2D(128, 3, 2, "same", activation="relu"),
            layers.GlobalAveragePooling2D(), layers.Dense(classes, activation="softmax")])
        self.model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
        flipped = images[:, :, ::-1]  # the trainer flips real images; the modes do not change
        x = np.concatenate([images, flipped]).astype(np.float32)
        self.model.fit(x, np.concatenate([labels, labels]), batch_size=64, epochs=12, verbose=0,
                       shuffle=True)

    def proba(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(images.astype(np.float32), batch_size=256,
                                             verbose=0))


def mode_counts(proba: np.ndarray, train_share: np.ndarray) -> dict[str, Any]:
    """Modes covered, KL(generated || training) and the confident share of one set of samples."""
    confident = proba.max(axis=1) >= CONFIDENT
    counts = np.bincount(proba.argmax(axis=1)[confident], minlength=len(train_share))
    total = int(counts.sum())
    expected = total * train_share
    covered = int((counts >= np.maximum(1.0, COVERED * expected)).sum()) if total else 0
    gen = counts / max(total, 1)
    kl = float(np.sum(np.where(gen > 0, gen * np.log(np.maximum(gen, 1e-12) / train_share),
                               0.0))) if total else math.nan
    return {"covered": covered, "kl": kl, "confident": float(confident.mean())}


def epochs_for(steps: int, per_epoch: int) -> int:
    """Whole epochs of the curated set for at least ``steps`` steps (at least one)."""
    return max(1, math.ceil(steps / per_epoch))


def train_config(ws: Path, name: str, options: list[str], seed: int, args: argparse.Namespace,
                 per_epoch: int) -> dict[str, Any]:
    """Train one configuration for about ``args.steps`` steps (whole epochs); its wall seconds
    and steps."""
    run = f"{name}-s{seed}"
    folder = ws / "runs" / run
    epochs = epochs_for(args.steps, per_epoch)
    if not (folder / "progress.json").exists() or json.loads(
            (folder / "progress.json").read_text()).get("status") != "finished":
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        modescope("train", "--workspace", ws, "--run", run, "--size", args.size, "--epochs",
                  epochs, "--batch", args.batch, "--seed", seed, "--eval-every", 0,
                  "--checkpoint-every", epochs, *options)
        (folder / "bench_wall.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    progress = json.loads((folder / "progress.json").read_text())
    return {"run": run, "wall_s": float((folder / "bench_wall.txt").read_text()),
            "steps": progress["step"]}


def train_anchor(ws: Path, seed: int, args: argparse.Namespace,
                 per_epoch: int) -> dict[str, Any]:
    """The keras.io example for as many steps as ``train_config`` gives a run (whole epochs of
    the curated set), then ``--samples`` samples imported as the run's own; reused when
    present."""
    run = f"{ANCHOR}-s{seed}"
    folder = ws / "runs" / run
    done = work_file(ws, run)
    steps = epochs_for(args.steps, per_epoch) * per_epoch  # what train_config's run takes
    if not done.exists():
        import keras
        from PIL import Image

        from bench.anchors import keras_dcgan
        from modescope.core.training import TrainRequest, training_files
        from modescope.core.workspace import Workspace
        from modescope.trainer.data import load_images

        shutil.rmtree(folder, ignore_errors=True)
        keras.utils.set_random_seed(seed)
        files = training_files(Workspace(ws), TrainRequest(run=run, seed=seed))
        anchor = keras_dcgan.build(load_images(files, args.size), args.batch, seed)
        t0 = time.perf_counter()
        for _ in range(steps):
            d_loss, _g = anchor.step()
        float(d_loss)  # wait for the last step
        wall = time.perf_counter() - t0
        out = ws.parent / "anchor-samples" / run
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for i, image in enumerate(anchor.sample(args.samples, seed=7)):
            Image.fromarray(image).save(out / f"{i:05d}.png")
        modescope("import-samples", out, "--run", run, "--workspace", ws)
        done.write_text(json.dumps({"wall_s": round(wall, 1), "steps": steps}))
    return {"run": run, **json.loads(done.read_text())}


def work_file(ws: Path, run: str) -> Path:
    """Where the benchmark notes a finished anchor run (beside the workspace, not in it)."""
    return ws.parent / f"{run}.done.json"


def samples_of(ws: Path, run: str, n: int, size: int) -> np.ndarray:
    """The run's first ``n`` samples (generated now for a trained run) at ``size`` px."""
    from modescope.trainer.data import load_images

    folder = ws / "runs" / run
    if (folder / "config.json").exists():
        modescope("generate", "--workspace", ws, "--run", run, "--n", n, "--seed", 7)
    return load_images(sorted((folder / "generated").glob("*.png"))[:n], size)


def scored(ws: Path, run: str) -> dict[str, float]:
    """NDB/K and block5 coverage of the run's samples by the product's own analyses."""
    from modescope.core.workspace import Workspace
    from modescope.indexer.analyses.registry import calc_analysis

    modescope("index", "--workspace", ws, "--source", f"generated:{run}")
    workspace = Workspace(ws)
    modes = calc_analysis("modes", workspace, run).as_json()
    prdc = calc_analysis("prdc", workspace, run).as_json()
    block5 = next(x for x in prdc["layers"] if x["layer"] == "block5")
    return {"ndb_k": float(modes["ndb_over_k"]), "coverage": float(block5["samples"]["coverage"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", type=int, default=16)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--configs", default=f"dcgan,resize-32,{ANCHOR}")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--work", type=Path, default=Path("/tmp/modescope-modes-bench"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    configs = args.configs.split(",")
    unknown = [c for c in configs if c not in CONFIGS and c != ANCHOR]
    if unknown:
        raise SystemExit(f"--configs: unknown {', '.join(unknown)}; use "
                         f"{', '.join([*CONFIGS, ANCHOR])}")
    seeds = [int(s) for s in args.seeds.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    train, unseen, ws = prepare(args.work, args.modes, args.n, args.weights)

    x, y, names = labelled(train, args.size)
    xu, yu, _ = labelled(unseen, args.size)
    classifier = ModeClassifier(x, y, len(names))
    accuracy = float((classifier.proba(xu).argmax(axis=1) == yu).mean())
    share = np.bincount(y, minlength=len(names)) / len(y)
    print(f"{args.modes} modes, {len(x)} training images; classifier accuracy on "
          f"{len(xu)} unseen images: {accuracy:.3f}", flush=True)

    counts = modescope("status", "--workspace", ws)["counts"]
    per_epoch = max(1, (counts["ok"] - counts.get("held_out", 0)) // args.batch)

    if not (ws / "runs" / "unseen-real").exists():
        modescope("import-samples", unseen, "--run", "unseen-real", "--workspace", ws)
    reference = mode_counts(classifier.proba(xu), share)
    results: list[dict[str, Any]] = [{"config": "unseen real images", "seed": None,
                                      **reference, **scored(ws, "unseen-real")}]
    for name in configs:
        for seed in seeds:
            trained = train_anchor(ws, seed, args, per_epoch) if name == ANCHOR else \
                train_config(ws, name, CONFIGS[name], seed, args, per_epoch)
            samples = samples_of(ws, trained["run"], args.samples, args.size)
            results.append({
                "config": name, "seed": seed, **mode_counts(classifier.proba(samples), share),
                "steps": trained["steps"], "wall_s": trained["wall_s"],
                **scored(ws, trained["run"])})
            print(json.dumps(results[-1]), flush=True)

    print(f"\nmode-count benchmark: {args.modes} known modes, {args.steps} steps at batch "
          f"{args.batch}, {args.size} px, {args.samples} samples, weights {args.weights}")
    print(f"classifier accuracy on unseen images {accuracy:.3f}; a sample counts at p >= "
          f"{CONFIDENT}, a mode is covered at >= {COVERED:.0%} of its expected samples")
    head = (f"{'config':<20} {'seeds':>5} {'modes':>7} {'KL':>6} {'confident':>9} "
            f"{'NDB/K':>6} {'coverage':>8} {'steps':>6} {'train s':>8}")
    print(head)
    print("-" * len(head))
    for name in ["unseen real images", *configs]:
        rows = [r for r in results if r["config"] == name]

        def med(key: str, rows: list[dict[str, Any]] = rows) -> float:
            values = [r[key] for r in rows if key in r and not math.isnan(r[key])]
            return statistics.median(values) if values else math.nan

        print(f"{name:<20} {len(rows):>5} {med('covered'):>4.1f}/{args.modes:<2} "
              f"{med('kl'):>6.3f} {med('confident'):>9.1%} {med('ndb_k'):>6.3f} "
              f"{med('coverage'):>8.3f} {med('steps'):>6.0f} {med('wall_s'):>8.0f}")
    if args.json:
        args.json.write_text(json.dumps({"accuracy": accuracy, "args": {
            k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))


if __name__ == "__main__":
    main()
