"""Nearest training images for an image id or any image file (``modescope neighbours``)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modescope.core.catalog import Catalog
from modescope.core.discover import display_path
from modescope.core.errors import InputError
from modescope.core.workspace import Workspace
from modescope.indexer.features import LAYERS
from modescope.indexer.store import IndexStore


@dataclass(frozen=True)
class Neighbour:
    id: int
    similarity: float
    path: str | None
    label: str | None


def query_vector(ws: Workspace, store: IndexStore, meta: dict[str, Any], layer: str,
                 query: str) -> tuple[np.ndarray, int | None, str]:
    """(vector, training id or None, how it was found) for an id or an image file."""
    image_id: int | None = None
    file = Path(query)
    with Catalog.reading(ws.catalog_path) as catalog:
        if query.isdigit():
            image_id = int(query)
        else:
            path = Path(query).expanduser()
            if not path.is_file():
                raise InputError(f"{query} is neither a training image id nor an image file")
            image_id = catalog.ok_id_for_path(display_path(path.absolute()))
        row = catalog.image(image_id) if image_id is not None else None
    if image_id is not None:
        if row is None or row.status != "ok" or row.file is None:
            raise InputError(f"no training image with id {image_id}; give an id from "
                             "`modescope status` or an image file")
        file = ws.resolve(row.file)
    train = IndexStore(ws, "train")
    if image_id is not None and store.source == "train":
        vi = store.open_layer(layer, meta)
        try:
            return vi.reconstruct(image_id)[None, :], image_id, "index"
        except KeyError:
            pass  # ingested after the last `modescope index`: embed it below
    return embed_file(file, train.require_meta(), ws)[layer][None, :], image_id, "embedded"


def embed_file(path: Path, meta: dict[str, Any], ws: Workspace) -> dict[str, np.ndarray]:
    """Descriptors of one image file, normalised exactly as ingest would, on the fly."""
    from modescope.core.normalise import NormaliseOptions, Rejected, normalise
    from modescope.indexer.build import make_extractor, spec_from_meta

    config = ws.read_config()
    try:
        norm = normalise(path.read_bytes(), NormaliseOptions(config.image_size, config.fit))
    except Rejected as exc:
        raise InputError(f"{path}: {exc}") from None
    extractor = make_extractor(ws, spec_from_meta(meta), batch=1)
    feats = extractor(np.asarray(norm.image, dtype=np.uint8)[None])
    return {k: v[0] for k, v in feats.items()}


def neighbours(ws: Workspace, query: str, *, layer: str = "block5", k: int = 24,
               source: str = "train", exclude_flagged: bool = False) -> dict[str, Any]:
    if layer not in LAYERS:
        raise InputError(f"--layer {layer!r}: use block1 or block5")
    if not 1 <= k <= 1000:
        raise InputError("--k must be between 1 and 1000")
    store = IndexStore(ws, source)
    meta = store.require_meta()
    vec, self_id, how = query_vector(ws, store, meta, layer, query)
    exclude: set[int] = set()
    if self_id is not None and source == "train":
        exclude.add(self_id)
    catalog = Catalog.open(ws.catalog_path, readonly=True)
    try:
        if exclude_flagged and source == "train":
            exclude |= catalog.flagged_ids()
        vi = store.open_layer(layer, meta)
        sims, ids = vi.search(vec.astype(np.float32), k, exclude or None)
        found = []
        for sim, i in zip(sims[0].tolist(), ids[0].tolist(), strict=True):
            if i < 0:
                continue
            row = catalog.image(i) if source == "train" else None
            found.append(Neighbour(i, round(float(sim), 6), row.path if row else None,
                                   row.label if row else None))
    except sqlite3.Error as exc:
        raise InputError(f"cannot read the catalog: {exc}") from None
    finally:
        catalog.close()
    return {
        "query": query, "query_id": self_id, "query_vector": how, "layer": layer,
        "source": source, "k": k, "weights": meta["weights"], "trained": meta["trained"],
        "warning": meta.get("warning"), "excluded_flagged": exclude_flagged,
        "neighbours": [n.__dict__ for n in found],
    }
