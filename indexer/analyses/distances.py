"""Fréchet distance and unbiased KID (indexer/frechet.py) of a run's samples to the curated
training set on each layer, beside the held-out real images' figures (the reference row).
FD and KID on block5 are scored at each checkpoint too. These are VGG16 descriptors, so the
figures are not comparable with published (Inception) FID or KID."""

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
    from modescope.core.workspace import Workspace

LAYERS = ("block1", "block5")
CHECKPOINT_LAYER = "block5"
UNIT_GAMMA = 1.0  # KID's kernel (cos + 1)^3 on unit vectors (indexer/frechet.py says why)
FEATURES = ("L2-normalised, pooled VGG16 descriptors (modescope's index), not Inception-v3: "
            "not comparable with published FID/KID")


@dataclass(frozen=True)
class Distances(JsonRecord):
    n: int  # images scored: the run's samples, or the held-out images of the reference row
    fd: float
    fd_ci95: tuple[float, float]  # FD +- 1.96 bootstrap standard deviations (over samples)
    kid: float  # unbiased MMD^2, kernel (cos + 1)^3
    kid_se: float  # two-sample delete-one jackknife


@dataclass(frozen=True)
class LayerDistances(JsonRecord):
    layer: str
    dim: int
    n_train: int
    samples: Distances
    reference: Distances | None  # held-out real images; None: nothing held out
    note: str | None  # fewer images than dimensions: covariances are rank-deficient


@dataclass(frozen=True)
class DistancesResult(JsonRecord):
    run: str
    weights: str
    trained: bool
    warning: str | None
    features: str
    bootstrap: int
    seed: int
    reference: str | None
    layers: tuple[LayerDistances, ...]


def _distances(gauss: Any, kernel: Any, vecs: Any, bootstrap: int, seed: int) -> dict[str, Any]:
    from modescope.indexer import frechet

    fd = frechet.fd_with_interval(gauss, vecs, replicas=bootstrap, seed=seed)
    kid = kernel.kid(vecs)
    return {"n": len(vecs), "fd": round(fd.value, 5),
            "fd_ci95": [round(v, 5) for v in fd.ci95],
            "kid": round(kid.value, 7), "kid_se": round(kid.se, 7)}


def compute(ws: Workspace, run: str, *, bootstrap: int = 50, seed: int = 0,
            include_flagged: bool = False) -> DistancesResult:
    from modescope.indexer import frechet
    from modescope.indexer.inputs import header, held_out_reference, run_vectors

    tids, tv, tmeta, _, gv = run_vectors(ws, run, include_flagged)
    reference = held_out_reference(ws, run)
    usable = reference is not None and len(reference.ids) >= 3
    layers = []
    for layer in LAYERS:
        gauss = frechet.TrainGaussian(tv[layer])
        kernel = frechet.TrainKernel(tv[layer], gamma=UNIT_GAMMA)
        layers.append({
            "layer": layer, "dim": int(tv[layer].shape[1]), "n_train": len(tids),
            "samples": _distances(gauss, kernel, gv[layer], bootstrap, seed),
            "reference": _distances(gauss, kernel, reference.vectors[layer], bootstrap, seed)
            if usable and reference is not None else None,
            "note": _rank_note(len(tids), len(gv[layer]), int(tv[layer].shape[1]))})
    return DistancesResult.from_json({
        "run": run, **header(tmeta), "features": FEATURES, "bootstrap": bootstrap,
        "seed": seed,
        "reference": (f"{len(reference.ids)} held-out real images (never trained on)"
                      if usable and reference is not None else None),
        "layers": layers})


def _rank_note(n_train: int, n_samples: int, dim: int) -> str | None:
    if min(n_train, n_samples) > dim:
        return None
    return (f"{min(n_train, n_samples)} images for {dim} dimensions: the covariances are "
            "rank-deficient and FD is mostly its small-sample bias; compare runs only at "
            "equal numbers of images")


def prepare_checkpoint(training: TrainingSet) -> Scorer:
    """The training Gaussian (and its square root) and kernel sums on block5, once per job;
    each checkpoint's FD by the eigenvalue form (equal to sqrtm's, indexer/frechet.py)."""
    from modescope.indexer import frechet

    train = training.vecs[CHECKPOINT_LAYER]
    if len(train) < 3:
        return lambda samples: {}
    gauss = frechet.TrainGaussian(train)
    kernel = frechet.TrainKernel(train, gamma=UNIT_GAMMA)

    def score(samples: Samples) -> dict[str, Any]:
        vecs = samples.features[CHECKPOINT_LAYER]
        if len(vecs) < 3:
            return {}
        return {f"fd_{CHECKPOINT_LAYER}": round(gauss.fd_fast(vecs), 5),
                f"kid_{CHECKPOINT_LAYER}": round(kernel.kid(vecs).value, 7)}

    return score


def _row(label: str, d: Distances) -> str:
    lo, hi = d.fd_ci95
    return (f"  {label} ({d.n}): FD {d.fd:.4f} ({lo:.4f}-{hi:.4f}), "
            f"KID {d.kid:.6f} +- {d.kid_se:.6f} (SE)")


def lines(r: DistancesResult, _: Mapping[str, Any]) -> list[str]:
    out = [f"run {r.run}: Fréchet distance and KID to the training set ({r.features})"]
    for x in r.layers:
        out.append(f"{x.layer} ({x.dim} dimensions, {x.n_train} training images):")
        out.append(_row("samples", x.samples))
        if x.reference is not None:
            out.append(_row("held-out reference", x.reference))
        if x.note:
            out.append(f"  note: {x.note}")
    if r.reference is None:
        out.append("no reference row: nothing is held out in this workspace")
    return out


def _bootstrap(value: int) -> int:
    if value < 0:
        raise InputError("--bootstrap must be 0 (no interval) or more")
    return value


ANALYSIS = AnalysisSpec(
    name="distances", title="Fréchet distance and KID", version=1, rank=40,
    compute=compute, result_type=DistancesResult,
    inputs=Inputs(train=True, generated=True, flags=True, run=True),
    cli=Cli(help="Fréchet distance and unbiased KID to the training set on each layer (VGG16 "
                 "descriptors: not comparable with published FID), with a held-out reference.",
            label="distances (FD, KID)", lines=lines, options=(
                Option("bootstrap", int, 50, "Bootstrap replicas for FD's interval.",
                       parse=_bootstrap),
                Option("seed", int, 0, "Bootstrap seed."),
                INCLUDE_FLAGGED)),
    checkpoint=Checkpoint(prepare=prepare_checkpoint, timer="distances"),
)
