"""Progressive growing 32 -> 64 px: a 64-px generator at the end, the transition logged, the
shared layers' weights carried over, and --resume in the middle of the 64-px stage."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import modescope_cmd, run_cli


def generator_at(run: Path, checkpoint: str) -> object:
    from modescope.core.training import TrainConfig
    from modescope.trainer.models import build_generator

    config = TrainConfig.loads((run / "config.json").read_text())
    state = json.loads((run / "checkpoints" / checkpoint / "state.json").read_text())
    g = build_generator(state["size"], config.latent_dim, config.gen_filters, final=config.size,
                        fade=state["stage"] > 0)
    g.load_weights(str(run / "checkpoints" / checkpoint / "generator.weights.h5"))
    return g


def test_a_32_to_64_run_grows_carries_weights_and_logs_the_stage(small_workspace: Path) -> None:
    res = run_cli("train", "-w", small_workspace, "--run", "grow", "--size", "64",
                  "--progressive", "32,64", "--stage-epochs", "2,2", "--batch", "16",
                  "--checkpoint-every", "1", "--json")
    assert res.code == 0, res.err
    run = small_workspace / "runs" / "grow"
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [(s["size"], s["stage"]) for s in stats] == [(32, 1), (32, 1), (64, 2), (64, 2)]
    log = (run / "log.txt").read_text()
    assert "stage 2: 32 -> 64 px at epoch 3" in log
    # every sample grid at the final size, so the timeline compares
    sizes = {Image.open(p).size for p in (run / "samples").glob("epoch-*.png")}
    assert len(sizes) == 1 and len(list((run / "samples").glob("*.png"))) == 4

    g32, g64 = generator_at(run, "epoch-0002"), generator_at(run, "epoch-0003")
    z = np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32)
    assert np.asarray(g64(z, training=False)).shape == (3, 64, 64, 3)
    # carried: one epoch (3 small Adam steps) away from the 32-px kernel, unlike a fresh one
    before = g32.get_layer("g_block_8").get_weights()[0]
    after = g64.get_layer("g_block_8").get_weights()[0]
    assert before.shape == after.shape
    assert np.abs(after - before).max() < 0.005 < np.abs(before).max()
    assert np.corrcoef(before.ravel(), after.ravel())[0, 1] > 0.99
    # the fade-in: alpha rises by step over the stage's first half (3 of its 6 steps here)
    from modescope.trainer.models import fade_layer

    per_epoch = json.loads((run / "dataset.json").read_text())["count"] // 16
    assert per_epoch == 3
    assert float(fade_layer(g64).alpha.numpy()) == np.float32(2 / 3)  # set before step 3 of 3
    assert float(fade_layer(generator_at(run, "epoch-0004")).alpha.numpy()) == 1.0
    assert run_cli("generate", "--run", "grow", "-w", small_workspace, "--n", "2").code == 0
    assert Image.open(run / "generated" / "000000.png").size == (64, 64)


def test_resume_in_the_middle_of_a_stage(small_workspace: Path) -> None:
    run = small_workspace / "runs" / "grow-resume"
    proc = subprocess.Popen([*modescope_cmd(), "train", "-w", str(small_workspace), "--run",
                             "grow-resume", "--size", "64", "--progressive", "32,64",
                             "--stage-epochs", "1,60", "--batch", "16"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads((run / "progress.json").read_text()).get("size") == 64:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    state = json.loads((run / "checkpoints" / "latest" / "state.json").read_text())
    assert state["stage"] == 1 and state["size"] == 64 and 1 <= state["epoch"] < 61
    # shorten the stage so the test ends: config.json is the run's definition
    config = json.loads((run / "config.json").read_text())
    config["stage_epochs"] = [1, state["epoch"] + 1]
    (run / "config.json").write_text(json.dumps(config))
    res = run_cli("train", "-w", small_workspace, "--resume", "grow-resume", "--json")
    assert res.code == 0, res.err
    per_epoch = json.loads((run / "dataset.json").read_text())["count"] // 16
    assert res.json()["step"] == (state["epoch"] + 2) * per_epoch
    log = (run / "log.txt").read_text()
    assert f"resumed at epoch {state['epoch'] + 1}" in log and "(64 px)" in log
