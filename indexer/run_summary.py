"""One summary of a run that reads right: how many modes its samples reach, how faithful they
are, how many are copies, each with its interval, and a head in words that tells *collapsed*
(faithful samples that miss part of the data) from *low fidelity* (samples unlike real images)
from *looks like the data*.

It reads three stored analyses (their JSON forms, as the inspection cache holds them), so the
run page, the compare page and the JSON twins say the same thing:

- **Coverage** (block5) with its jackknife interval, against the expected coverage of a
  generator matching the data at these sizes: *incomplete* when the interval's upper end is
  under the expectation. This decides the head.
- **Modes reached** (`modes` bins, `prdc` reach on block5), the evidence of *which* part is
  missed: a mode (bin of the training set) counts as reached when the share of its training
  images with a sample inside their k-NN ball is not significantly below what a generator
  matching the data reaches. Under that null each training image is reached with probability
  p = the expected coverage at these sizes (Naeem et al. 2020, Lemma 2; indexer/prdc.py
  ``expected_coverage``), so a bin of m images whose reached count X has
  P(Binomial(m, p) <= X) < ``MODE_LEVEL`` is *under-reached*. The level was
  chosen on the harness's tuning set (clipart, stand-in weights) as the largest of 5 % and 1 %
  at which the held-out images, an i.i.d. generator, reach every mode (docs/validation.md).
- **Fidelity**: precision and density (block5) with their intervals, against the held-out
  images scored the same way (`prdc`'s reference row): lower fidelity when the density
  intervals do not overlap and the run's is the lower (density, unlike precision, drops when
  samples sit at the rim of the data: blurred or off-model images).
- **Copies**: the memorisation analysis's `copy` count with a Clopper-Pearson interval; the
  head says the samples copy when the interval's lower end is above the close level (5 %):
  more copies than the verdicts' own tolerance explains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modescope.indexer.memorisation import CLOSE_LEVEL
from modescope.indexer.ndb_stats import clopper_pearson
from modescope.indexer.run_compare import layer_of

LAYER = "block5"
MODE_LEVEL = 0.01
HEADS = {
    (True, True): "Looks like the data",
    (False, True): "Collapsed: faithful samples that miss part of the data",
    (True, False): "Complete but low fidelity: samples unlike real images",
    (False, False): "Low fidelity and incomplete",
}


def modes_reached(prdc: Mapping[str, Any], modes: Mapping[str, Any],
                  level: float = MODE_LEVEL) -> dict[str, Any]:
    """Per bin of the training set: is its reached share what a matching generator reaches?"""
    from scipy.stats import binom

    from modescope.indexer.prdc import expected_coverage

    layer = layer_of(prdc, LAYER)
    p = expected_coverage(layer["n_train"], layer["n_samples"], layer["k"])
    reach = {int(i): int(c) for i, c in layer["reach"].items()}
    members: dict[int, list[int]] = {}
    for image, b in modes["train_bin_of"].items():
        if int(image) in reach:
            members.setdefault(int(b), []).append(reach[int(image)])
    under = sorted(b for b, counts in members.items()
                   if binom.cdf(sum(c > 0 for c in counts), len(counts), p) < level)
    return {"reached": len(members) - len(under), "k": len(members), "under_reached": under,
            "expected_share": round(p, 4), "level": level}


def _interval(scores: Mapping[str, Any], name: str) -> dict[str, float]:
    lo, hi = scores[f"{name}_ci95"]
    return {"value": float(scores[name]), "lo": float(lo), "hi": float(hi)}


def _text(x: Mapping[str, float], percent: bool = False) -> str:
    f = "{:.1%}" if percent else "{:.3f}"
    return f"{f.format(x['value'])} ({f.format(x['lo'])}\u2013{f.format(x['hi'])})"


def run_summary(modes: Mapping[str, Any] | None, prdc: Mapping[str, Any] | None,
                memorisation: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The summary as JSON (``sentence`` is the page's words); None until prdc is stored."""
    if prdc is None:
        return None
    layer = layer_of(prdc, LAYER)
    s, ref = layer["samples"], layer["reference"]
    coverage = {**_interval(s, "coverage"), "expected": float(s["expected_coverage"])}
    complete = coverage["hi"] >= coverage["expected"]
    fidelity = {name: _interval(s, name) for name in ("precision", "density")}
    reference = ({name: _interval(ref, name) for name in ("precision", "density")}
                 if ref is not None else None)
    faithful = reference is None or fidelity["density"]["hi"] >= reference["density"]["lo"]
    reached = modes_reached(prdc, modes) if modes is not None else None
    parts = [f"coverage {_text(coverage)}, expected {coverage['expected']:.3f}"]
    if reached is not None:
        parts.append(f"{reached['reached']} of {reached['k']} modes reached as a generator "
                     "matching the data would reach them")
    fid = (f"fidelity: precision {_text(fidelity['precision'])}, density "
           f"{_text(fidelity['density'])}")
    if reference is not None:
        fid += (f" (held-out real images: {reference['precision']['value']:.3f}, "
                f"{reference['density']['value']:.3f})")
    parts.append(fid)
    copies = None
    head = HEADS[(complete, faithful)]
    copying = False
    if memorisation is not None:
        x, n = int(memorisation["copies"]), int(memorisation["n_samples"])
        lo, hi = clopper_pearson(x, n)
        copies = {"copies": x, "n": n, "value": x / n, "lo": lo, "hi": hi}
        parts.append(f"copies {x} of {n}, {_text(copies, percent=True)}")
        copying = lo > CLOSE_LEVEL
        head += ", and copies training images" if copying else ""
    details = "; ".join(parts) + " (95% intervals, block5)."
    return {"head": head, "complete": complete, "faithful": faithful, "copying": copying,
            "sentence": f"{head}: {details}", "details": details,
            "modes": reached, "coverage": coverage, "fidelity": fidelity,
            "reference": reference, "copies": copies}
