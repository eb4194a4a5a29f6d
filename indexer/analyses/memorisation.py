"""Memorisation (indexer/memorisation.py): is each sample new, close, or a copy of a training
image, calibrated on held-out real images; the data-copying test C_T (indexer/datacopying.py);
which training images are hubs; the copy rate is scored at each checkpoint too."""

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
from modescope.indexer.memorisation import PIXEL_GATE, PIXEL_TWIN, TWIN_RATIO, SampleRow

if TYPE_CHECKING:
    from modescope.core.workspace import Workspace


@dataclass(frozen=True)
class Hub(JsonRecord):
    id: int  # a training image
    count: int  # samples whose nearest training image it is
    copies: int  # samples that copy it (``SampleRow.copied``; nearest to it or not)


@dataclass(frozen=True)
class DataCopyingTest(JsonRecord):
    """Meehan et al. 2020's C_T (indexer/datacopying.py): < -2 copying, > +2 under-fitting."""

    c_t: float | None
    cells: int
    cells_used: int
    z_u: tuple[float | None, ...]


@dataclass(frozen=True)
class MemorisationResult(JsonRecord):
    run: str
    weights: str
    trained: bool
    warning: str | None
    reference: str  # "held-out" or "training, leave-one-out"
    n_reference: int
    reference_near_duplicates: int  # held-out images left out: near-twins of training images
    copy_level: float
    close_level: float
    copy_possible: bool  # enough reference images to call a copy at copy_level
    verified_in_pixels: bool  # the pixel difference is one of the calibrated measures
    n_samples: int
    copies: int
    copy_rate: float
    near_duplicates: int  # samples that are twins of a training image (``twin_rule``)
    twin_ratio: float  # without pixels, a twin: on both layers within this x the median NN distance
    pixel_twin: float | None  # with pixels, a twin: pixel difference under this (a copy)
    twin_rule: str  # the rule in words
    pixel_gate: float | None  # with pixels: compared where within this x the median NN distance
    pixel_gate_rule: str | None  # which images were compared in pixels, in words
    compared_in_pixels: int  # samples compared in pixels with their nearest training images
    close: int
    reference_p1_distance: float  # the reference images' 1st-percentile distance (combined)
    closer_than_reference_p1: float  # share of samples closer than that (1 % if honest)
    expected_hub_count: float
    data_copying: DataCopyingTest
    samples: tuple[SampleRow, ...]
    hubness: tuple[Hub, ...]  # most-copied first


def compute(ws: Workspace, run: str, *, include_flagged: bool = False,
            twin_ratio: float = TWIN_RATIO, pixel_twin: float = PIXEL_TWIN,
            pixel_gate: float = PIXEL_GATE) -> MemorisationResult:
    from modescope.indexer import memorisation
    from modescope.indexer.inputs import (
        header,
        held_out_reference,
        pixel_verifier,
        run_vectors,
        training_images,
    )

    tids, tv, tmeta, gids, gv = run_vectors(ws, run, include_flagged)
    train = training_images(ws)  # one cache for the held-out images' and the samples' checks
    reference = held_out_reference(ws, run, train)
    found = memorisation.memorisation(tv, tids, gv, gids, reference=reference,
                                      verify=pixel_verifier(ws, run, train), twin_ratio=twin_ratio,
                                      pixel_twin=pixel_twin, pixel_gate=pixel_gate)
    return MemorisationResult.from_json({
        "run": run, **header(tmeta), **found,
        "data_copying": _data_copying(tv, reference.vectors if reference else None, gv)})


def _data_copying(train: Mapping[str, Any], reference: Mapping[str, Any] | None,
                  samples: Mapping[str, Any]) -> dict[str, Any]:
    from modescope.indexer import datacopying
    from modescope.indexer.ndb import combined

    if reference is None:
        return {"c_t": None, "cells": 0, "cells_used": 0, "z_u": []}
    found = datacopying.c_t(*(combined(v["block1"], v["block5"])
                              for v in (train, reference, samples)))
    return {"c_t": found.c_t, "cells": found.cells, "cells_used": found.cells_used,
            "z_u": list(found.z_u)}


def prepare_checkpoint(training: TrainingSet) -> Scorer:
    """The calibration against the held-out images (pixels included), made once per job; each
    checkpoint's samples are compared in pixels with their nearest training image in memory."""
    import numpy as np

    from modescope.core.errors import ModescopeError
    from modescope.indexer import copycheck, memorisation
    from modescope.indexer.inputs import held_out_reference, training_images

    try:
        reference = held_out_reference(training.ws)
    except ModescopeError:  # no catalog or train index: calibrate on the training set
        reference = None
    train_image = training_images(training.ws, training.size) if reference else None

    calibration = memorisation.calibrate(training.vecs, training.ids, reference)
    pixels = "pixels" in calibration.names

    def score(samples: Samples) -> dict[str, Any]:
        mine = [copycheck.blurred(im.astype(np.float32)) for im in samples.images] \
            if pixels else []

        def verify(sample: int, train_id: int) -> copycheck.Match:
            assert train_image is not None  # pixels are calibrated only with a reference
            return copycheck.compare(mine[sample], train_image(train_id))

        found = memorisation.memorisation(training.vecs, training.ids, samples.features,
                                          samples.ids, calibration=calibration,
                                          verify=verify if pixels else None)
        return {"copy_rate": found["copy_rate"]}

    return score


