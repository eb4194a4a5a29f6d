"""An index on disk: ``<workspace>/index/<source>/`` (docs/workspace.md).

    meta.json              what the vectors are (spec, weights, layers, count, versions)
    chunks/chunk-NNNNNN.npz  append-only extraction results: ids, sha256s, one array per layer
    block1.faiss, block5.faiss  FAISS indexes built from the chunks

Chunks are the durable record: each is written whole (temp + rename) as extraction goes, so a
killed run loses at most one chunk of work. The FAISS files are derived from the chunks and the
source's current images; when they disagree with meta.json they are rebuilt.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from modescope.core.catalog import Catalog
from modescope.core.errors import Conflict, InputError
from modescope.core.files import atomic_write_bytes
from modescope.core.runfolder import check_run_name
from modescope.core.workspace import Workspace
from modescope.indexer.index import IndexCorrupt, VectorIndex

META_VERSION = 1
LAYER_KEYS = ("block1", "block5")


class IndexMissing(Conflict):
    """The source has not been indexed yet."""

    title = "Not indexed yet"


@dataclass(frozen=True)
class Item:
    id: int
    sha256: str
    file: Path


def parse_source(source: str) -> tuple[str, str | None]:
    """``train`` or ``generated:RUN`` -> (kind, run)."""
    if source == "train":
        return "train", None
    if source.startswith("generated:"):
        return "generated", check_run_name(source.split(":", 1)[1])
    raise InputError(f"--source {source!r}: use train or generated:RUN")


def source_items(ws: Workspace, source: str) -> list[Item]:
    """The images a source holds now, with the content hash that keys their vectors."""
    kind, run = parse_source(source)
    if kind == "train":
        if not ws.catalog_path.is_file():
            raise IndexMissing(f"{ws.root} has no catalog; run `modescope ingest DIR` first")
        with Catalog.reading(ws.catalog_path) as catalog:
            return [Item(i, sha, ws.resolve(f)) for i, sha, f in catalog.ok_files()]
    folder = ws.run(str(run))
    if not folder.has_samples():
        raise InputError(f"run {run} has no generated samples in {folder.generated_dir}; "
                         "generate or import samples first")
    import hashlib

    return [Item(n, hashlib.sha256(png.read_bytes()).hexdigest(), png)
            for n, png in folder.sample_paths()]


def index_summary(ws: Workspace, source: str = "train") -> dict[str, Any] | None:
    """What the UI and ``status`` show about an index, from meta.json alone (no FAISS load)."""
    try:
        meta = IndexStore(ws, source).read_meta()
    except IndexCorrupt as exc:
        return {"error": str(exc)}
    if meta is None:
        return None
    return {k: meta.get(k) for k in ("count", "weights", "trained", "warning", "input_size",
                                     "index_kind", "updated_at")}


class IndexStore:
    def __init__(self, ws: Workspace, source: str) -> None:
        kind, run = parse_source(source)
        self.ws = ws
        self.source = source
        self.dir = ws.index_dir / ("train" if kind == "train" else f"generated-{run}")

    @property
    def meta_path(self) -> Path:
        return self.dir / "meta.json"

    @property
    def partial_path(self) -> Path:
        """The spec of an extraction that stopped part way (removed when it completes)."""
        return self.dir / "partial.json"

    @property
    def chunk_dir(self) -> Path:
        return self.dir / "chunks"

    def layer_path(self, layer: str) -> Path:
        return self.dir / f"{layer}.faiss"

    def read_meta(self) -> dict[str, Any] | None:
        try:
            raw = self.meta_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            meta: dict[str, Any] = json.loads(raw)
        except ValueError:
            raise IndexCorrupt(f"{self.meta_path} is not valid JSON; rebuild with "
                               "`modescope index --rebuild`") from None
        return meta

    def require_meta(self) -> dict[str, Any]:
        meta = self.read_meta()
        if meta is None:
            raise IndexMissing(f"{self.source} is not indexed yet in {self.ws.root}; run "
                               f"`modescope index --source {self.source}`")
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        meta = {**meta, "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
        atomic_write_bytes(self.meta_path, (json.dumps(meta, indent=2) + "\n").encode())

    # -- chunks --------------------------------------------------------------------------------

    def chunk_names(self) -> list[str]:
        if not self.chunk_dir.is_dir():
            return []
        return sorted(p.name for p in self.chunk_dir.glob("chunk-*.npz"))

    def write_chunk(self, ids: np.ndarray, shas: list[str], feats: dict[str, np.ndarray]) -> str:
        names = self.chunk_names()
        seq = int(names[-1][6:12]) + 1 if names else 0
        name = f"chunk-{seq:06d}.npz"
        buf = io.BytesIO()
        arrays = {"ids": ids.astype(np.int64), "sha256": np.array(shas, dtype="U64"),
                  **{k: feats[k] for k in LAYER_KEYS}}
        np.savez(buf, allow_pickle=False, **arrays)
        atomic_write_bytes(self.chunk_dir / name, buf.getvalue())
        return name

    def read_chunk(self, name: str, *, vectors: bool = True) -> dict[str, np.ndarray]:
        try:
            with np.load(self.chunk_dir / name) as z:
                keys = ["ids", "sha256", *(LAYER_KEYS if vectors else ())]
                return {k: z[k] for k in keys}
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorrupt(f"chunk {self.chunk_dir / name} is unreadable ({exc}); rebuild "
                               "with `modescope index --rebuild`") from None

    def indexed(self) -> dict[int, str]:
        """id -> sha256 of the newest vectors stored for each id."""
        out: dict[int, str] = {}
        for name in self.chunk_names():
            z = self.read_chunk(name, vectors=False)
            out.update(zip(z["ids"].tolist(), z["sha256"].tolist(), strict=True))
        return out

    def current_vectors(self, desired: dict[int, str],
                        names: list[str] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The newest vectors of every desired id whose stored hash matches, in id order."""
        rows: dict[int, tuple[str, int, int]] = {}
        chunks: dict[str, dict[str, np.ndarray]] = {}
        for ci, name in enumerate(names if names is not None else self.chunk_names()):
            z = self.read_chunk(name)
            chunks[str(ci)] = z
            for j, (i, sha) in enumerate(zip(z["ids"].tolist(), z["sha256"].tolist(),
                                             strict=True)):
                if desired.get(i) == sha:
                    rows[i] = (sha, ci, j)
        ids = np.array(sorted(rows), dtype=np.int64)
        out: dict[str, np.ndarray] = {}
        for layer in LAYER_KEYS:
            vecs = [chunks[str(rows[i][1])][layer][rows[i][2]] for i in ids.tolist()]
            dim = next(iter(chunks.values()))[layer].shape[1] if chunks else 0
            out[layer] = np.stack(vecs).astype(np.float32) if vecs else np.zeros((0, dim),
                                                                                 np.float32)
        return ids, out

    # -- faiss files -----------------------------------------------------------------------

    def open_layer(self, layer: str, meta: dict[str, Any] | None = None, *,
                   mmap: bool = False) -> VectorIndex:
        meta = meta or self.require_meta()
        path = self.layer_path(layer)
        if not path.is_file():
            raise IndexCorrupt(f"{path} is missing; rebuild with `modescope index --rebuild`")
        vi = VectorIndex.load(path, mmap=mmap)
        if vi.ntotal != meta["count"] or vi.dim != meta["layers"][layer]["dim"]:
            raise IndexCorrupt(
                f"{path} holds {vi.ntotal} vectors of {vi.dim} dimensions but meta.json says "
                f"{meta['count']} of {meta['layers'][layer]['dim']}; rebuild with "
                "`modescope index --rebuild`")
        return vi
