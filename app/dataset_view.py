"""What /dataset and /dataset/images/{id} show: one page of tiles per view, never the whole set.

Views: ``all`` (catalog order), ``modes`` (one k-means bin at a time), ``outliers`` (most
unusual first), ``duplicates`` (near/exact duplicate groups), ``flagged`` (most recent first)
and ``suggest`` ("more like these": unflagged images that look like the flagged ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from modescope.app.analyses import AnalysisUnavailable
from modescope.app.curation import Computing, Curation
from modescope.app.neighbours import IndexCache, NotIndexed, one_query_thread
from modescope.app.store import Flag, FlagStore
from modescope.core.catalog import ImageRow
from modescope.core.errors import NotFound
from modescope.core.workspace import Workspace

VIEWS = ("all", "modes", "outliers", "duplicates", "flagged", "suggest")
GROUPS_PER_PAGE = 12
NEAREST_SHOWN = 12


@dataclass(frozen=True)
class Tile:
    id: int
    label: str | None
    path: str
    status: str
    has_file: bool
    flag: Flag | None
    score: float | None  # outlier score (mean percentile), when the index exists
    unusual: bool  # over the outlier threshold
    extra: float | None = None  # the view's own number (suggestion score)
    version: str | None = None  # content hash prefix: pins the thumbnail URL (immutable cache)
    held_out: bool = False  # in the held-out split: never trained on (core/holdout.py)


@dataclass(frozen=True)
class DatasetPage:
    view: str
    page: int
    pages: int
    total: int
    tiles: list[Tile]
    groups: list[list[Tile]] = field(default_factory=list)
    mode: int | None = None
    modes: list[tuple[int, int]] = field(default_factory=list)  # (bin, size)
    notice: str | None = None
    method: str | None = None
    review: dict[str, int] | None = None  # "more like these": flagged and kept so far
    counts: dict[str, int] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    computing: bool = False  # an analysis is still running: the page reloads itself


@dataclass(frozen=True)
class ImageDetail:
    tile: Tile
    row: ImageRow
    rank: int | None
    ranked_of: int | None
    mode: int | None
    mode_size: int | None
    duplicates: list[Tile]
    notice: str | None
    nearest: dict[str, list[Tile]] = field(default_factory=dict)  # layer -> tiles (extra = cos)


def _version(file: str | None) -> str | None:
    """The file's content-hash stem, shortened (string ops: a PurePosixPath per tile showed in
    grid-page profiles, docs/reliability.md)."""
    if not file:
        return None
    name = file.rpartition("/")[2]
    return (name.rpartition(".")[0] or name)[:16]


def _pages(total: int, size: int, page: int) -> tuple[int, int]:
    pages = max(1, math.ceil(total / size))
    return min(max(1, page), pages), pages


class DatasetView:
    def __init__(self, flags: FlagStore, curation: Curation) -> None:
        self.flags = flags
        self.curation = curation

    def _scores(self) -> tuple[dict[int, float], set[int]]:
        try:
            out = self.curation.outliers()
        except (AnalysisUnavailable, Computing):
            return {}, set()
        return out.score, out.suggested

    def tiles(self, ids: list[int], extra: dict[int, float] | None = None) -> list[Tile]:
        rows = self.flags.images(ids)
        flags = self.flags.flags(ids)
        score, unusual = self._scores()
        extra = extra or {}
        with self.flags.reading() as catalog:
            held = catalog.held_out_ids()
        return [Tile(i, rows[i].label, rows[i].path, rows[i].status, rows[i].file is not None,
                     flags.get(i), score.get(i), i in unusual, extra.get(i),
                     _version(rows[i].file), i in held)
                for i in ids if i in rows]

    def counts(self) -> dict[str, int]:
        """ok images, flagged, held out, and the curated set (neither flagged nor held out)."""
        with self.flags.reading() as catalog:
            ok = catalog.counts()["ok"]
            flagged, held = catalog.flagged_ids(), catalog.held_out_ids()
        return {"ok": ok, "flagged": len(flagged), "held_out": len(held),
                "curated": ok - len(flagged | held)}

    def page(self, view: str, page: int, size: int, mode: int | None = None) -> DatasetPage:
        if view not in VIEWS:
            raise NotFound(f"no dataset view {view!r}; use one of {', '.join(VIEWS)}")
        counts = self.counts()
        try:
            result = getattr(self, f"_{view}")(page, size, mode, counts)
        except AnalysisUnavailable as exc:
            result = DatasetPage(view, 1, 1, 0, [], notice=exc.detail)
        except Computing as exc:
            result = DatasetPage(view, 1, 1, 0, [], notice=exc.detail, computing=True)
        return DatasetPage(**{**result.__dict__, "counts": counts,
                              "costs": self.curation.costs()})

    def _all(self, page: int, size: int, _: int | None,
            counts: dict[str, int]) -> DatasetPage:
        total = counts["ok"]
        page, pages = _pages(total, size, page)
        with self.flags.reading() as catalog:
            ids = [r.id for r in catalog.images("ok", limit=size, offset=(page - 1) * size)]
        return DatasetPage("all", page, pages, total, self.tiles(ids))

    def _flagged(self, page: int, size: int, _: int | None,
            counts: dict[str, int]) -> DatasetPage:
        total = self.flags.flagged_page(0, 0)[1]
        page, pages = _pages(total, size, page)
        rows, total = self.flags.flagged_page(size, (page - 1) * size)
        return DatasetPage("flagged", page, pages, total, self.tiles([r.id for r in rows]))

    def _outliers(self, page: int, size: int, _: int | None,
            counts: dict[str, int]) -> DatasetPage:
        ranked = self.curation.outliers().ranked
        page, pages = _pages(len(ranked), size, page)
        ids = ranked[(page - 1) * size:page * size]
        return DatasetPage("outliers", page, pages, len(ranked), self.tiles(ids))

    def _modes(self, page: int, size: int, mode: int | None,
            counts: dict[str, int]) -> DatasetPage:
        modes = self.curation.modes()
        mode = 0 if mode is None or not 0 <= mode < modes.k else mode
        members = modes.members[mode]
        page, pages = _pages(len(members), size, page)
        ids = members[(page - 1) * size:page * size]
        return DatasetPage("modes", page, pages, len(members), self.tiles(ids), mode=mode,
                           modes=[(b, len(m)) for b, m in enumerate(modes.members)])

    def _duplicates(self, page: int, _size: int, __: int | None,
            counts: dict[str, int]) -> DatasetPage:
        groups = self.curation.duplicates().groups
        page, pages = _pages(len(groups), GROUPS_PER_PAGE, page)
        shown = groups[(page - 1) * GROUPS_PER_PAGE:page * GROUPS_PER_PAGE]
        tiles = {t.id: t for t in self.tiles([i for g in shown for i in g])}
        return DatasetPage("duplicates", page, pages, len(groups), [],
                           groups=[[tiles[i] for i in g if i in tiles] for g in shown])

    def _suggest(self, page: int, size: int, _: int | None,
            counts: dict[str, int]) -> DatasetPage:
        if not counts["flagged"]:
            raise AnalysisUnavailable("flag a few images first: suggestions are the unflagged "
                                      "images that look most like the flagged ones")
        sug = self.curation.suggestions()
        return DatasetPage("suggest", 1, 1, len(sug.ids), self.tiles(sug.ids, sug.score),
                           method=sug.method, review={"flagged": sug.flagged, "kept": sug.kept,
                                                      "reviewed": sug.flagged + sug.kept})

    def nearest(self, image_id: int, indexes: IndexCache, k: int = NEAREST_SHOWN
                ) -> dict[str, list[Tile]]:
        """The k most similar other training images on each layer (cosine, the open FAISS
        indexes); empty for an image ingested after the last `modescope index`."""
        opened = indexes.get("train")
        one_query_thread()
        out: dict[str, list[Tile]] = {}
        for layer in ("block5", "block1"):
            vi = opened.layers[layer]
            try:
                vec = vi.reconstruct(image_id)[None, :]
            except KeyError:
                return {}
            sims, ids = vi.search(vec, k, [image_id])
            found = [(int(i), float(v)) for v, i in zip(sims[0], ids[0], strict=True) if i >= 0]
            out[layer] = self.tiles([i for i, _ in found], dict(found))
        return out

    def image(self, image_id: int, indexes: IndexCache | None = None) -> ImageDetail:
        tiles = self.tiles([image_id])
        if not tiles or tiles[0].status != "ok":
            raise NotFound(f"no training image with id {image_id}")
        row = self.flags.images([image_id])[image_id]
        notice = None
        rank = ranked_of = mode = mode_size = None
        dups: list[Tile] = []
        try:
            outliers = self.curation.outliers()
            if image_id in outliers.score:
                rank = outliers.ranked.index(image_id) + 1
                ranked_of = len(outliers.ranked)
            modes = self.curation.modes()
            mode = modes.bin_of.get(image_id)
            mode_size = len(modes.members[mode]) if mode is not None else None
            duplicates = self.curation.duplicates()
            group = duplicates.group_of.get(image_id)
            if group is not None:
                dups = self.tiles([i for i in duplicates.groups[group] if i != image_id])
        except (AnalysisUnavailable, Computing) as exc:
            notice = exc.detail
        nearest: dict[str, list[Tile]] = {}
        if indexes is not None and notice is None:
            try:
                nearest = self.nearest(image_id, indexes)
            except NotIndexed as exc:
                notice = exc.detail
        return ImageDetail(tiles[0], row, rank, ranked_of, mode, mode_size, dups, notice,
                           nearest)


def open_dataset(workspace: Workspace, wait_s: float = 10.0) -> DatasetView:
    """The dataset side of the app (no I/O until a page asks)."""
    flags = FlagStore(workspace)
    return DatasetView(flags, Curation(workspace, flags, wait_s))