def lines(r: MemorisationResult, o: Mapping[str, Any]) -> list[str]:
    top = o["top"]
    copies = sorted((s for s in r.samples if s.verdict == "copy"), key=lambda s: s.p_value)
    ct = r.data_copying.c_t
    out = [
        f"run {r.run}: {r.copies} of {r.n_samples} samples are copies "
        f"(copy rate {r.copy_rate:.1%}: closer to the training set than "
        f"{1 - r.copy_level:.0%} of {r.n_reference} unseen real images [{r.reference}]); "
        f"{r.close} more are close (than {1 - r.close_level:.0%})",
        f"  {r.closer_than_reference_p1:.1%} of samples are closer than the unseen images' 1st "
        "percentile (1 % expected of an honest generator)",
        "  data-copying test C_T (Meehan et al. 2020): " + (
            f"{ct:+.2f} over {r.data_copying.cells_used} of {r.data_copying.cells} cells "
            "(below -2: copying; above +2: under-fitting)" if ct is not None
            else "not available (needs held-out images and 10 samples in a cell)"),
    ]
    if r.pixel_gate_rule is not None:
        out.append(f"  {r.compared_in_pixels} of {r.n_samples} samples compared in pixels with "
                   f"their nearest training images ({r.pixel_gate_rule})")
    if r.near_duplicates:
        out.append(f"  {r.near_duplicates} samples are twins of a training image "
                   f"({r.twin_rule})")
    if r.reference_near_duplicates:
        out.append(f"  {r.reference_near_duplicates} held-out images are twins of training "
                   "images and were left out of the reference")
    if not r.copy_possible:
        out.append(f"  warning: only {r.n_reference} reference images: a copy cannot be called "
                   f"at {r.copy_level:.0%}; ingest more images or raise --holdout")
    out += [f"  sample {s.sample} copies training image #{s.copied} (p {s.p_value:.4f}, "
            f"similarity {s.similarity:.4f}"
            + (", a twin" if s.near_duplicate else "")
            + (f", pixel difference {s.pixel_difference:.1f}/255)"
               if s.pixel_difference is not None else ")")
            for s in copies[:top]]
    out += ["most-copied training images (hubness; "
            f"{r.expected_hub_count:.2f} expected each):",
            *[f"  #{h.id}: nearest to {h.count} samples, copied by {h.copies}"
              for h in r.hubness[:top]]]
    return out


def _gate(value: float) -> float:
    if not 0 <= value <= 100:
        raise InputError("--pixel-gate must be between 0 and 100 (a share of the median "
                         "nearest-neighbour distance; 0 compares every image)")
    return value


def _ratio(value: float) -> float:
    if not 0 <= value <= 1:
        raise InputError("--twin-ratio must be between 0 and 1")
    return value


def _pixels(value: float) -> float:
    if not 0 <= value <= 255:
        raise InputError("--pixel-twin must be between 0 and 255 (a difference on 0-255 RGB)")
    return value


ANALYSIS = AnalysisSpec(
    name="memorisation", title="memorisation", version=8, rank=20, compute=compute,
    result_type=MemorisationResult,
    inputs=Inputs(train=True, generated=True, flags=True, run=True),
    cli=Cli(help="Copies: each sample's nearest training image and how it compares with unseen "
                 "(held-out) real images; verdict; data-copying test; hubness.",
            lines=lines, options=(
                Option("top", int, 10, "Hubs and copies to print.", display_only=True),
                Option("pixel_twin", float, PIXEL_TWIN,
                       "Twins of training images, the same picture: pixel difference under "
                       "this (0-255) after alignment; left out of the reference, and a sample "
                       "that is one is a copy (0: none).", parse=_pixels),
                Option("pixel_gate", float, PIXEL_GATE,
                       "Compare in pixels the images within this x the median nearest-"
                       "neighbour distance of a training image on block1 or block5 (0: every "
                       "image).", parse=_gate),
                Option("twin_ratio", float, TWIN_RATIO,
                       "Twins when images cannot be compared in pixels: on both layers closer "
                       "than this share of the median nearest-neighbour distance (0: none).",
                       parse=_ratio),
                INCLUDE_FLAGGED)),
    checkpoint=Checkpoint(prepare=prepare_checkpoint, timer="memorisation"),
)
