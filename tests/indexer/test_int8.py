"""The int8 engine: quantised on the user's own images, kept only if neighbours agree with fp32."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from modescope.indexer.int8 import neighbour_agreement
from tests.conftest import run_cli
from tests.images import picture, save
from tests.indexer.test_index_cli import vectors

pytestmark = pytest.mark.slow  # indexes with TensorFlow and OpenVINO

pytest.importorskip("openvino")
pytest.importorskip("nncf")
RANDOM64 = ["--weights", "random", "--seed", "0", "--input-size", "64"]


def test_int8_index_agrees_with_fp32_and_says_so(demo_workspace: Path, tmp_path: Path) -> None:
    fp32, int8 = tmp_path / "fp32", tmp_path / "int8"
    shutil.copytree(demo_workspace, fp32)
    shutil.copytree(demo_workspace, int8)
    assert run_cli("index", "-w", fp32, *RANDOM64).code == 0
    res = run_cli("index", "-w", int8, *RANDOM64, "--engine", "int8", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["count"] == 297  # stdout stays pure JSON despite NNCF's output
    meta = json.loads((int8 / "index" / "train" / "meta.json").read_text())
    assert meta["spec"]["engine"] == "int8" and meta["engine"] == "int8"
    assert min(meta["int8_agreement"].values()) >= 0.95
    assert (int8 / "index" / "train" / "int8-model" / "model.xml").is_file()
    for layer in ("block1", "block5"):
        a, b = vectors(fp32, layer), vectors(int8, layer)
        ids = sorted(a)
        assert ids == sorted(b)
        ref = np.stack([a[i] for i in ids])
        got = np.stack([b[i] for i in ids])
        assert neighbour_agreement(ref, got) >= 0.95, layer
    # later runs and other sources reuse the saved model: same vectors for the same image
    gen = int8 / "runs" / "r" / "generated"
    gen.mkdir(parents=True)
    src = next((int8 / "images" / "train").rglob("*.png"))
    shutil.copy(src, gen / "000000.png")
    assert run_cli("index", "-w", int8, "--source", "generated:r").code == 0
    from modescope.indexer.index import VectorIndex

    g = VectorIndex.load(int8 / "index" / "generated-r" / "block5.faiss").reconstruct(0)
    sims = np.stack([b[i] for i in ids]) @ g
    assert sims.max() > 0.9999


def test_int8_needs_enough_images_to_calibrate(tmp_path: Path) -> None:
    for i in range(20):
        save(picture(seed=i), tmp_path / "in" / f"{i}.png")
    assert run_cli("ingest", tmp_path / "in", "-w", tmp_path / "ws").code == 0
    res = run_cli("index", "-w", tmp_path / "ws", *RANDOM64, "--engine", "int8")
    assert res.code == 2 and "at least 64" in res.err and "--engine fp32" in res.err
