"""Did curation help? Two runs' stored analyses, measure by measure, with intervals and a
verdict in words: better, worse, or within the noise.

Each ``Measure`` reads one registered analysis's stored result (its JSON form, as the inspection
cache holds it) on both sides; a new measure (coverage, FD, KID) is one more entry in
``MEASURES``. The two results are comparable only when both were measured against the same
training index and the same curated set (their cache ``versions`` agree on every input but the
run's own samples); otherwise the row says so instead of a verdict.

The tests, at 5 % each:
- **NDB/K**: each side's 95 % Clopper-Pearson interval (indexer/ndb_stats.py). The change is
  called real only when the two intervals do not overlap. Two disjoint 95 % intervals amount to
  a test at a level well below 5 % (Schenker & Gentleman 2001, "On judging the significance of
  differences by examining the overlap between confidence intervals"), so the verdict is
  conservative: "within the noise" means "not shown to differ", not "equal". NDB/K also grows
  with the number of samples (more power per bin), so unequal sample counts are named.
- **Coverage** (block5, `inspect prdc`) and **KID** (block5, `inspect distances`): each
  side's 95 % interval (jackknife), a change counted when they do not overlap, as for NDB/K.
- **Copy rate**: copies out of samples on each side, a 95 % Clopper-Pearson interval each, and
  Fisher's exact test of the 2x2 table (Fisher 1935; Agresti 2002, "Categorical Data
  Analysis", section 3.5.1), two-sided, which keeps its level at any count, 0 copies included
  (a two-proportion z-test does not). Samples are treated as independent draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modescope.indexer.ndb_stats import LEVEL, clopper_pearson

ALPHA = 1 - LEVEL  # each measure's test level
Z95 = 1.959964  # two-sided 95 % normal quantile
VERDICTS = ("better", "worse", "within the noise", "not comparable", "missing")


@dataclass(frozen=True)
class Side:
    """One run's stored analyses: result JSON and cache versions per analysis name."""

    run: str
    results: Mapping[str, dict[str, Any]]
    versions: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Estimate:
    value: float
    lo: float
    hi: float
    text: str  # the value and interval as the page writes them
    count: str = ""  # e.g. "3 of 60" where the value is a share


@dataclass(frozen=True)
class Measure:
    name: str  # as the page writes it
    analysis: str  # the registered analysis it reads
    better: str  # "lower" or "higher"
    method: str  # how the verdict is reached, in a few words
    percent: bool  # a share, written in % (its change in points)
    estimate: Callable[[dict[str, Any]], Estimate]
    differs: Callable[[dict[str, Any], dict[str, Any]], tuple[bool, str]]  # (real?, why)
    unusable: Callable[[dict[str, Any]], str | None] = lambda _: None
    caveat: Callable[[dict[str, Any], dict[str, Any]], str | None] = lambda _a, _b: None


@dataclass(frozen=True)
class MeasureRow:
    measure: str
    analysis: str
    better: str
    method: str
    a: Estimate | None
    b: Estimate | None
    change: float | None  # b minus a
    change_text: str  # "+0.120" or "-1.7 points"; "" without both values
    verdict: str  # one of VERDICTS
    sentence: str


def _interval_text(value: float, lo: float, hi: float, percent: bool) -> str:
    if percent:
        return f"{value:.1%} (95% interval {lo:.1%}\u2013{hi:.1%})"
    return f"{value:.3f} (95% interval {lo:.3f}\u2013{hi:.3f})"


def _ndb(r: dict[str, Any]) -> Estimate:
    lo, hi = r["ndb_over_k_ci95"]
    value = float(r["ndb_over_k"])
    return Estimate(value, float(lo), float(hi), _interval_text(value, lo, hi, False),
                    f"{r['ndb']} of {r['k']} bins")


