"""The analyses on a workspace: load the indexed vectors, run one analysis, name the images.

Training vectors are the curated set (flagged images left out) for modes and memorisation, and
every indexed training image for outliers, duplicates and suggestions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modescope.core.catalog import Catalog
from modescope.core.errors import InputError
from modescope.core.workspace import Workspace
from modescope.indexer import copycheck, curation, memorisation, ndb
from modescope.indexer.store import IndexStore, source_items


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


def _check_same_space(train_meta: dict[str, Any], gen_meta: dict[str, Any], run: str) -> None:
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
    return ids[keep], {k: v[keep] for k, v in vecs.items()}


def _header(meta: dict[str, Any]) -> dict[str, Any]:
    return {"weights": meta["weights"], "trained": meta["trained"], "warning": meta.get("warning")}


def inspect_modes(ws: Workspace, run: str, *, k: int | None = None, alpha: float = 0.05,
                  seed: int = 0, include_flagged: bool = False,
                  examples: int = 6) -> dict[str, Any]:
    tids, tv, tmeta = load_vectors(ws, "train")
    tids, tv = curated_vectors(ws, tids, tv, include_flagged)
    gids, gv, gmeta = load_vectors(ws, f"generated:{run}")
    _check_same_space(tmeta, gmeta, run)
    bins = ndb.ModeBins(tv, k=k, seed=seed)
    tc, tb, centroids = bins.train, bins.train_bins, bins.centroids
    gc, gb = bins.generated_bins(gv)
    result = ndb.ndb_from_bins(tb, gb, bins.k, alpha=alpha, seed=seed).as_json()
    for b in result["bins"]:
        i = b["bin"]
        for name, ids, vecs, of in (("train_examples", tids, tc, tb),
                                    ("generated_examples", gids, gc, gb)):
            members = np.flatnonzero(of == i)
            closest = members[np.argsort(-(vecs[members] @ centroids[i]))][:examples]
            b[name] = [int(ids[j]) for j in closest]
    result["train_bin_of"] = {int(i): int(b) for i, b in zip(tids.tolist(), tb.tolist(),
                                                                 strict=True)}
    result["generated_bin_of"] = {int(i): int(b) for i, b in zip(gids.tolist(), gb.tolist(),
                                                                     strict=True)}
    return {"run": run, "layers": "block1+block5, PCA-whitened", **_header(tmeta), **result}


def pixel_verifier(ws: Workspace, run: str) -> memorisation.Verifier:
    """Compare a run's sample with a training image in pixels, at the workspace's size."""
    size = ws.read_config().image_size
    train_files = {it.id: it.file for it in source_items(ws, "train")}
    sample_files = {it.id: it.file for it in source_items(ws, f"generated:{run}")}
    cache: dict[int, np.ndarray] = {}

    def verify(sample: int, train_id: int) -> copycheck.Match:
        if train_id not in cache:
            if len(cache) > 4096:
                cache.clear()
            cache[train_id] = copycheck.blurred(copycheck.load_rgb(train_files[train_id], size))
        return copycheck.compare(
            copycheck.blurred(copycheck.load_rgb(sample_files[sample], size)), cache[train_id])

    return verify


def inspect_memorisation(ws: Workspace, run: str, *, threshold: float = memorisation.COPY_RATIO,
                         pixel_threshold: float = copycheck.PIXEL_COPY,
                         include_flagged: bool = False) -> dict[str, Any]:
    tids, tv, tmeta = load_vectors(ws, "train")
    tids, tv = curated_vectors(ws, tids, tv, include_flagged)
    gids, gv, gmeta = load_vectors(ws, f"generated:{run}")
    _check_same_space(tmeta, gmeta, run)
    return {"run": run, **_header(tmeta),
            **memorisation.memorisation(tv, tids, gv, gids, copy_ratio=threshold,
                                        verify=pixel_verifier(ws, run),
                                        pixel_threshold=pixel_threshold)}


def inspect_outliers(ws: Workspace, *, k: int = curation.OUTLIER_K,
                     z: float = curation.OUTLIER_Z) -> dict[str, Any]:
    ids, vecs, meta = load_vectors(ws, "train")
    return {**_header(meta), **curation.outliers(vecs, ids, k=k, z_threshold=z)}


def inspect_duplicates(ws: Workspace, *, threshold: float | None = None) -> dict[str, Any]:
    ids, vecs, meta = load_vectors(ws, "train")
    with Catalog.reading(ws.catalog_path) as catalog:
        exact = catalog.exact_duplicate_pairs()
    return {**_header(meta), **curation.near_duplicates(vecs, ids, exact, threshold)}


def inspect_suggest(ws: Workspace, *, kept: set[int] | None = None,
                    top: int = 20) -> dict[str, Any]:
    ids, vecs, meta = load_vectors(ws, "train")
    with Catalog.reading(ws.catalog_path) as catalog:
        flagged = catalog.flagged_ids()
    if not flagged:
        raise InputError("no training image is flagged yet: flag a few (`modescope flag ID...` "
                         "or in the app) and ask again")
    return {**_header(meta), **curation.suggest(vecs, ids, flagged, kept, top=top)}
