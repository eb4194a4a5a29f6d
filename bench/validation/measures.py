"""The figures, read from the CLI's ``--json``: one function per measure, registered with
``@measure(...)`` with its columns and its targets (the issue's, stated once here).

A measure that reads generated runs gets ``(run, case)`` and is computed for every case it
names; a measure of the training set alone (``cases=()``) gets ``(run, None)`` once per set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .context import SetRun

Row = dict[str, Any]
ComputeFn = Callable[[SetRun, str | None], Row]
ALL_CASES = ("honest", "collapsed", "half-collapsed", "soft", "copies")
NULL_CASES = ("honest", "held-out")  # perfect generators: test images, held-out images


@dataclass(frozen=True)
class Target:
    column: str
    op: str  # ">=", "<=" or "=="
    value: float
    cases: tuple[str, ...] = ()  # the rows it judges (empty: every row)

    def applies(self, case: str | None) -> bool:
        return not self.cases or case in self.cases

    def met(self, value: Any) -> bool | None:
        if value is None:
            return None
        v = float(value)
        return {">=": v >= self.value, "<=": v <= self.value, "==": v == self.value}[self.op]

    def text(self) -> str:
        where = f"{'/'.join(self.cases)}: " if self.cases else ""
        return f"{where}{self.column} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Measure:
    name: str
    title: str
    columns: tuple[str, ...]
    targets: tuple[Target, ...]
    cases: tuple[str, ...]
    compute: ComputeFn


MEASURES: dict[str, Measure] = {}


def measure(name: str, title: str, columns: tuple[str, ...], targets: tuple[Target, ...] = (),
            cases: tuple[str, ...] = ALL_CASES) -> Callable[[ComputeFn], ComputeFn]:
    def register(fn: ComputeFn) -> ComputeFn:
        MEASURES[name] = Measure(name, title, columns, targets, cases, fn)
        return fn

    return register


def _below(path: str, root: Path) -> str:
    return str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else path


def pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@measure("memorisation", "Memorisation verdicts (`inspect memorisation`)",
         ("n", "copy %", "close %", "novel %", "novel", "twins", "copy % of others", "dup n",
          "dup copy %", "dup novel", "nearest = source %"),
         (Target("copy %", ">=", 95, ("copies",)), Target("novel", "==", 0, ("copies",)),
          Target("dup copy %", ">=", 95, ("copies",)), Target("dup novel", "==", 0, ("copies",)),
          Target("copy %", "<=", 1, ("honest",)),
          Target("copy % of others", "<=", 1, ("honest",))))
def memorisation(run: SetRun, case: str | None) -> Row:
    assert case is not None
    samples = run.inspect("memorisation", case)["samples"]
    info = run.sample_info(case)
    verdicts = Counter(s["verdict"] for s in samples)
    n = len(samples)
    row: Row = {"n": n, "copy %": pct(verdicts["copy"], n), "close %": pct(verdicts["close"], n),
                "novel %": pct(verdicts["novel"], n), "novel": verdicts["novel"]}
    # twins: samples the product calls twins of a training image (the same picture, in
    # pixels; it says so per sample); the 1 % guarantee is about the others, as the reference
    # leaves held-out twins out
    others = [s for s in samples if not s.get("near_duplicate", False)]
    row["twins"] = n - len(others)
    row["copy % of others"] = pct(sum(s["verdict"] == "copy" for s in others), len(others))
    if case == "honest":  # the held-out images called copies, to look at (JSON only)
        paths = run.id_paths()
        row["copy examples"] = [
            [f"{info[s['sample']].get('group')}/{info[s['sample']].get('file')}",
             _below(paths.get(s.get("copied", s["nearest"]), "?"), run.set_dir)]
            for s in samples if s["verdict"] == "copy"][:20]
    if case == "copies":
        dup = [s for s in samples if info.get(s["sample"], {}).get("duplicated")]
        row["dup n"] = len(dup)
        row["dup copy %"] = pct(sum(s["verdict"] == "copy" for s in dup), len(dup))
        row["dup novel"] = sum(s["verdict"] == "novel" for s in dup)
        row["nearest = source %"] = pct(
            sum(s["nearest"] == info.get(s["sample"], {}).get("source") for s in samples), n)
    return row


@measure("modes", "Modes: NDB/K and its 95 % interval (`inspect modes`)",
         ("n", "K", "NDB/K", "CI95", "CI holds NDB/K", "JS", "dropped", "over"),
         (Target("NDB/K", ">=", 0.5, ("collapsed",)), Target("NDB/K", "<=", 0.1, NULL_CASES),
          Target("CI holds NDB/K", "==", 1)), cases=(*ALL_CASES, "held-out"))
def modes(run: SetRun, case: str | None) -> Row:
    assert case is not None
    j = run.inspect("modes", case)
    est = j["ndb_over_k"]
    low, high = j["ndb_over_k_ci95"]
    return {"n": j["n_gen"], "K": j["k"], "NDB/K": est, "CI95": f"{low:.2f}-{high:.2f}",
            "CI holds NDB/K": int(low <= est <= high), "JS": j["js"],
            "dropped": len(j["dropped"]), "over": len(j["over_produced"])}


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    pos, neg = scores[positive], scores[~positive]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mean of the precision at the rank of each positive, ranked by score (highest first)."""
    hits = positive[np.argsort(-scores, kind="stable")]
    ranks = np.flatnonzero(hits) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def offtopic_truth(run: SetRun, ranked: list[dict[str, Any]]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, is an off-topic stray, suggested) per row of ``inspect outliers``' ranking."""
    paths = run.id_paths()
    offtopic = run.offtopic_paths()
    scores = np.array([r["score"] for r in ranked], dtype=np.float64)
    positive = np.array([paths.get(r["id"]) in offtopic for r in ranked])
    suggested = np.array([bool(r["suggested"]) for r in ranked])
    return scores, positive, suggested