def _ndb_caveat(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    if a["n_gen"] != b["n_gen"]:
        return (f"the runs have {a['n_gen']} and {b['n_gen']} samples; NDB/K grows with the "
                "sample count, so compare runs with as many samples each")
    return None


def _copy(r: dict[str, Any]) -> Estimate:
    x, n = int(r["copies"]), int(r["n_samples"])
    lo, hi = clopper_pearson(x, n)
    return Estimate(x / n, lo, hi, _interval_text(x / n, lo, hi, True), f"{x} of {n} samples")


def fisher_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test that x1/n1 and x2/n2 share one proportion."""
    from scipy.stats import fisher_exact

    if not (0 <= x1 <= n1 and 0 <= x2 <= n2 and n1 >= 1 and n2 >= 1):
        raise ValueError(f"need 0 <= x <= n and n >= 1, got {x1}/{n1} and {x2}/{n2}")
    _, p = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="two-sided")
    return float(min(1.0, p))


def _copy_differs(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, str]:
    p = fisher_p(int(a["copies"]), int(a["n_samples"]), int(b["copies"]), int(b["n_samples"]))
    return p < ALPHA, f"Fisher's exact test p = {p:.3g}"


def _copy_unusable(r: dict[str, Any]) -> str | None:
    if not r.get("copy_possible", True):
        return "too few reference images to call a copy"
    return None if int(r["n_samples"]) >= 1 else "no samples"


def layer_of(r: Mapping[str, Any], name: str = "block5") -> dict[str, Any]:
    """One layer's entry of a per-layer result (prdc, distances) in its JSON form."""
    layer: dict[str, Any] = next(x for x in r["layers"] if x["layer"] == name)
    return layer


def _coverage(r: dict[str, Any]) -> Estimate:
    s = layer_of(r)["samples"]
    lo, hi = s["coverage_ci95"]
    value = float(s["coverage"])
    return Estimate(value, float(lo), float(hi), _interval_text(value, lo, hi, True),
                    f"{s['n']} samples")


def _kid(r: dict[str, Any]) -> Estimate:
    s = layer_of(r)["samples"]
    value, se = float(s["kid"]), float(s["kid_se"])
    lo, hi = value - Z95 * se, value + Z95 * se
    return Estimate(value, lo, hi, f"{value:.2e} (95% interval {lo:.2e}\u2013{hi:.2e})",
                    f"{s['n']} samples")


def _apart(estimate: Callable[[dict[str, Any]], Estimate]
           ) -> Callable[[dict[str, Any], dict[str, Any]], tuple[bool, str]]:
    """A change counts when the two 95 % intervals do not overlap (conservative: module
    docstring)."""
    def differs(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, str]:
        ea, eb = estimate(a), estimate(b)
        if ea.hi < eb.lo or eb.hi < ea.lo:
            return True, "the 95% intervals do not overlap"
        return False, "the 95% intervals overlap"
    return differs


def _sample_caveat(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    na, nb = layer_of(a)["samples"]["n"], layer_of(b)["samples"]["n"]
    if na != nb:
        return (f"the runs have {na} and {nb} samples; coverage grows with the sample count, "
                "so compare runs with as many samples each")
    return None


MEASURES: list[Measure] = [
    Measure("NDB/K", "modes", "lower",
            "NDB/K with its 95% Clopper-Pearson interval; a change counts when the intervals "
            "do not overlap (conservative)", False, _ndb, _apart(_ndb), caveat=_ndb_caveat),
    Measure("copy rate", "memorisation", "lower",
            "share of samples called copies, 95% Clopper-Pearson interval; Fisher's exact test "
            "at 5%", True, _copy, _copy_differs, unusable=_copy_unusable),
    Measure("coverage (block5)", "prdc", "higher",
            "share of training images with a sample in their k-NN ball (Naeem et al. 2020), "
            "95% jackknife interval; a change counts when the intervals do not overlap",
            True, _coverage, _apart(_coverage), caveat=_sample_caveat),
    Measure("KID (block5)", "distances", "lower",
            "unbiased kernel distance to the training set (Binkowski et al. 2018) +- 1.96 "
            "jackknife standard errors; a change counts when the intervals do not overlap",
            False, _kid, _apart(_kid)),
]


def _comparable(a: Side, b: Side, analysis: str) -> bool:
    """Both results measured against the same training index and curated set (and code)."""
    va, vb = a.versions.get(analysis, {}), b.versions.get(analysis, {})
    keys = (set(va) | set(vb)) - {"generated"}
    return all(va.get(k) == vb.get(k) for k in keys)


def measure_row(m: Measure, a: Side, b: Side) -> MeasureRow:
    ra, rb = a.results.get(m.analysis), b.results.get(m.analysis)
    ea = m.estimate(ra) if ra is not None and m.unusable(ra) is None else None
    eb = m.estimate(rb) if rb is not None and m.unusable(rb) is None else None

    def row(verdict: str, sentence: str) -> MeasureRow:
        change = eb.value - ea.value if ea is not None and eb is not None else None
        text = "" if change is None else (f"{change * 100:+.1f} points" if m.percent
                                          else f"{change:+.3f}")
        return MeasureRow(m.name, m.analysis, m.better, m.method, ea, eb, change, text,
                          verdict, sentence)

    if ra is None or rb is None:
        missing = " and ".join(s.run for s, r in ((a, ra), (b, rb)) if r is None)
        return row("missing", f"{m.name}: no {m.analysis} analysis of {missing} yet")
    for side, r in ((a, ra), (b, rb)):
        if (why := m.unusable(r)) is not None:
            return row("not comparable", f"{m.name} of {side.run} says nothing: {why}")
    assert ea is not None and eb is not None
    if not _comparable(a, b, m.analysis):
        return row("not comparable", f"{m.name}: the two runs were measured against different "
                                     "training sets (flags changed since one was computed); "
                                     "recompute both")
    real, why = m.differs(ra, rb)
    went = f"{m.name} went from {ea.text} to {eb.text}"
    if not real:
        verdict, words = "within the noise", "within the noise"
    else:
        lower = eb.value < ea.value
        verdict = "better" if lower == (m.better == "lower") else "worse"
        words = f"{'lower' if lower else 'higher'}, {verdict}"
    sentence = f"{went}: {words} ({why})."
    if (caveat := m.caveat(ra, rb)) is not None:
        sentence += f" Note: {caveat}."
    return row(verdict, sentence)


def measure_rows(a: Side, b: Side) -> list[MeasureRow]:
    return [measure_row(m, a, b) for m in MEASURES]


def _names(rows: list[MeasureRow]) -> str:
    names = [r.measure for r in rows]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def verdict_sentence(a: str, b: str, rows: list[MeasureRow]) -> str:
    """One sentence: did run ``b`` (after curation) do better than ``a`` beyond the noise?"""
    by = {v: [r for r in rows if r.verdict == v] for v in VERDICTS}
    better, worse, noise = by["better"], by["worse"], by["within the noise"]
    if not (better or worse or noise):
        return f"Nothing to compare yet: {b} and {a} have no comparable measures."
    if better and not worse:
        head = f"Curation helped: {b} is better than {a} on {_names(better)}"
    elif worse and not better:
        head = f"Curation did not help: {b} is worse than {a} on {_names(worse)}"
    elif better and worse:
        head = (f"Mixed: {b} is better than {a} on {_names(better)} and worse on "
                f"{_names(worse)}")
    else:
        return (f"Within the noise: no measure of {b} differs from {a} beyond the noise "
                f"({_names(noise)}).")
    tail = f"; {_names(noise)} within the noise" if noise else ""
    return head + tail + "."


def reach_changes(a: Side, b: Side, layer: str = "block5") -> dict[str, Any] | None:
    """The training images that became reached from ``a`` to ``b`` (no sample of ``a`` inside
    their k-NN ball, some of ``b``) and those that became unreached; None unless both prdc
    analyses are stored and measured against the same training set."""
    ra, rb = a.results.get("prdc"), b.results.get("prdc")
    if ra is None or rb is None or not _comparable(a, b, "prdc"):
        return None
    reach_a, reach_b = (layer_of(r, layer)["reach"] for r in (ra, rb))
    common = reach_a.keys() & reach_b.keys()
    return {"layer": layer,
            "reached": sorted(int(i) for i in common if reach_a[i] == 0 < reach_b[i]),
            "unreached": sorted(int(i) for i in common if reach_b[i] == 0 < reach_a[i])}


def summary(a: Side, b: Side) -> dict[str, Any]:
    """The comparison as JSON: the sentence, every row and the training images that became
    reached or unreached (the page, the API, the record)."""
    from dataclasses import asdict

    rows = measure_rows(a, b)
    return {"a": a.run, "b": b.run, "sentence": verdict_sentence(a.run, b.run, rows),
            "alpha": ALPHA, "rows": [asdict(r) for r in rows], "reach": reach_changes(a, b)}
