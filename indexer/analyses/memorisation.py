"""Memorisation (indexer/memorisation.py): is each sample new, close, or a copy of a training
image (features find the nearest image, pixels decide); which training images are hubs; the
copy rate is scored at each checkpoint too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modescope.core.errors import InputError
from modescope.indexer.analyses.registry import (
    INCLUDE_FLAGGED,
    AnalysisSpec,
    Checkpoint,
    Cli,
    Inputs,
    Option,
    Samples,
    Scorer,
    TrainingSet,
)
from modescope.indexer.analyses.results import JsonRecord
from modescope.indexer.memorisation import SampleRow

if TYPE_CHECKING:
    from modescope.core.workspace import Workspace


@dataclass(frozen=True)
class Hub(JsonRecord):
    id: int  # a training image
    count: int  # samples whose nearest training image it is
    copies: int  # of which copies


@dataclass(frozen=True)
class MemorisationResult(JsonRecord):
    run: str
    weights: str
    trained: bool
    warning: str | None
    copy_ratio_threshold: float
    pixel_threshold: float | None
    verified_in_pixels: bool
    close: int
    n_samples: int
    copies: int
    copy_rate: float
    expected_hub_count: float
    samples: tuple[SampleRow, ...]
    hubness: tuple[Hub, ...]  # most-copied first


def compute(ws: Workspace, run: str, *, threshold: float | None = None,
            pixel_threshold: float | None = None,
            include_flagged: bool = False) -> MemorisationResult:
    from modescope.indexer import copycheck, memorisation
    from modescope.indexer.inputs import header, pixel_verifier, run_vectors

    tids, tv, tmeta, gids, gv = run_vectors(ws, run, include_flagged)
    found = memorisation.memorisation(
        tv, tids, gv, gids,
        copy_ratio=memorisation.COPY_RATIO if threshold is None else threshold,
        verify=pixel_verifier(ws, run),
        pixel_threshold=copycheck.PIXEL_COPY if pixel_threshold is None else pixel_threshold)
    return MemorisationResult.from_json({"run": run, **header(tmeta), **found})


def prepare_checkpoint(training: TrainingSet) -> Scorer:
    """The pixel check against the training images, each loaded and blurred once per job."""
    import numpy as np

    from modescope.indexer import copycheck, memorisation
    from modescope.indexer.store import source_items

    files = {it.id: it.file for it in source_items(training.ws, "train")}
    blurred: dict[int, np.ndarray] = {}

    def train_image(image_id: int) -> np.ndarray:
        if image_id not in blurred:
            blurred[image_id] = copycheck.blurred(copycheck.load_rgb(files[image_id],
                                                                     training.size))
        return blurred[image_id]

    def score(samples: Samples) -> dict[str, Any]:
        mine = [copycheck.blurred(im.astype(np.float32)) for im in samples.images]

        def verify(sample: int, train_id: int) -> copycheck.Match:
            return copycheck.compare(mine[sample], train_image(train_id))

        found = memorisation.memorisation(training.vecs, training.ids, samples.features,
                                          samples.ids, verify=verify)
        return {"copy_rate": found["copy_rate"]}

    return score


def lines(r: MemorisationResult, o: Mapping[str, Any]) -> list[str]:
    top = o["top"]
    copies = sorted((s for s in r.samples if s.verdict == "copy"),
                    key=lambda s: s.pixel_difference or 0.0)
    return [
        f"run {r.run}: {r.copies} of {r.n_samples} samples are copies "
        f"(copy rate {r.copy_rate:.1%}: pixels within {o['pixel_threshold']:g}/255 of their "
        f"nearest training image); {r.close} more are close in features "
        f"(authenticity ratio < {o['threshold']:g})",
        *[f"  sample {s.sample} copies training image #{s.nearest} "
          f"(pixel difference {s.pixel_difference:.1f}, ratio {s.authenticity:.3f})"
          for s in copies[:top]],
        "most-copied training images (hubness; "
        f"{r.expected_hub_count:.2f} expected each):",
        *[f"  #{h.id}: nearest to {h.count} samples ({h.copies} copies)"
          for h in r.hubness[:top]],
    ]


def _pixels(value: float) -> float:
    if not 0 < value <= 255:
        raise InputError("--pixel-threshold must be in (0, 255]")
    return value


ANALYSIS = AnalysisSpec(
    name="memorisation", title="memorisation", version=1, rank=20, compute=compute,
    result_type=MemorisationResult,
    inputs=Inputs(train=True, generated=True, flags=True, run=True),
    cli=Cli(help="Copies: each sample's nearest training image, authenticity ratio, verdict; "
                 "hubness.", lines=lines, options=(
                Option("threshold", float, 0.5, "Authenticity ratio under which a sample that "
                       "is no pixel copy is 'close'."),
                Option("pixel_threshold", float, 10.0, "Largest blurred patch difference "
                       "(0-255) under which a sample is a copy.", parse=_pixels),
                Option("top", int, 10, "Hubs and copies to print.", display_only=True),
                INCLUDE_FLAGGED)),
    checkpoint=Checkpoint(prepare=prepare_checkpoint, timer="memorisation"),
)
