"""The analyses registry: adding an analysis is one module. A toy analysis registered here shows
up in every registry-driven place reachable in-process (the run cache, the pipeline's steps and
count, ``modescope inspect``, checkpoint scoring), and is gone again after."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from modescope.core.workspace import Workspace
from modescope.indexer.analyses.registry import (
    AnalysisSpec,
    Checkpoint,
    Cli,
    Inputs,
    Option,
    Samples,
    Scorer,
    TrainingSet,
    analyses,
    calc_analysis,
    checkpoint_analyses,
    get_analysis,
    register_analysis,
    unregister_analysis,
)
from modescope.indexer.analyses.results import JsonRecord
from tests.images import picture, save


@dataclass(frozen=True)
class Part(JsonRecord):
    n: int
    share: float | None


@dataclass(frozen=True)
class ToyResult(JsonRecord):
    run: str
    total: int
    parts: tuple[Part, ...]
    part_of: dict[int, int]
    pair: tuple[float, float]
    note: str | None


def toy_compute(ws: Workspace, run: str, *, n: int = 3) -> ToyResult:
    parts = tuple(Part(i, i / n if i else None) for i in range(n))
    return ToyResult(run, n, parts, {10 + i: i for i in range(n)}, (0.25, 0.75), None)


def toy_lines(r: ToyResult, o: Mapping[str, Any]) -> list[str]:
    return [f"run {r.run}: {r.total} parts", *[f"  part {p.n}" for p in r.parts[:o["top"]]]]


def toy_checkpoint(training: TrainingSet) -> Scorer:
    def score(samples: Samples) -> dict[str, Any]:
        return {"toy_score": int(samples.images.shape[0]) + len(training.ids)}
    return score


TOY = AnalysisSpec(
    name="toy", title="toy parts", version=1, compute=toy_compute, result_type=ToyResult,
    inputs=Inputs(train=False, flags=True, run=True),
    cli=Cli(help="A toy analysis.", lines=toy_lines, options=(
        Option("n", int, 3, "How many parts."),
        Option("top", int, 2, "Parts to print.", display_only=True))),
    checkpoint=Checkpoint(prepare=toy_checkpoint, timer="toy"))


@pytest.fixture
def toy() -> Iterator[AnalysisSpec[ToyResult]]:
    register_analysis(TOY)
    try:
        yield TOY
    finally:
        unregister_analysis(TOY.name)


BUILTIN = ["modes", "memorisation", "outliers", "duplicates", "suggest", "train-modes"]


def test_the_builtin_analyses_are_discovered_in_listing_order() -> None:
    names = [s.name for s in analyses()]
    assert [n for n in names if n in BUILTIN] == BUILTIN
    assert [s.name for s in analyses(run=True)][:2] == ["modes", "memorisation"]
    assert all(s.inputs.run for s in analyses(run=True))
    assert [s.name for s in checkpoint_analyses()][:2] == ["modes", "memorisation"]
    for spec in analyses():
        assert spec.inputs.generated <= spec.inputs.run
        assert spec.code == f"{spec.name}@{spec.version}"
    with pytest.raises(ValueError, match="unknown analysis 'nope'"):
        get_analysis("nope")
    with pytest.raises(ValueError, match="registered already"):
        register_analysis(get_analysis("modes"))


def test_a_result_survives_its_json_form_both_ways() -> None:
    r = toy_compute(Workspace("/nowhere"), "r1", n=4)
    data = r.as_json()
    assert list(data) == ["run", "total", "parts", "part_of", "pair", "note"]
    assert data["parts"][1] == {"n": 1, "share": 0.25} and data["pair"] == [0.25, 0.75]
    stored = json.loads(json.dumps(data))  # dict keys become strings, tuples lists
    assert stored["part_of"] == {"10": 0, "11": 1, "12": 2, "13": 3}
    back = ToyResult.from_json(stored)
    assert back == r and back.part_of[11] == 1 and isinstance(back.parts[0], Part)
    assert json.dumps(back.as_json()) == json.dumps(data)
    with pytest.raises(TypeError):
        ToyResult.from_json({**stored, "extra": 1})
    with pytest.raises((KeyError, TypeError)):
        ToyResult.from_json({k: v for k, v in stored.items() if k != "note"})


def test_a_registered_analysis_is_cached_with_its_inputs_and_version(
        toy: AnalysisSpec[ToyResult], tmp_path: Path) -> None:
    from modescope.app.analyses import Analyses, current_versions, run_kinds, store_analysis

    ws = Workspace(tmp_path / "ws")
    assert "toy" in run_kinds()
    stored = store_analysis(ws, "r1", "toy")
    record = json.loads(ws.run("r1").inspection_path("toy").read_text())
    assert set(record) == {"versions", "computed_at", "result"}
    assert record["versions"] == current_versions(ws, "r1", "toy")
    assert set(record["versions"]) == {"flags", "code"} and record["versions"]["code"] == "toy@1"
    assert record["result"] == json.loads(json.dumps(toy_compute(ws, "r1").as_json()))
    cache = Analyses(ws)
    try:
        hit = cache.cached("r1", "toy")
        assert hit is not None and hit.value == stored.value == toy_compute(ws, "r1")
        assert hit.result == record["result"]
        unregister_analysis("toy")  # a new version of the method: the stored one is stale
        register_analysis(replace(TOY, version=2))
        assert cache.cached("r1", "toy") is None
        assert cache.last("r1", "toy") is not None  # still shown, marked, meanwhile
    finally:
        cache.close()


def test_a_registered_analysis_is_a_pipeline_step(toy: AnalysisSpec[ToyResult],
                                                  tmp_path: Path) -> None:
    from modescope.app.analyses import run_kinds
    from modescope.app.job_specs import pipeline_steps
    from modescope.app.pipeline import plan

    steps = plan(Workspace(tmp_path), "r1", 10, no_generate=True)
    assert [s.text for s in steps] == [
        "generate samples: skipped (imported samples)", "index samples",
        *[f"inspect {kind}" for kind in run_kinds()]]
    assert steps[2].text == "inspect modes" and steps[3].text == "inspect memorisation"
    assert steps[-1].analysis == "toy" and pipeline_steps() == len(steps)
    unregister_analysis("toy")
    assert pipeline_steps() == len(steps) - 1


def test_a_registered_analysis_is_an_inspect_command(toy: AnalysisSpec[ToyResult],
                                                     tmp_path: Path) -> None:
    from modescope.cli.main import build

    runner = CliRunner()
    ws = str(tmp_path / "ws")
    assert "toy" in runner.invoke(build(), ["inspect", "--help"]).output
    res = runner.invoke(build(), ["inspect", "toy", "--run", "r1", "-w", ws, "--n", "4",
                                  "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == json.loads(json.dumps(
        calc_analysis("toy", Workspace(ws), "r1", n=4).as_json()))
    text = runner.invoke(build(), ["inspect", "toy", "--run", "r1", "-w", ws, "--top", "1"])
    assert text.output.splitlines() == ["run r1: 3 parts", "  part 0"]
    assert runner.invoke(build(), ["inspect", "toy", "-w", ws]).exit_code == 2  # --run needed
    unregister_analysis("toy")
    assert "toy" not in runner.invoke(build(), ["inspect", "--help"]).output


def test_a_registered_analysis_scores_checkpoints(toy: AnalysisSpec[ToyResult],
                                                  tmp_path: Path) -> None:
    """The evaluator's scorers come from the registry: the toy's key and timer join the built-in
    ones in a metrics.jsonl row (random descriptors stand in for VGG16's: no TensorFlow)."""
    from modescope.core.catalog import Catalog
    from modescope.core.ingest import ingest
    from modescope.indexer.checkpoint_eval import prepare_scorers, score_samples

    for i in range(20):
        save(picture(seed=i), tmp_path / "in" / f"{i:02d}.png")
    ws = Workspace(tmp_path / "ws")
    ingest(tmp_path / "in", ws, size=32, workers=1)
    with Catalog.reading(ws.catalog_path) as catalog:
        ids = np.array(sorted(i for i, _, _ in catalog.ok_files()), dtype=np.int64)
    rng = np.random.default_rng(0)

    def unit(n: int, d: int) -> np.ndarray:
        x = rng.standard_normal((n, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    training = TrainingSet(ws, 32, ids, {"block1": unit(20, 16), "block5": unit(20, 32)}, {})
    scorers = prepare_scorers(training)
    assert [timer for timer, _ in scorers][:2] == ["ndb", "memorisation"]
    assert scorers[-1][0] == "toy"
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    seconds: dict[str, float] = {}
    row = score_samples(scorers, Samples(images, {"block1": unit(6, 16),
                                                  "block5": unit(6, 32)}, np.arange(6)),
                        seconds)
    assert list(row)[:7] == ["ndb_over_k", "ndb", "k", "js", "dropped", "over_produced",
                             "copy_rate"]
    assert list(row)[-1] == "toy_score" and row["toy_score"] == 6 + 20
    assert set(seconds) == {timer for timer, _ in scorers}
    unregister_analysis("toy")
    assert "toy" not in [timer for timer, _ in prepare_scorers(training)]
