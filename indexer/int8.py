"""The int8 engine: the same VGG16 graph quantised by NNCF and run by OpenVINO (VNNI on CPUs).

Used with ``modescope index --engine int8`` (extra: ``pip install modescope[int8]``). The first
run exports the fp32 Keras graph, quantises it on up to 320 of the images being indexed, and
checks that int8 neighbours agree with fp32 ones (recall@24 of each layer >= 0.95) before a
single vector is stored; the quantised model is saved beside the index so that every later run,
and every source compared with it, uses exactly the same model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from modescope.core.errors import ModescopeError
from modescope.indexer.backend import quiet_native_stderr, stdout_to_stderr
from modescope.indexer.features import LAYERS, Extractor, FeatureSpec

MIN_AGREEMENT = 0.95
CALIBRATION = 320
MIN_CALIBRATION = 64


def _openvino() -> tuple[Any, Any]:
    try:
        with quiet_native_stderr():
            import nncf
            import openvino as ov
    except ImportError:
        raise ModescopeError("--engine int8 needs OpenVINO and NNCF: pip install "
                             "'modescope[int8]', or use --engine fp32") from None
    return ov, nncf


def neighbour_agreement(ref: np.ndarray, got: np.ndarray, k: int = 24) -> float:
    """Mean share of each vector's k nearest others (by ``ref``) that ``got`` also finds."""
    def top(v: np.ndarray) -> np.ndarray:
        s = v @ v.T
        np.fill_diagonal(s, -np.inf)
        return np.argpartition(-s, k, axis=1)[:, :k]

    a, b = top(ref), top(got)
    return float(np.mean([len(set(p) & set(q)) / k for p, q in zip(a.tolist(), b.tolist(),
                                                                    strict=True)]))


class Int8Extractor:
    """Drop-in for ``Extractor`` (uint8 images in, unit vectors out) backed by OpenVINO int8."""

    def __init__(self, spec: FeatureSpec, model_dir: Path, image_size: int,
                 calibration: np.ndarray | None = None, batch_size: int = 32) -> None:
        ov, nncf = _openvino()
        self.spec = spec
        self.batch_size = batch_size
        self.agreement: dict[str, float] | None = None
        xml = model_dir / "model.xml"
        core = ov.Core()
        if not xml.is_file():
            if calibration is None or len(calibration) < MIN_CALIBRATION:
                raise ModescopeError(
                    f"--engine int8 calibrates on the first images it indexes and needs at "
                    f"least {MIN_CALIBRATION}; index with --engine fp32 or add images first")
            self._quantise(ov, nncf, spec, model_dir, image_size, calibration[:CALIBRATION])
        self.compiled = core.compile_model(core.read_model(xml), "CPU")
        self._order = self._output_order()
        self.batch_size = int(self.compiled.inputs[0].get_partial_shape()[0].get_length())

    def _quantise(self, ov: Any, nncf: Any, spec: FeatureSpec, model_dir: Path,
                  image_size: int, calib: np.ndarray) -> None:
        fp32 = Extractor(FeatureSpec(weights=spec.weights, seed=spec.seed,
                                     input_size=spec.input_size, pooling=dict(spec.pooling)),
                         batch_size=self.batch_size)
        with tempfile.TemporaryDirectory() as tmp:
            fp32.model.export(f"{tmp}/saved", format="tf_saved_model", verbose=False)
            model = ov.convert_model(f"{tmp}/saved")
        model.reshape({model.inputs[0]: [self.batch_size, image_size, image_size, 3]})
        n = len(calib) - len(calib) % self.batch_size
        batches = [calib[s:s + self.batch_size] for s in range(0, n, self.batch_size)]
        with stdout_to_stderr():  # NNCF prints progress and warnings on stdout
            quantised = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches))
        core = ov.Core()
        self.compiled = core.compile_model(quantised, "CPU")
        self._order = self._output_order()
        ref = fp32(calib)
        got = self(calib)
        self.agreement = {k: round(neighbour_agreement(ref[k], got[k]), 4) for k in LAYERS}
        worst = min(self.agreement.values())
        if worst < MIN_AGREEMENT:
            raise ModescopeError(
                f"int8 neighbours agree with fp32 on only {worst:.1%} of the top 24 for these "
                f"images (need {MIN_AGREEMENT:.0%}); index with --engine fp32")
        staging = model_dir.with_name(model_dir.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        ov.save_model(quantised, str(staging / "model.xml"))
        (staging / "agreement.json").write_text(json.dumps(self.agreement))
        shutil.rmtree(model_dir, ignore_errors=True)
        staging.rename(model_dir)  # the model appears whole or not at all

    def _output_order(self) -> list[int]:
        """Which compiled output holds which layer: the SavedModel names them output_0 (block1)
        and output_1 (block5), whatever order OpenVINO lists them in."""
        position = {}
        for i, out in enumerate(self.compiled.outputs):
            for name in out.get_names():
                if name.startswith("output_") and name[7:].isdigit():
                    position[int(name[7:])] = i
        if sorted(position) != list(range(len(LAYERS))):
            raise ModescopeError("the int8 model's outputs are not the two VGG16 layers; "
                                 "rebuild the index with `modescope index --rebuild`")
        return [position[j] for j in range(len(LAYERS))]

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            raise TypeError("images must be a uint8 array of shape (N, H, W, 3)")
        out: dict[str, list[np.ndarray]] = {k: [] for k in LAYERS}
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            m = len(chunk)
            if m < self.batch_size:
                chunk = np.concatenate(
                    [chunk, np.zeros((self.batch_size - m, *chunk.shape[1:]), np.uint8)])
            res = self.compiled(chunk)
            for layer, idx in zip(LAYERS, self._order, strict=True):
                v = np.asarray(res[self.compiled.outputs[idx]], dtype=np.float32)[:m]
                out[layer].append(v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True),
                                                 1e-12))
        return {k: np.concatenate(v) if v else np.zeros((0, self.spec.dim(k)), np.float32)
                for k, v in out.items()}
