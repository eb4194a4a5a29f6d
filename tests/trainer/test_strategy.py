"""tf.distribute: one step on two replicas equals one step on one device; two workers train."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import modescope_cmd

pytestmark = pytest.mark.slow  # TensorFlow on two logical devices; two training workers

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh process: logical devices must be configured before TensorFlow starts.
# The step's randomness (z, smoothed labels, instance noise) is stateless, drawn at the global
# batch from (seed, step) and sliced by replica id, so both runs draw the same numbers: the test
# keeps label smoothing, instance noise and two D updates on instead of switching them off.
TWO_DEVICES = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from modescope.core.training import TrainConfig
    from modescope.trainer.data import tf_dataset
    from modescope.trainer.stages import Models

    cfg = TrainConfig(size=32, gen_filters=8, disc_filters=8, batch_size=8, instance_noise=0.1,
                      label_smoothing=True, d_steps=2)
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)

    def one_step(strategy):
        keras.utils.set_random_seed(0)
        m = Models(cfg, 0, strategy, 8)
        step = m.make_step(cfg, strategy, 8)
        before = [np.asarray(v) for v in m.g.weights + m.d.weights]
        real = next(iter(step.distribute(
            lambda p, f, c: tf_dataset(images, 8, 0, 0, True, 0, p, f, c))))
        ld, lg = step(real, 0, 0.1)
        after = [np.asarray(v) for v in m.g.weights + m.d.weights]
        return before, after, float(ld), float(lg), strategy.num_replicas_in_sync

    one = one_step(tf.distribute.get_strategy())
    two = one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    diff = lambda a, b: max(float(np.abs(x - y).max()) for x, y in zip(a, b))
    print(json.dumps({
        "replicas": [one[4], two[4]], "initial_diff": diff(one[0], two[0]),
        "update": diff(one[0], one[1]), "after_diff": diff(one[1], two[1]),
        "losses": [one[2], one[3], two[2], two[3]]}))
""")


def test_one_step_on_two_logical_devices_equals_one_step_on_one() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", TWO_DEVICES], capture_output=True, text=True,
                          env=env, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == [1, 2]
    assert out["initial_diff"] == 0.0
    assert out["update"] > 1e-4  # the step moved the weights (Adam: about lr = 2e-4 a step)
    # tolerance: 1e-6 absolute on G and D weights, BN statistics included (float32 sums in a
    # different order), i.e. under 1 % of one Adam update
    assert out["after_diff"] < 1e-6, out
    ld1, lg1, ld2, lg2 = out["losses"]
    assert abs(ld1 - ld2) < 1e-5 and abs(lg1 - lg2) < 1e-5, out


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_finish_an_epoch_and_only_the_chief_writes(small_workspace: Path) -> None:
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}})}
        env.pop("MODESCOPE_WORKSPACE", None)
        procs.append(subprocess.Popen(
            [*modescope_cmd(), "train", "-w", str(small_workspace), "--run", "mw", "--epochs",
             "1", "--batch", "8", "--json"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=240) for p in procs]  # a hang fails here, not a slow run
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    results = [json.loads(o[0]) for o in outs]
    assert all(r["status"] == "finished" and r["epoch"] == 1 for r in results)
    run = small_workspace / "runs" / "mw"
    state = json.loads((run / "checkpoints" / "latest" / "state.json").read_text())
    assert state["epoch"] == 1 and state["step"] == results[0]["step"] > 0
    assert "MultiWorkerMirroredStrategy with 2 replica(s)" in (run / "log.txt").read_text()
    # one writer: a single stats row and one "epoch 1" log line, from the chief
    assert len((run / "stats.jsonl").read_text().splitlines()) == 1
    assert (run / "log.txt").read_text().count("epoch 1:") == 1
