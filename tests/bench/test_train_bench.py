"""The training benchmark's anchors (bench/anchors/) and its smoke path: the keras.io example
is the example (its published parameter counts) and trains; the PyTorch example trains where
torch is installed; ``train_bench.py --smoke`` runs end to end from the checkout, torch or
not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.anchors import keras_dcgan, torch_dcgan

ROOT = Path(__file__).resolve().parents[2]


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def test_keras_anchor_models_have_the_examples_published_parameter_counts() -> None:
    # keras.io, "DCGAN to generate face images", the summaries printed on the page
    assert keras_dcgan.build_discriminator().count_params() == 404_801
    g = keras_dcgan.build_generator()
    assert g.count_params() == 3_979_651
    assert tuple(g(np.zeros((1, 128), np.float32)).shape) == (1, 64, 64, 3)


def test_keras_anchor_step_trains_both_networks() -> None:
    anchor = keras_dcgan.build(_images(4), batch_size=2)
    d0 = [v.numpy().copy() for v in anchor.gan.discriminator.trainable_weights]
    g0 = [v.numpy().copy() for v in anchor.gan.generator.trainable_weights]
    for _ in range(2):
        d_loss, g_loss = anchor.step()
    assert np.isfinite(float(d_loss)) and np.isfinite(float(g_loss))
    assert any(not np.array_equal(v.numpy(), w)
               for v, w in zip(anchor.gan.discriminator.trainable_weights, d0, strict=True))
    assert any(not np.array_equal(v.numpy(), w)
               for v, w in zip(anchor.gan.generator.trainable_weights, g0, strict=True))


def test_anchor_feeds_refuse_what_the_examples_cannot_read() -> None:
    with pytest.raises(TypeError):
        keras_dcgan.dataset(_images(4).astype(np.float32), 2)
    with pytest.raises(ValueError):
        next(torch_dcgan.batches(_images(4), 8))
    with pytest.raises(ValueError):
        next(torch_dcgan.batches(_images(4)[:, :32], 2))


def test_torch_anchor_batches_cover_each_epoch_once() -> None:
    images = _images(6)
    feed = torch_dcgan.batches(images, 2)
    epoch = np.concatenate([next(feed) for _ in range(3)])
    assert sorted(map(bytes, epoch)) == sorted(map(bytes, images))


@pytest.mark.parametrize("bf16", [False, True])
def test_torch_anchor_step_trains_both_networks(bf16: bool) -> None:
    torch = pytest.importorskip("torch")
    anchor = torch_dcgan.build("cpu", bf16=bf16, channels_last=bf16)
    # the PyTorch DCGAN's networks at its defaults (nz 100, ngf = ndf = 64, 64 px)
    assert sum(p.numel() for p in anchor.net_g.parameters()) == 3_576_704
    assert sum(p.numel() for p in anchor.net_d.parameters()) == 2_765_568
    d0 = [p.detach().clone() for p in anchor.net_d.parameters()]
    g0 = [p.detach().clone() for p in anchor.net_g.parameters()]
    err_d, err_g = anchor.step(_images(2))
    assert np.isfinite(err_d.item()) and np.isfinite(err_g.item())
    assert any(not torch.equal(p, q) for p, q in zip(anchor.net_d.parameters(), d0, strict=True))
    assert any(not torch.equal(p, q) for p, q in zip(anchor.net_g.parameters(), g0, strict=True))


@pytest.mark.slow  # a subprocess that imports TensorFlow and trains both steps
def test_train_bench_smoke_runs_from_the_checkout() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "train_bench.py"), "--smoke"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ours / keras.io" in proc.stdout
    if not torch_dcgan.torch_available():
        assert "torch not installed: PyTorch anchor skipped" in proc.stdout
