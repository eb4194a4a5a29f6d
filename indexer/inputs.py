"""What the analyses read (indexer/analyses/): a source's indexed vectors, the curated subset,
the feature header every result carries, a pixel comparison of a run's sample with a training
image.

Training vectors are the curated set (flagged images left out) for modes and memorisation, and
every indexed training image for outliers, duplicates and suggestions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modescope.core.catalog import Catalog
from modescope.core.errors import InputError
from modescope.core.workspace import Workspace
from modescope.indexer import copycheck, graph, memorisation
from modescope.indexer.store import IndexStore, source_items

TrainImages = Callable[[int], copycheck.Turned]  # training id -> blurred and turned


def load_vectors(ws: Workspace, source: str) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                      dict[str, Any]]:
    """(ids, {"block1": ..., "block5": ...}, meta) of a source's current indexed images."""
    store = IndexStore(ws, source)
    meta = store.require_meta()
    desired = {it.id: it.sha256 for it in source_items(ws, source)}
    ids, vecs = store.current_vectors(desired)
    if len(ids) < len(desired):
        raise InputError(f"{len(desired) - len(ids)} images of {source} are not indexed yet; "
                         f"run `modescope index --source {source}` first")
    return ids, vecs, meta


def check_same_space(train_meta: dict[str, Any], gen_meta: dict[str, Any], run: str) -> None:
    if train_meta["spec"] != gen_meta["spec"]:
        raise InputError(f"run {run} was indexed with other feature settings than the training "
                         f"set; run `modescope index --source generated:{run} --rebuild`")


def curated_vectors(ws: Workspace, ids: np.ndarray, vecs: dict[str, np.ndarray],
                    include_flagged: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if include_flagged:
        return ids, vecs
    with Catalog.reading(ws.catalog_path) as catalog:
        curated = {c.id for c in catalog.curated()}
    keep = np.array([i in curated for i in ids.tolist()], dtype=bool)
    out = {k: v[keep] for k, v in vecs.items()}
    for layer, v in out.items():  # their k-NN graphs are read from every indexed image's
        graph.subset_of(vecs[layer], keep, v)
    return ids[keep], out


def reference_vectors(ws: Workspace, ids: np.ndarray, vecs: dict[str, np.ndarray],
                      run: str | None = None, train: TrainImages | None = None
                      ) -> memorisation.Reference | None:
    """The held-out reference among a "train" source's vectors: held-out images without a flag,
    less any image the run trained on (a split made after the run; its dataset.json says),
    with a pixel comparison of each with a training image (``train``: the training images'
    cache to share with the samples' comparison). None when nothing is held out."""
    with Catalog.reading(ws.catalog_path) as catalog:
        held = {c.id: c.file for c in catalog.held_out()}
    trained: set[str] = set()
    record = ws.run(run).dataset() if run else None
    if record:
        trained = {str(f) for f in record.get("files", [])}
    keep_ids = {i for i, f in held.items() if str(ws.resolve(f)) not in trained}
    if not keep_ids:
        return None
    keep = np.array([i in keep_ids for i in ids.tolist()], dtype=bool)
    return memorisation.Reference(ids[keep], {k: v[keep] for k, v in vecs.items()},
                                  train_pixel_verifier(ws, train))


def training_images(ws: Workspace, size: int | None = None,
                    files: dict[int, Path] | None = None) -> TrainImages:
    """The train source's images as the pixel comparison takes them (at ``size``, by default
    the workspace's), loaded once each while they fit the cache."""
    files = _train_files(ws) if files is None else files
    turned = _blurred_cache(size or ws.read_config().image_size, turn=True)
    return lambda image_id: turned(files[image_id])


def _train_files(ws: Workspace) -> dict[int, Path]:
    return {it.id: it.file for it in source_items(ws, "train")}


def train_pixel_verifier(ws: Workspace, train: TrainImages | None = None
                         ) -> memorisation.Verifier:
    """Compare two images of the train source (a held-out one with a training one) in pixels."""
    size = ws.read_config().image_size
    files = _train_files(ws)
    return _verifier(files, size, train or training_images(ws, size, files))


def _verifier(files: dict[int, Path], size: int, training: TrainImages
              ) -> memorisation.Verifier:
    """(id in ``files``, training id) -> their pixel comparison; each image of ``files`` read
    and blurred once while it stays in a cache (it meets up to three training images in a
    row)."""
    image = _blurred_cache(size)
    return lambda a, b: copycheck.compare(image(files[a]), training(b))


CACHE_BYTES = 256 * 2**20  # per cache: ~750 turned or ~5,000 plain 64-px images


def _blurred_cache(size: int, turn: bool = False) -> Any:
    """path -> the image blurred (``turn``: and turned, as a training image is compared),
    emptied when it would outgrow CACHE_BYTES (a turned image is seven arrays). Safe to call
    from several threads (memorisation compares on one per core): the images are made outside
    the lock, so two threads may both make one."""
    import threading

    cache: dict[Path, Any] = {}
    lock = threading.Lock()
    held = 0

    def get(path: Path) -> Any:
        nonlocal held
        with lock:
            entry = cache.get(path)
        if entry is None:
            image = copycheck.blurred(copycheck.load_rgb(path, size))
            entry = copycheck.turned(image) if turn else image
            with lock:
                if held + entry.nbytes > CACHE_BYTES:
                    cache.clear()
                    held = 0
                if path not in cache:
                    cache[path] = entry
                    held += entry.nbytes
        return entry

    return get


def header(meta: dict[str, Any]) -> dict[str, Any]:
    """The features a result was computed on (every result's weights, trained, warning)."""
    return {"weights": meta["weights"], "trained": meta["trained"], "warning": meta.get("warning")}


def pixel_verifier(ws: Workspace, run: str, train: TrainImages | None = None
                   ) -> memorisation.Verifier:
    """Compare a run's sample with a training image in pixels, at the workspace's size."""
    sample_files = {it.id: it.file for it in source_items(ws, f"generated:{run}")}
    return _verifier(sample_files, ws.read_config().image_size, train or training_images(ws))


def run_vectors(ws: Workspace, run: str, include_flagged: bool
                ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any], np.ndarray,
                           dict[str, np.ndarray]]:
    """(train ids, train vectors, train meta, sample ids, sample vectors) of a run analysis:
    the curated training set (unless ``include_flagged``) and the run's samples, checked to be
    in one feature space."""
    tids, tv, tmeta = load_vectors(ws, "train")
    tids, tv = curated_vectors(ws, tids, tv, include_flagged)
    gids, gv, gmeta = load_vectors(ws, f"generated:{run}")
    check_same_space(tmeta, gmeta, run)
    return tids, tv, tmeta, gids, gv


def held_out_reference(ws: Workspace, run: str | None = None, train: TrainImages | None = None
                       ) -> memorisation.Reference | None:
    """The held-out reference vectors of the workspace (for ``run``: less what it trained on)."""
    ids, vecs, _ = load_vectors(ws, "train")
    return reference_vectors(ws, ids, vecs, run, train)
