"""export-tfrecords round trip (pixels equal the workspace's) and training from the records;
the JAX backend trains without importing TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_tfrecords_round_trip_and_train_from_them(small_workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "records"
    res = run_cli("export-tfrecords", "-w", small_workspace, "--out", out, "--shards", "3",
                  "--json")
    assert res.code == 0, res.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(list(out.glob("curated-*-of-00003.tfrecord"))) == 3
    assert sum(s["count"] for s in manifest["shards"]) == manifest["count"] == res.json()["count"]

    from modescope.core.catalog import Catalog
    from modescope.core.workspace import Workspace
    from modescope.trainer.data import read_tfrecords

    images, ids, sha = read_tfrecords(str(out / "*.tfrecord"))
    assert sha == manifest["dataset_sha256"]
    ws = Workspace(small_workspace)
    catalog = Catalog.open(ws.catalog_path, readonly=True)
    files = {str(i): ws.root / f for i, _, f in catalog.ok_files()}
    catalog.close()
    assert sorted(ids) == sorted(files) and len(ids) == manifest["count"]
    for img, ident in zip(images, ids, strict=True):
        assert np.array_equal(img, np.asarray(Image.open(files[ident]).convert("RGB"))), ident

    res = run_cli("train", "-w", small_workspace, "--run", "from-records", "--tfrecords",
                  str(out / "*.tfrecord"), "--epochs", "1", "--batch", "16", "--json")
    assert res.code == 0, res.err
    record = json.loads((small_workspace / "runs" / "from-records" / "dataset.json").read_text())
    assert record["sha256"] == manifest["dataset_sha256"] and record["count"] == len(ids)
    assert (small_workspace / "runs" / "from-records" / "tensorboard").is_dir()

    res = run_cli("train", "-w", small_workspace, "--run", "none", "--tfrecords",
                  str(tmp_path / "nothing" / "*.tfrecord"))
    assert res.code == 2 and "no TFRecord files match" in res.err


# runs the CLI in-process so the test can see which modules it imported
JAX_RUN = """
import sys
sys.argv = ["modescope", *sys.argv[1:]]
from modescope.cli.main import main
try:
    main()
finally:
    print("tensorflow imported" if "tensorflow" in sys.modules else "no tensorflow",
          file=sys.stderr)
"""


def test_a_tiny_jax_run_trains_without_tensorflow(small_workspace: Path) -> None:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    env.pop("MODESCOPE_WORKSPACE", None)
    proc = subprocess.run(
        [sys.executable, "-c", JAX_RUN, "train", "-w", str(small_workspace), "--run", "jax",
         "--epochs", "3", "--batch", "16", "--instance-noise", "0.1", "--d-steps", "2",
         "--checkpoint-every", "3", "--json"],
        capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.rstrip().endswith("no tensorflow")
    run = small_workspace / "runs" / "jax"
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [s["epoch"] for s in stats] == [1, 2, 3]
    assert all(np.isfinite([s["d_loss"], s["g_loss"]]).all() for s in stats)
    assert "jax backend" in (run / "log.txt").read_text()
    for name in ("preview.png", "samples/epoch-0003.png", "checkpoints/epoch-0003/state.json",
                 "checkpoints/latest/generator.weights.h5"):
        assert (run / name).exists(), name
    assert not (run / "tensorboard").exists()
    # the JAX checkpoint is an ordinary Keras one: the TF-backend generate reads it
    assert run_cli("generate", "--run", "jax", "-w", small_workspace, "--n", "3").code == 0
