"""Experiments: a set of training runs that differ in one factor, and their comparison.

An experiment is ``experiments/<NAME>.json`` in the workspace: the factor, its values, the
options every run shares, and the run names. Each run is an ordinary run folder
(``runs/<NAME>-<factor>-<value>/``), trained by ``modescope train`` with per-checkpoint
evaluation, so its ``metrics.jsonl`` holds NDB/K, JS, copy rate and dropped modes over epochs.
This module plans runs and summarises them; it imports neither TensorFlow nor the trainer's
loop (the web app reads it), only the trainer's config to validate options.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modescope.core.errors import InputError, NotFound
from modescope.core.files import atomic_write_bytes
from modescope.core.runfolder import check_run_name
from modescope.core.training import SIZES, TrainRequest
from modescope.core.workspace import Workspace

FACTORS = {
    "fraction": "share of the curated set, a seeded random subset (e.g. 0.33,0.67,1)",
    "size": "image size in px (e.g. 32,64)",
    "curated": "curated (flags applied) vs all (flags ignored)",
    "lr": "learning rates D/G (e.g. 2e-4/2e-4,4e-5/4e-4)",
}
BASE_OPTIONS = ("epochs", "batch", "size", "lr_d", "lr_g", "seed", "eval_every", "eval_samples")
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


@dataclass
class Experiment:
    name: str
    factor: str
    values: list[str]
    base: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    def run_name(self, value: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", value)
        return check_run_name(f"{self.name}-{self.factor}-{slug}")

    @property
    def runs(self) -> list[str]:
        return [self.run_name(v) for v in self.values]

    def request(self, value: str) -> TrainRequest:
        """The training request of the run for ``value``: the shared options, then the
        factor's value."""
        opts = {k: v for k, v in self.base.items() if v is not None}
        if self.factor == "fraction":
            opts["fraction"] = float(value)
        elif self.factor == "size":
            opts["size"] = int(value)
        elif self.factor == "curated":
            opts["include_flagged"] = value == "all"
        elif self.factor == "lr":
            lr_d, lr_g = value.split("/")
            opts["lr_d"], opts["lr_g"] = float(lr_d), float(lr_g)
        return TrainRequest(run=self.run_name(value), **opts)


def _check_value(factor: str, value: str) -> str:
    try:
        if factor == "fraction":
            f = float(value)
            if not 0 < f <= 1:
                raise ValueError
            return f"{f:g}"
        if factor == "size":
            if int(value) not in SIZES:
                raise ValueError
            return str(int(value))
        if factor == "curated":
            if value not in ("curated", "all"):
                raise ValueError
            return value
        if factor == "lr":
            lr_d, lr_g = (float(v) for v in value.split("/"))
            if not (0 < lr_d <= 1 and 0 < lr_g <= 1):
                raise ValueError
            return f"{lr_d:g}/{lr_g:g}"
    except ValueError:
        pass
    raise InputError(f"--values: {value!r} is not a valid {factor} ({FACTORS[factor]})")


def create(ws: Workspace, name: str, factor: str, values: list[str],
           base: dict[str, Any], *, replace: bool = False) -> Experiment:
    if not EXPERIMENT_NAME.fullmatch(name):
        raise InputError(f"experiment name {name!r} must be 1-40 letters, digits, '_' or '-'")
    if factor not in FACTORS:
        raise InputError(f"--factor {factor!r}: use one of {', '.join(FACTORS)}")
    clean = [_check_value(factor, v.strip()) for v in values if v.strip()]
    if len(clean) < 2 or len(set(clean)) != len(clean):
        raise InputError("--values needs at least two different values, comma-separated")
    unknown = sorted(set(base) - set(BASE_OPTIONS))
    if unknown:
        raise ValueError(f"unknown base options {unknown}")
    every, samples = base.get("eval_every"), base.get("eval_samples")
    if (every is not None and not 1 <= every <= 10_000) or (
            samples is not None and not 10 <= samples <= 20_000):
        raise InputError("evaluate every 1-10000 epochs on 10-20000 samples")
    _validate_base(base, factor, clean)
    exp = Experiment(name, factor, clean, {k: v for k, v in base.items() if v is not None},
                     datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    path = experiment_path(ws, name)
    if path.exists() and not replace:
        raise InputError(f"experiment {name} exists; `modescope experiment run {name}` continues "
                         "it, or choose another name")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(asdict(exp), indent=2) + "\n").encode())
    return exp


