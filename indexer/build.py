"""``modescope index``: extract only what is new, store it in chunks, keep the FAISS files in step.

Data flow: the source's current images (catalog ok rows, or a run's generated PNGs) minus what
the chunks already hold with the same content hash -> VGG16 descriptors in chunks of
``CHUNK`` images (each a durable file) -> FAISS files rebuilt from the chunks when anything
changed -> meta.json last. kill -9 at any point loses at most one chunk of work; the rerun
finishes it and produces the same index as one uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modescope.core.errors import Conflict
from modescope.core.files import atomic_write_bytes
from modescope.core.normalise import fit_square
from modescope.core.workspace import Workspace
from modescope.indexer.backend import versions
from modescope.indexer.features import LAYERS, FeatureSpec, untrained_warning
from modescope.indexer.index import IndexCorrupt, VectorIndex
from modescope.indexer.store import META_VERSION, IndexStore, Item, source_items

CHUNK = 256  # images per durable chunk file (env MODESCOPE_INDEX_CHUNK overrides)
ProgressFn = Callable[[int, int], None]


class IndexMismatch(Conflict):
    """The stored index was built with other feature settings."""

    title = "Index built with other settings"


@dataclass
class IndexReport:
    source: str
    weights: str
    trained: bool
    input_size: int
    count: int = 0
    extracted: int = 0
    seconds: float = 0.0
    extract_seconds: float = 0.0
    index_kind: str = "flat"
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "weights": self.weights, "trained": self.trained,
            "input_size": self.input_size, "count": self.count, "extracted": self.extracted,
            "seconds": round(self.seconds, 3),
            "images_per_s": round(self.extracted / self.extract_seconds, 1)
            if self.extract_seconds else None,
            "index_kind": self.index_kind, "warnings": self.warnings,
        }

    def summary(self) -> str:
        rate = (f" at {self.extracted / self.extract_seconds:.1f} images/s"
                if self.extract_seconds else "")
        return (f"{self.source}: {self.count} images indexed ({self.extracted} extracted now"
                f"{rate}; {self.index_kind} index, weights {self.weights}, "
                f"{self.input_size}-px VGG input)")


def describe(spec_json: dict[str, Any]) -> str:
    pooling = " ".join(f"{k}={v}" for k, v in spec_json["pooling"].items())
    weights = spec_json["weights"]
    if weights == "random":
        weights = f"random (seed {spec_json.get('seed')})"
    return (f"weights {weights}, input {spec_json['input_size']} px, pooling {pooling}, "
            f"engine {spec_json.get('engine', 'fp32')}")


def spec_from_meta(meta: dict[str, Any]) -> FeatureSpec:
    s = meta["spec"]
    return FeatureSpec(weights=s["weights"], seed=s.get("seed", 0), input_size=s["input_size"],
                       pooling=dict(s["pooling"]), engine=s.get("engine", "fp32"))


def index_source(
    ws: Workspace,
    source: str,
    spec: FeatureSpec,
    *,
    batch: int = 32,
    rebuild: bool = False,
    progress: ProgressFn | None = None,
    index_kind: str = "auto",
) -> IndexReport:
    started = time.perf_counter()
    ws.read_config()
    store = IndexStore(ws, source)
    report = IndexReport(source, spec.weights_label(), spec.trained, spec.input_size)
    warning = untrained_warning(spec.weights)
    if warning:
        report.warnings.append(warning)
    with ws.lock(f"index-{store.dir.name}"):
        if rebuild and store.dir.exists():
            shutil.rmtree(store.dir)  # the train index's int8 model goes with it
        meta = _check_compatible(store, spec)
        items = source_items(ws, source)
        desired = {it.id: it.sha256 for it in items}
        have = store.indexed()
        todo = [it for it in items if have.get(it.id) != it.sha256]
        if todo:
            report.extracted, report.extract_seconds = _extract(
                ws, store, spec, todo, batch, progress)
        # after extraction every desired image has stored vectors for its current content
        if todo or meta is None or not _faiss_in_step(store, meta, len(desired)):
            meta = _write_indexes(store, spec, desired, index_kind)
        report.count = meta["count"]
        report.index_kind = meta["index_kind"]
    report.seconds = time.perf_counter() - started
    return report


def _check_compatible(store: IndexStore, spec: FeatureSpec) -> dict[str, Any] | None:
    meta = store.read_meta()
    if meta is not None and meta.get("spec") != spec.as_json():
        raise IndexMismatch(
            f"the {store.source} index was built with {describe(meta['spec'])}; you asked for "
            f"{describe(spec.as_json())}. Use the same options, or add --rebuild to "
            "re-extract everything")
    if meta is None and store.chunk_names():
        # chunks from a killed first run: usable only if made with this spec (partial.json is
        # written before the first chunk)
        partial = store.partial_path
        if partial.is_file() and partial.read_text() != _spec_text(spec):
            raise IndexMismatch(f"{store.chunk_dir} was started with other settings; add "
                                "--rebuild")
    return meta


def _spec_text(spec: FeatureSpec) -> str:
    return json.dumps(spec.as_json(), sort_keys=True)


def _extract(ws: Workspace, store: IndexStore, spec: FeatureSpec, todo: list[Item],
             batch: int, progress: ProgressFn | None) -> tuple[int, float]:
    store.dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(store.partial_path, _spec_text(spec).encode())
    size = ws.read_config().image_size
    calibration = None
    if spec.engine == "int8" and not int8_model_dir(ws).is_dir():
        from modescope.indexer.int8 import CALIBRATION

        calibration = np.stack([_load(it.file, size) for it in todo[:CALIBRATION]])
    extractor = make_extractor(ws, spec, batch, calibration)
    t0 = time.perf_counter()
    done = 0
    chunk = int(os.environ.get("MODESCOPE_INDEX_CHUNK", CHUNK))
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        pieces: list[dict[str, np.ndarray]] = []
        step = max(batch, 64)  # a progress update every few batches, not every chunk
        for s in range(0, len(part), step):
            images = np.stack([_load(it.file, size) for it in part[s:s + step]])
            pieces.append(extractor(images))
            done += len(images)
            if progress:
                progress(done, len(todo))
        feats = {k: np.concatenate([p[k] for p in pieces]) for k in LAYERS}
        store.write_chunk(np.array([it.id for it in part]), [it.sha256 for it in part], feats)
    return done, time.perf_counter() - t0


def int8_model_dir(ws: Workspace) -> Path:
    """The quantised model lives with the train index: every source shares it."""
    return IndexStore(ws, "train").dir / "int8-model"


def make_extractor(ws: Workspace, spec: FeatureSpec, batch: int,
                   calibration: np.ndarray | None = None) -> Any:
    """The fp32 Keras extractor, or the int8 OpenVINO one (quantised on first use)."""
    if spec.engine == "int8":
        from modescope.indexer.int8 import Int8Extractor

        return Int8Extractor(spec, int8_model_dir(ws), ws.read_config().image_size,
                             calibration, batch_size=batch)
    from modescope.indexer.features import Extractor  # imports Keras: only when there is work

    return Extractor(spec, batch_size=batch)


def _load(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        if rgb.size != (size, size):
            rgb = fit_square(rgb, size, "crop")
        return np.asarray(rgb, dtype=np.uint8)


def _faiss_in_step(store: IndexStore, meta: dict[str, Any], n_current: int) -> bool:
    if meta.get("count") != n_current:
        return False
    try:
        for layer in LAYERS:
            store.open_layer(layer, meta)
    except IndexCorrupt:
        return False
    return True


def _agreement(store: IndexStore) -> dict[str, float] | None:
    path = int8_model_dir(store.ws) / "agreement.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _write_indexes(store: IndexStore, spec: FeatureSpec, desired: dict[int, str],
                   index_kind: str) -> dict[str, Any]:
    ids, vecs = store.current_vectors(desired)
    kinds = set()
    for layer in LAYERS:
        vi = VectorIndex.build(ids, vecs[layer], kind=index_kind) if len(ids) else \
            VectorIndex.flat(spec.dim(layer))
        vi.save(store.layer_path(layer))
        kinds.add(vi.kind)
    meta = {
        "version": META_VERSION,
        "source": store.source,
        "model": "vgg16",
        "spec": spec.as_json(),
        "weights": spec.weights_label(),
        "trained": spec.trained,
        "warning": untrained_warning(spec.weights),
        "input_size": spec.input_size,
        "layers": {k: {"layer": LAYERS[k], "pooling": spec.pooling[k], "dim": spec.dim(k)}
                   for k in LAYERS},
        "count": len(ids),
        "index_kind": kinds.pop(),
        "engine": spec.engine,
        "int8_agreement": _agreement(store) if spec.engine == "int8" else None,
        "versions": versions(),
    }
    store.write_meta(meta)
    (store.partial_path).unlink(missing_ok=True)
    return meta