@measure("outliers", "Off-topic strays in the training set (`inspect outliers`)",
         ("n", "off-topic", "AUROC", "AP", "suggested", "recall @ suggested",
          "precision @ suggested"), (Target("AUROC", ">=", 0.90),), cases=())
def outliers(run: SetRun, case: str | None) -> Row:
    ranked = run.inspect("outliers")["ranked"]  # every training image, however many --top says
    scores, positive, suggested = offtopic_truth(run, ranked)
    n_pos = int(positive.sum())
    if not n_pos or n_pos == len(ranked):
        return {"n": len(ranked), "off-topic": n_pos}
    return {"n": len(ranked), "off-topic": n_pos,
            "AUROC": round(auroc(scores, positive), 3),
            "AP": round(average_precision(scores, positive), 3),
            "suggested": int(suggested.sum()),
            "recall @ suggested": pct(int((suggested & positive).sum()), n_pos),
            "precision @ suggested": pct(int((suggested & positive).sum()),
                                         int(suggested.sum()))}


@measure("bins", "Modes: do NDB's bins follow the set's groups? (`inspect modes`)",
         ("K", "bin purity %", "missing-group bins", "of them dropped %"),
         cases=("honest", "collapsed", "half-collapsed"))
def bins(run: SetRun, case: str | None) -> Row:
    """Bin purity: the share of training images in their bin's commonest group (off-topic
    strays left out). For a collapsed run: the bins whose commonest group the generator never
    draws, and how many of them NDB marks dropped."""
    assert case is not None
    j = run.inspect("modes", case)
    ingest = run.set_dir / "ingest"
    group_of = {i: run.manifest.ingest.get(str(Path(p).relative_to(ingest)))
                for i, p in run.id_paths().items() if Path(p).is_relative_to(ingest)}
    members: dict[int, Counter[str]] = {}
    for image_id, b in j["train_bin_of"].items():
        g = group_of.get(int(image_id))
        if g and g != "offtopic":
            members.setdefault(int(b), Counter())[g] += 1
    top = {b: c.most_common(1)[0] for b, c in members.items()}
    total = sum(sum(c.values()) for c in members.values())
    row: Row = {"K": j["k"], "bin purity %": pct(sum(n for _, n in top.values()), total)}
    if case != "honest":
        drawn = {t["group"] for t in run.case_tags(case).values()}
        missing = [b for b, (g, _) in top.items() if g not in drawn]
        dropped = set(j["dropped"])
        row["missing-group bins"] = len(missing)
        row["of them dropped %"] = pct(len(dropped.intersection(missing)), len(missing))
    return row