def _validate_base(base: dict[str, Any], factor: str, values: list[str]) -> None:
    """Every planned run's options must make a valid training request before anything
    starts."""
    probe = Experiment("probe", factor, values, base)
    for value in values:
        try:
            probe.request(value)
        except InputError as exc:
            raise InputError(f"experiment run with {factor} {value}: {exc}") from None


def experiment_path(ws: Workspace, name: str) -> Path:
    return ws.experiments_dir / f"{name}.json"


def load(ws: Workspace, name: str) -> Experiment:
    path = experiment_path(ws, name)
    if not EXPERIMENT_NAME.fullmatch(name) or not path.is_file():
        raise NotFound(f"no experiment {name!r} in {ws.root}; create it with `modescope "
                         "experiment create`")
    return Experiment(**json.loads(path.read_text()))


def list_experiments(ws: Workspace) -> list[Experiment]:
    folder = ws.experiments_dir
    if not folder.is_dir():
        return []
    return [load(ws, p.stem) for p in sorted(folder.glob("*.json"))
            if EXPERIMENT_NAME.match(p.stem)]


# a run's last scored checkpoint as the experiment shows it: modes (NDB/K, JS, dropped), copies,
# fidelity (precision, density) and coverage, and the distribution distance, on block5 where a
# layer is named (indexer/checkpoint_eval.py writes them)
FINAL_KEYS = ("epoch", "ndb_over_k", "js", "copy_rate", "dropped", "precision_block5",
              "density_block5", "coverage_block5", "kid_block5")


def run_summary(ws: Workspace, run: str) -> dict[str, Any]:
    """Status, final and best metrics and training time of one run, from its folder."""
    folder = ws.run(run)
    progress = folder.progress() if folder.exists() else None
    stats = folder.stats()
    metrics = folder.metrics()
    dataset = folder.dataset() or {}
    status = "planned" if not folder.exists() else (progress or {}).get("status") or "unknown"
    final = metrics[-1] if metrics else {}
    best = min(metrics, key=lambda m: m["ndb_over_k"]) if metrics else {}
    return {
        "run": run, "status": status, "images": dataset.get("count"),
        "epochs": stats[-1]["epoch"] if stats else 0,
        "train_seconds": stats[-1].get("wall_s") if stats else None,
        "final": {k: final.get(k) for k in FINAL_KEYS},
        "best": {k: best.get(k) for k in ("epoch", "ndb_over_k")},
        "eval_seconds": round(sum(m.get("eval_seconds", 0.0) for m in metrics), 2),
        "curve": [{"epoch": m["epoch"], "ndb_over_k": m["ndb_over_k"]} for m in metrics],
    }


def next_request(ws: Workspace, exp: Experiment, value: str) -> TrainRequest | None:
    """The training request that brings the run for ``value`` forward (resume it, or start
    it), or None when it has finished."""
    folder = ws.run(exp.run_name(value))
    if (folder.progress() or {}).get("status") == "finished":
        return None
    request = exp.request(value)
    if folder.has_checkpoint():
        return request.resuming()
    if folder.exists():
        raise InputError(f"run {folder.name} of experiment {exp.name} exists without a "
                         f"checkpoint; remove {folder.root} and run the experiment again")
    return request


def summary(ws: Workspace, exp: Experiment) -> dict[str, Any]:
    rows = [{"value": v, **run_summary(ws, exp.run_name(v))} for v in exp.values]
    return {**asdict(exp), "rows": rows}
