"""FAISS cosine indexes keyed by image id: exact up to ``FLAT_MAX`` vectors, IVF above.

Vectors must be L2-normalised float32 (cosine = inner product, as faiss.contrib does). Ids are
int64 (catalog image ids or sample numbers). Searches can leave out a set of ids (flagged
images) through an ``IDSelectorNot``, so flagging and unflagging never touch the index.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np

from modescope.core.errors import Conflict

faiss: Any = _faiss  # its bundled stubs miss much of the SWIG API (DirectMap, nprobe, ...)

FLAT_MAX = 25_000  # exact search up to here: flat p95 passes 10 ms near 30k (docs/features.md)
IVF_PROBE_SHARE = 1 / 16  # lists probed: 1/32 fell to recall 0.91 at 10k (docs/features.md)


class IndexCorrupt(Conflict):
    """An index file cannot be read or disagrees with its meta.json."""

    title = "Index needs a rebuild"


def check_vectors(vecs: np.ndarray, dim: int | None = None) -> np.ndarray:
    if not isinstance(vecs, np.ndarray):
        raise TypeError(f"vectors must be a numpy array, got {type(vecs).__name__}")
    if vecs.dtype != np.float32:
        raise TypeError(f"vectors must be float32, got {vecs.dtype}")
    if vecs.ndim != 2 or (dim is not None and vecs.shape[1] != dim):
        raise ValueError(f"vectors must have shape (n, {dim or 'd'}), got {vecs.shape}")
    return np.ascontiguousarray(vecs)


def check_ids(ids: Iterable[int] | np.ndarray, n: int | None = None) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids,
                                          dtype=np.int64))
    if arr.ndim != 1 or (n is not None and len(arr) != n):
        raise ValueError(f"ids must be a 1-d array of {n if n is not None else 'n'} integers")
    return arr


class VectorIndex:
    """One layer's vectors. ``kind`` is ``flat`` (exact) or ``ivf`` (approximate)."""

    def __init__(self, index: Any, kind: str) -> None:
        self.index = index
        self.kind = kind
        self._keep: object = None

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def flat(cls, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), "flat")

    @classmethod
    def ivf(cls, train: np.ndarray, n_expected: int | None = None) -> VectorIndex:
        """An IVF index whose coarse quantiser is trained on ``train`` (a sample of the data)."""
        train = check_vectors(train)
        n = n_expected or len(train)
        nlist = max(1, min(int(4 * math.sqrt(n)), len(train) // 39))
        quantizer = faiss.IndexFlatIP(train.shape[1])
        index = faiss.IndexIVFFlat(quantizer, train.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(train)
        index.nprobe = max(1, math.ceil(nlist * IVF_PROBE_SHARE))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
        vi = cls(index, "ivf")
        vi._keep = quantizer  # the index holds a raw pointer: keep the Python object alive
        return vi

    @classmethod
    def build(cls, ids: np.ndarray, vecs: np.ndarray, *, kind: str = "auto",
              seed: int = 0) -> VectorIndex:
        vecs = check_vectors(vecs)
        ids = check_ids(ids, len(vecs))
        if kind == "auto":
            kind = "flat" if len(vecs) <= FLAT_MAX else "ivf"
        if kind == "flat":
            vi = cls.flat(vecs.shape[1])
        elif kind == "ivf":
            rng = np.random.default_rng(seed)
            sample = vecs[rng.choice(len(vecs), min(len(vecs), 256 * 1024), replace=False)]
            vi = cls.ivf(sample, len(vecs))
        else:
            raise ValueError(f"unknown index kind {kind!r}")
        vi.add(ids, vecs)
        return vi

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        vecs = check_vectors(vecs, self.dim)
        ids = check_ids(ids, len(vecs))
        if len(vecs):
            self.index.add_with_ids(vecs, ids)

    def remove(self, ids: Iterable[int]) -> int:
        arr = check_ids(ids)
        return int(self.index.remove_ids(arr)) if len(arr) else 0

    def reconstruct(self, image_id: int) -> np.ndarray:
        try:
            return np.asarray(self.index.reconstruct(int(image_id)), dtype=np.float32)
        except RuntimeError:
            raise KeyError(image_id) from None

    def search(self, queries: np.ndarray, k: int,
               exclude: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities and ids of the k nearest vectors per query (id -1 past the end)."""
        queries = check_vectors(queries, self.dim)
        if k < 1:
            raise ValueError("k must be at least 1")
        excluded = check_ids(exclude) if exclude is not None else np.zeros(0, np.int64)
        if self.kind == "ivf":
            params: Any = faiss.SearchParametersIVF(nprobe=self.index.nprobe)
        else:
            params = faiss.SearchParameters()
        if len(excluded):
            # faiss keeps raw pointers: both selectors must outlive the search
            batch = faiss.IDSelectorBatch(excluded)
            selector = faiss.IDSelectorNot(batch)
            params.sel = selector
        sims, ids = self.index.search(queries, k, params=params)
        if len(excluded):
            del selector, batch
        return sims, ids

    def save(self, path: Path) -> None:
        """Write to a temp file beside ``path`` and rename: never half an index."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o644)
        os.close(fd)
        try:
            faiss.write_index(self.index, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path, *, mmap: bool = False) -> VectorIndex:
        """Read an index; ``mmap`` maps an IVF index's lists instead of reading them."""
        try:
            flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
            raw = faiss.read_index(str(path), flags)
        except RuntimeError as exc:
            raise IndexCorrupt(
                f"index file {path} is unreadable ({str(exc).splitlines()[0][:120]}); "
                "rebuild it with `modescope index --rebuild`"
            ) from None
        index = faiss.downcast_index(raw)
        vi = cls(index, "ivf" if isinstance(index, faiss.IndexIVF) else "flat")
        vi._keep = raw  # the owner of the C++ object; ``index`` is a second view of it
        return vi
