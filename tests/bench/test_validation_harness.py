"""The validation harness (bench/validate.py) on a tiny demo set, so it cannot rot silently: each
case writes what it claims, the measures' arithmetic holds, and (slow) one end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.validation.cases import CASES
from bench.validation.context import Features, SetRun
from bench.validation.imaging import copy_jitter, fit
from bench.validation.measures import MEASURES, Target, auroc, average_precision
from bench.validation.report import markdown
from bench.validation.sets import build_set
from bench.validation.tuning import smallest_reaching

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SetRun:
    """A 160-file demo set, split and ingested at 32 px (not indexed)."""
    root = tmp_path_factory.mktemp("harness")
    build_set("demo", root / "sets", demo_n=160)
    run = SetRun("demo", root / "sets" / "demo", root / "random" / "demo",
                 Features("random", 0, 32), "tuning", size=32, draws=40)
    run.cli("ingest", run.set_dir / "ingest", "--size", "32")
    return run


def test_demo_set_keeps_test_images_out_and_strays_in(tiny: SetRun) -> None:
    m = tiny.manifest
    assert len(m.groups) == 8
    assert not set(m.test) & set(m.ingest)
    assert set(m.test.values()) <= set(m.groups)
    assert m.offtopic and all(m.ingest[f] == "offtopic" for f in m.offtopic)
    assert all((tiny.set_dir / "test" / f).exists() for f in m.test)
    # only ingested images are in the workspace
    assert not {str(tiny.set_dir / "test" / f) for f in m.test} & set(tiny.id_paths().values())


@pytest.mark.parametrize(("name", "n_groups"), [("collapsed", 2), ("half-collapsed", 4)])
def test_collapsed_cases_draw_only_from_their_groups(tiny: SetRun, tmp_path: Path, name: str,
                                                     n_groups: int) -> None:
    tags = CASES[name](tiny, tmp_path, np.random.default_rng(1))
    assert len(tags) == tiny.draws == len(list(tmp_path.glob("*.png")))
    assert len({t["group"] for t in tags.values()}) == n_groups


def test_honest_case_is_the_test_images_and_soft_blurs_them(tiny: SetRun, tmp_path: Path
                                                            ) -> None:
    (tmp_path / "h").mkdir()
    (tmp_path / "s").mkdir()
    honest = CASES["honest"](tiny, tmp_path / "h", np.random.default_rng(1))
    soft = CASES["soft"](tiny, tmp_path / "s", np.random.default_rng(1))
    tests = tiny.test_files()
    assert len(honest) == len(soft) == len(tests)
    assert Counter(t["group"] for t in honest.values()) == Counter(g for _, g in tests)
    first = np.asarray(Image.open(tests[0][0]).convert("RGB"), dtype=np.float64)
    same = np.asarray(Image.open(tmp_path / "h" / "00000.png"), dtype=np.float64)
    blurred = np.asarray(Image.open(tmp_path / "s" / "00000.png"), dtype=np.float64)
    assert np.array_equal(first, same)

    def roughness(a: np.ndarray) -> float:
        return float(np.abs(np.diff(a, axis=1)).mean())

    assert roughness(blurred) < 0.8 * roughness(first)


def test_copy_jitter_changes_pixels_a_little(tiny: SetRun) -> None:
    src = fit(Image.open(tiny.test_files()[0][0]), 64)
    out = copy_jitter(src, np.random.default_rng(0))
    diff = np.abs(np.asarray(out, dtype=np.float64) - np.asarray(src, dtype=np.float64))
    assert 0 < diff.mean() < 40


def test_a_turned_copy_keeps_its_ground_at_the_corners() -> None:
    """The demo's masks sit on dark grounds: the corners a 2-degree turn uncovers take the
    image's border colour, not white (a difference no generator makes)."""
    src = Image.new("RGB", (64, 64), (40, 30, 20))
    src.paste((200, 120, 60), (20, 12, 44, 52))
    out = np.asarray(copy_jitter(src, np.random.default_rng(0)), dtype=np.float64)
    corners = np.stack([out[0, 0], out[0, -1], out[-1, 0], out[-1, -1]])
    assert np.abs(corners - (40, 30, 20)).max() <= 6


def test_auroc_and_average_precision_by_hand() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.7])
    positive = np.array([True, False, True, False, False])
    # pairs (pos, neg): 0.9 beats all 3; 0.7 beats 0.6, ties 0.7, loses to 0.8
    assert auroc(scores, positive) == pytest.approx((3 + 1 + 0.5) / 6)
    # ranked: 0.9 (pos), 0.8, 0.7 (pos, first of the tie), 0.7, 0.6
    assert average_precision(scores, positive) == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_targets_are_judged_and_misses_named_on_report_sets_only() -> None:
    t = Target("copy %", ">=", 95, ("copies",))
    assert t.applies("copies") and not t.applies("honest")
    assert t.met(95.0) is True and t.met(94.9) is False and t.met(None) is None
    m = MEASURES["memorisation"]
    rows = [{"set": s, "role": role, "case": "copies", "copy %": 50.0, "judged": 1,
             "misses": [t.text()]} for s, role in (("a", "tuning"), ("b", "report"))]
    table = markdown(m, rows).splitlines()
    assert "**MISSED** copies: copy % >= 95" in table[-1] and "MISSED" not in table[-2]


def test_tuning_takes_the_smallest_value_that_finds_enough() -> None:
    curve = [{"value": v, "copies copy %": c} for v, c in ((0.2, 90.0), (0.4, 96.0), (0.6, None),
                                                           (0.8, 99.0))]
    assert smallest_reaching(curve, "copies copy %", 95) == 0.4
    assert smallest_reaching(curve, "copies copy %", 99.5) is None


@pytest.mark.slow
def test_harness_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "validation.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "validate.py"), "--weights", "random",
         "--sets", "demo", "--tune-on", "demo", "--no-tune", "--cases", "honest,copies",
         "--demo-n", "160", "--draws", "40", "--size", "32", "--input-size", "32",
         "--work", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, timeout=900, env={**os.environ}, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tuning set: demo" in proc.stdout
    tables = json.loads(out.read_text())["tables"]
    mem = {r["case"]: r for r in tables["memorisation"]["rows"]}
    assert mem["honest"]["n"] > 0 and mem["copies"]["n"] > 0
    # every copy is tagged with the training image it copies, and most find it again
    assert mem["copies"]["nearest = source %"] >= 80
    assert {r["case"] for r in tables["modes"]["rows"]} == {"honest", "copies"}
    (outliers,) = tables["outliers"]["rows"]
    assert outliers["off-topic"] > 0 and 0 <= outliers["AUROC"] <= 1