@measure("prdc", "Precision, recall, density, coverage on block5 (`inspect prdc`, k = 5)",
         ("n", "precision", "recall", "density", "coverage", "expected coverage",
          "held-out coverage"),
         (Target("recall", "<=", 0.35, ("collapsed",)),
          Target("coverage", "<=", 0.35, ("collapsed",)),
          Target("coverage", ">=", 0.85, ("honest",)),
          Target("coverage", ">=", 0.8, ("soft",))),
         cases=(*ALL_CASES, "held-out"))
def prdc(run: SetRun, case: str | None) -> Row:
    assert case is not None
    j = run.inspect("prdc", case)
    layer = next(x for x in j["layers"] if x["layer"] == "block5")
    s, ref = layer["samples"], layer["reference"]
    return {"n": s["n"], "precision": round(s["precision"], 3), "recall": round(s["recall"], 3),
            "density": round(s["density"], 3), "coverage": round(s["coverage"], 3),
            "expected coverage": round(s["expected_coverage"], 3),
            "held-out coverage": round(ref["coverage"], 3) if ref else None}


LOOP_START, LOOP_PAGE, LOOP_REVIEWED, LOOP_REPEATS = 5, 20, 100, 3


def active_loop(run: SetRun, seed: int) -> tuple[list[float], float]:
    """One simulated user of "more like these": 5 strays flagged (seeded draw), then per round
    the top 20 suggestions reviewed; the strays among them flagged, the rest kept (``--kept``).
    (precision@20 per round, share of the other strays found after 100 reviewed)."""
    paths, offtopic = run.id_paths(), run.offtopic_paths()
    stray_ids = offtopic_ids(paths, offtopic)
    strays = sorted(stray_ids)
    rng = np.random.default_rng(seed)
    flagged = {int(i) for i in rng.choice(strays, LOOP_START, replace=False)}
    kept: set[int] = set()
    precision = []
    while len(flagged) - LOOP_START + len(kept) < LOOP_REVIEWED:
        ids = ",".join(map(str, sorted(flagged)))
        extra = ["--kept", ",".join(map(str, sorted(kept)))] if kept else []
        got = [s["id"] for s in run.cli("inspect", "suggest", "--flagged", ids, *extra,
                                        "--top", str(LOOP_PAGE))["suggestions"]]
        if not got:
            break
        hits = set(got) & stray_ids
        precision.append(len(hits) / len(got))
        flagged |= hits
        kept |= set(got) - hits
    return precision, (len(flagged) - LOOP_START) / (len(strays) - LOOP_START)


def offtopic_ids(paths: dict[int, str], offtopic: set[str]) -> set[int]:
    return {i for i, p in paths.items() if p in offtopic}


@measure("suggest", "More like these: the active loop from 5 flagged strays (`inspect suggest "
         "--flagged --kept`; 20 a round, mean of 3 seeded starts)",
         ("off-topic", "p@20 by round", "found after 100 %", "worst start %"),
         (Target("found after 100 %", ">=", 80),), cases=())
def suggest(run: SetRun, case: str | None) -> Row:
    n = len(offtopic_ids(run.id_paths(), run.offtopic_paths()))
    if n <= LOOP_START:
        return {"off-topic": n}
    loops = [active_loop(run, seed) for seed in range(LOOP_REPEATS)]
    rounds = min(len(p) for p, _ in loops)
    mean_p = [float(np.mean([p[r] for p, _ in loops])) for r in range(rounds)]
    found = [f for _, f in loops]
    return {"off-topic": n, "p@20 by round": " ".join(f"{p:.2f}" for p in mean_p),
            "found after 100 %": round(100 * float(np.mean(found)), 1),
            "worst start %": round(100 * min(found), 1)}
