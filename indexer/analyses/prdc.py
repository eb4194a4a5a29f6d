"""Precision, recall, density and coverage (indexer/prdc.py) of a run's samples against the
curated training set on each layer, beside a reference row: the held-out real images scored
the same way (what a generator that draws from the data itself gets here). Each training
image's reach (samples inside its k-NN ball) backs the never-reached page. Coverage, precision,
recall and density on block5 are scored at each checkpoint too."""

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

if TYPE_CHECKING:
    import numpy as np

    from modescope.core.workspace import Workspace

LAYERS = ("block1", "block5")
INTERVAL = ("95% normal interval, delete-one jackknife over the scored images, conditional on "
            "the training set")
CHECKPOINT_LAYER = "block5"


@dataclass(frozen=True)
class Scores(JsonRecord):
    n: int  # images scored: the run's samples, or the held-out images of the reference row
    precision: float
    precision_ci95: tuple[float, float]
    recall: float
    recall_ci95: tuple[float, float]
    density: float
    density_ci95: tuple[float, float]
    coverage: float
    coverage_ci95: tuple[float, float]
    expected_coverage: float  # of a generator matching the data, at these sizes (Naeem Lemma 2)


@dataclass(frozen=True)
class LayerPRDC(JsonRecord):
    layer: str
    k: int
    n_train: int
    n_samples: int
    samples: Scores
    reference: Scores | None  # held-out real images scored like samples; None: none held out
    never_reached: int  # training images with no sample inside their ball
    reach: dict[int, int]  # training id -> samples inside its k-NN ball
    exact: bool  # False: a large training set, its balls read from approximate nearest lists


@dataclass(frozen=True)
class PRDCResult(JsonRecord):
    run: str
    weights: str
    trained: bool
    warning: str | None
    k: int
    interval: str
    reference: str | None  # what the reference row is, or None when nothing is held out
    n_reference: int
    layers: tuple[LayerPRDC, ...]

    def layer(self, name: str) -> LayerPRDC:
        return next(x for x in self.layers if x.layer == name)


def _scores(found: Any) -> dict[str, Any]:
    from modescope.indexer.prdc import expected_coverage

    out: dict[str, Any] = {"n": found.n_samples}
    for name in ("precision", "recall", "density", "coverage"):
        s = getattr(found, name)
        out[name] = round(s.value, 4)
        out[f"{name}_ci95"] = [round(v, 4) for v in s.ci95]
    out["expected_coverage"] = round(expected_coverage(found.n_train, found.n_samples,
                                                       found.k), 4)
    return out


def compute(ws: Workspace, run: str, *, k: int = 5,
            include_flagged: bool = False) -> PRDCResult:
    from modescope.indexer import prdc
    from modescope.indexer.inputs import header, held_out_reference, run_vectors

    tids, tv, tmeta, _, gv = run_vectors(ws, run, include_flagged)
    reference = held_out_reference(ws, run)
    layers = []
    for layer in LAYERS:
        radii = prdc.knn_radii(tv[layer], k)
        found = prdc.prdc(tv[layer], gv[layer], k, train_radii=radii)
        ref = (prdc.prdc(tv[layer], reference.vectors[layer], k, train_radii=radii)
               if reference is not None and len(reference.ids) >= k + 2 else None)
        layers.append({
            "layer": layer, "k": k, "n_train": len(tids), "n_samples": found.n_samples,
            "samples": _scores(found), "reference": _scores(ref) if ref else None,
            "never_reached": int((found.reach == 0).sum()),
            "reach": dict(zip(tids.tolist(), found.reach.tolist(), strict=True)),
            "exact": found.exact})
    n_ref = len(reference.ids) if reference is not None else 0
    return PRDCResult.from_json({
        "run": run, **header(tmeta), "k": k, "interval": INTERVAL,
        "reference": (f"{n_ref} held-out real images (never trained on), scored against the "
                      "training set like the samples" if layers[0]["reference"] else None),
        "n_reference": n_ref, "layers": layers})


def prepare_checkpoint(training: TrainingSet) -> Scorer:
    """The training images' k-NN radii on block5, found once per job."""
    from modescope.indexer import prdc

    train = training.vecs[CHECKPOINT_LAYER]
    if len(train) < prdc.DEFAULT_K + 2:
        return lambda samples: {}
    radii = prdc.knn_radii(train, prdc.DEFAULT_K)

    def score(samples: Samples) -> dict[str, Any]:
        vecs: np.ndarray = samples.features[CHECKPOINT_LAYER]
        if len(vecs) < prdc.DEFAULT_K + 2:
            return {}
        found = prdc.prdc(train, vecs, prdc.DEFAULT_K, train_radii=radii)
        return {f"{name}_{CHECKPOINT_LAYER}": round(getattr(found, name).value, 4)
                for name in ("precision", "recall", "density", "coverage")}

    return score


def _row(label: str, s: Scores) -> str:
    def one(name: str) -> str:
        lo, hi = getattr(s, f"{name}_ci95")
        return f"{name} {getattr(s, name):.3f} ({lo:.3f}-{hi:.3f})"

    return f"  {label}: " + ", ".join(one(n) for n in ("precision", "recall", "density",
                                                        "coverage"))


def lines(r: PRDCResult, _: Mapping[str, Any]) -> list[str]:
    out = [f"run {r.run}: precision, recall, density, coverage (k = {r.k}; {r.interval})"]
    for x in r.layers:
        out.append(f"{x.layer}: {x.n_samples} samples vs {x.n_train} training images; "
                   f"{x.never_reached} training images never reached")
        out.append(_row("samples", x.samples))
        if x.reference is not None:
            out.append(_row(f"held-out reference ({x.reference.n} images)", x.reference))
        out.append(f"  coverage expected of a generator matching the data: "
                   f"{x.samples.expected_coverage:.3f} at {x.n_samples} samples"
                   + (f", {x.reference.expected_coverage:.3f} at {x.reference.n} held-out"
                      if x.reference is not None else ""))
    if r.reference is None:
        out.append("no reference row: nothing is held out in this workspace")
    return out


def _k(value: int) -> int:
    if value < 1:
        raise InputError("--k must be at least 1")
    return value


ANALYSIS = AnalysisSpec(
    name="prdc", title="precision, recall, density and coverage", version=2, rank=30,
    compute=compute, result_type=PRDCResult,
    inputs=Inputs(train=True, generated=True, flags=True, run=True),
    cli=Cli(help="Precision, recall, density and coverage (k-NN balls) on each layer, with the "
                 "held-out images as a reference row.",
            label="prdc (precision/recall/density/coverage)", lines=lines, options=(
                Option("k", int, 5, "Neighbours that set each ball's radius.", flags=("--k",),
                       parse=_k),
                INCLUDE_FLAGGED)),
    checkpoint=Checkpoint(prepare=prepare_checkpoint, timer="prdc"),
)
