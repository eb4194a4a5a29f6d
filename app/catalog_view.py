"""What the web pages read from the workspace catalog (read-only; ingest is the writer)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modescope.core.catalog import Catalog, ImageRow
from modescope.core.errors import NotFound, WorkspaceError
from modescope.core.workspace import Workspace, WorkspaceConfig
from modescope.indexer.store import index_summary


@dataclass(frozen=True)
class GridPage:
    images: list[ImageRow]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class Overview:
    workspace: str
    config: WorkspaceConfig
    counts: dict[str, int]
    reasons: list[tuple[str, int]]
    rejected: list[ImageRow]
    rejected_more: int
    last_ingest: dict[str, object] | None
    grid: GridPage
    index: dict[str, Any] | None


class CatalogView:
    """Reads the catalog through each thread's reused read-only connection (``Catalog.reused``):
    thread-safe, and sees new ingests at once."""

    REJECTED_SHOWN = 200

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @contextmanager
    def _open(self) -> Iterator[Catalog]:
        if not self.workspace.catalog_path.is_file():
            raise WorkspaceError(
                f"{self.workspace.root} has no catalog yet; run "
                f"`modescope ingest DIR --workspace {self.workspace.root}`"
            )
        with Catalog.reused(self.workspace.catalog_path) as catalog:
            yield catalog

    def overview(self, page: int, page_size: int) -> Overview:
        config = self.workspace.read_config()
        with self._open() as catalog:
            counts = {**catalog.counts(), "flagged": len(catalog.flagged_ids())}
            pages = max(1, math.ceil(counts["ok"] / page_size))
            page = min(max(1, page), pages)
            grid = GridPage(
                catalog.images("ok", limit=page_size, offset=(page - 1) * page_size),
                page, pages, counts["ok"],
            )
            return Overview(
                workspace=str(self.workspace.root), config=config, counts=counts,
                reasons=catalog.reasons(),
                rejected=catalog.images("rejected", limit=self.REJECTED_SHOWN),
                rejected_more=max(0, counts["rejected"] - self.REJECTED_SHOWN),
                last_ingest=catalog.last_ingest(), grid=grid,
                index=index_summary(self.workspace),
            )

    def image_file(self, image_id: int) -> Path:
        """The normalised PNG of a training image, found by id (never by a path from a URL)."""
        with self._open() as catalog:
            row = catalog.image(image_id)
        if row is None or row.file is None:
            raise NotFound(f"no training image with id {image_id}")
        path = self.workspace.root / row.file
        if not path.is_file():
            raise NotFound(
                f"image {image_id}'s normalised file is missing; rerun `modescope ingest`"
            )
        return path
