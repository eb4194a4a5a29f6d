"""The validation harness: modescope's analyses judged on real image sets with known structure.

    python bench/validate.py --weights PATH|random [--sets clipart,oxygen,emoji,demo]
        [--tune-on clipart] [--work DIR] [--cases ...] [--json OUT]

Builds each set once (bench/validation/sets.py; Debian packages listed in docs/validation.md),
ingests and indexes it, writes and indexes one generated run per case (honest, collapsed,
half-collapsed, soft, copies), chooses the tunable thresholds on the tuning set only, then prints
one table per measure (rows: set x case) with the targets and writes them as JSON. Rerunning
with the same --work skips every finished step. docs/validation.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from validation.cases import CASES, build_case  # noqa: E402
from validation.context import Features, SetRun  # noqa: E402
from validation.measures import MEASURES  # noqa: E402
from validation.report import markdown, rows_of, summary, tuning_lines  # noqa: E402
from validation.sets import build_set  # noqa: E402
from validation.tuning import tune  # noqa: E402


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True, help="a VGG16 no-top weights file, or random")
    ap.add_argument("--seed", type=int, default=0, help="seed of --weights random")
    ap.add_argument("--sets", default="clipart,oxygen,emoji,demo")
    ap.add_argument("--tune-on", default="clipart", help="the set thresholds are chosen on")
    ap.add_argument("--no-tune", action="store_true", help="product defaults everywhere")
    ap.add_argument("--tune-only", help="tune only these analyses' options (comma list)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--measures", default=",".join(MEASURES))
    ap.add_argument("--work", type=Path, default=Path("validation-work"))
    ap.add_argument("--size", type=int, default=64, help="workspace training size (px)")
    ap.add_argument("--input-size", type=int, default=64, help="VGG16 input size (px)")
    ap.add_argument("--draws", type=int, default=500, help="samples of a collapsed generator")
    ap.add_argument("--demo-n", type=int, default=1600, help="files of the demo set")
    ap.add_argument("--holdout", type=float,
                    help="ingest --holdout F where the CLI has it (default: the product's)")
    ap.add_argument("--json", type=Path, help="default: WORK/WEIGHTS/validation.json")
    args = ap.parse_args()
    names = args.sets.split(",")
    if args.tune_on not in names:
        ap.error(f"--tune-on {args.tune_on} is not one of --sets {args.sets}")
    return args


def main() -> None:
    args = parse()
    work = args.work.resolve()
    features = Features(args.weights, args.seed, args.input_size)
    names = [args.tune_on] + [n for n in args.sets.split(",") if n != args.tune_on]
    cases = args.cases.split(",")
    runs = [SetRun(n, work / "sets" / n, work / features.tag / n, features,
                   "tuning" if n == args.tune_on else "report", args.size, args.draws)
            for n in names]
    timings = {}
    for run in runs:
        start = time.perf_counter()
        build_set(run.name, work / "sets", args.demo_n)
        run.prepare(args.holdout)
        for case in cases:
            build_case(run, case)
        timings[run.name] = round(time.perf_counter() - start, 1)
        print(f"[{run.name}] ready in {timings[run.name]:.0f} s", file=sys.stderr)
    only = set(args.tune_only.split(",")) if args.tune_only else None
    options, tuned = ({}, []) if args.no_tune else tune(runs[0], only)
    for run in runs:
        run.options = options
    tables = [(MEASURES[m], rows_of(MEASURES[m], runs, cases)) for m in args.measures.split(",")]
    seed = f" (seed {features.seed})" if features.weights == "random" else ""
    head = (f"modescope validation, {datetime.now(UTC):%Y-%m-%d}, weights {features.weights}"
            f"{seed}, "
            f"input {features.input_size} px, workspace {args.size} px, "
            f"{platform.machine()} with {os.cpu_count()} cores")
    print(head)
    print(f"tuning set: {runs[0].name}; report sets: {', '.join(r.name for r in runs[1:])}")
    print("\n".join(tuning_lines(tuned)) if tuned else "thresholds: the product's defaults")
    for m, rows in tables:
        print()
        print(markdown(m, rows))
    misses = summary(tables)
    print("\nmissed targets on report sets:" if misses else "\nall targets met on report sets")
    for line in misses:
        print(f"- {line}")
    out = args.json or work / features.tag / "validation.json"
    out.write_text(json.dumps({
        "header": head, "tuning_set": runs[0].name, "report_sets": [r.name for r in runs[1:]],
        "tuned": tuned, "seconds_per_set": timings, "misses": misses,
        "tables": {m.name: {"title": m.title, "columns": list(m.columns),
                            "targets": [t.text() for t in m.targets], "rows": rows}
                   for m, rows in tables}}, indent=1))
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
