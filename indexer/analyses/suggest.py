"""Suggestions, "more like these" (indexer/curation.py): unflagged training images that
resemble the flagged ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modescope.core.errors import InputError
from modescope.indexer.analyses.registry import AnalysisSpec, Cli, Inputs, Option
from modescope.indexer.analyses.results import JsonRecord

if TYPE_CHECKING:
    from modescope.core.workspace import Workspace


@dataclass(frozen=True)
class Suggestion(JsonRecord):
    id: int
    score: float


@dataclass(frozen=True)
class SuggestResult(JsonRecord):
    weights: str
    trained: bool
    warning: str | None
    method: str  # "logistic regression" or "nearest flagged image"
    flagged: int
    kept: int
    suggestions: tuple[Suggestion, ...]  # most like the flagged ones first


def compute(ws: Workspace, run: None, *, kept: set[int] | None = None,
            flagged: set[int] | None = None, top: int = 20) -> SuggestResult:
    from modescope.core.catalog import Catalog
    from modescope.indexer import curation
    from modescope.indexer.inputs import header, load_vectors

    ids, vecs, meta = load_vectors(ws, "train")
    if flagged is None or kept is None:
        with Catalog.reading(ws.catalog_path) as catalog:
            flagged = catalog.flagged_ids() if flagged is None else flagged
            kept = catalog.kept_ids() if kept is None else kept
    if not flagged:
        raise InputError("no training image is flagged yet: flag a few (`modescope flag ID...` "
                         "or in the app) and ask again")
    found = curation.suggest(vecs, ids, flagged, kept, top=top)
    return SuggestResult.from_json({**header(meta), **found})


def lines(r: SuggestResult, _: Mapping[str, Any]) -> list[str]:
    return [
        f"{len(r.suggestions)} suggestions from {r.flagged} flags ({r.method}):",
        *[f"  #{s.id}: {s.score:.4f}" for s in r.suggestions],
    ]


def _ids(option: str) -> Callable[[str | None], set[int] | None]:
    def parse(text: str | None) -> set[int] | None:
        try:
            return {int(v) for v in text.split(",") if v.strip()} if text else None
        except ValueError:
            raise InputError(f"{option} takes comma-separated image ids, e.g. 12,40,41"
                             ) from None
    return parse


ANALYSIS = AnalysisSpec(
    name="suggest", title="suggestions", version=2, rank=50, compute=compute,
    result_type=SuggestResult, inputs=Inputs(train=True, flags=True),
    cli=Cli(help="More like these: unflagged training images that resemble the flagged ones.",
            label="suggestions", lines=lines, options=(
                Option("kept", str | None, None,
                       "Comma-separated ids the user reviewed and kept (good examples): "
                       "negatives of the model, never suggested again (default: those kept "
                       "in the app).",
                       parse=_ids("--kept")),
                Option("flagged", str | None, None,
                       "Comma-separated ids to take as the flagged ones (default: the "
                       "catalog's flags).", parse=_ids("--flagged")),
                Option("top", int, 20, "How many suggestions."))),
)
