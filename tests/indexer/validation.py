"""A validation workspace built from the demo data's ground truth (shared by the inspect tests).

Half of a 1,200-file demo set is ingested as training data; the other half stays out as
"held-out real images". Generated runs are made from them: a perfect generator (held-out
images), a collapsed one (held-out images of two modes only) and a copier (near-copies of
training images: pixel noise, a 1-2 px shift, colour jitter).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from tests.conftest import run_cli

VALIDATION_INDEX = ["--weights", "random", "--seed", "0", "--input-size", "64"]
COLLAPSE_MODES = ("oval-vivid-dots", "long-teal-grid")


@dataclass
class Validation:
    root: Path
    ws: Path
    truth: dict
    train_files: list[str]
    heldout: list[str]
    copies_of: dict[int, str] = field(default_factory=dict)  # sample n -> training file


def near_copy(src: Path, rng: np.random.Generator) -> Image.Image:
    img = Image.open(src).convert("RGB")
    arr = np.asarray(img).astype(np.float32)
    dx, dy = (int(v) for v in rng.integers(-2, 3, 2))
    arr = np.roll(arr, (dy, dx), axis=(0, 1))
    arr = arr + rng.normal(0, 4, arr.shape)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return ImageEnhance.Color(out).enhance(float(rng.uniform(0.92, 1.08)))


def build(root: Path) -> Validation:
    demo = root / "demo"
    assert run_cli("demo-data", demo, "--n", "1200", "--seed", "11").code == 0
    truth = json.loads((demo / "truth.json").read_text())["files"]
    files = sorted(truth)
    train_files = [f for i, f in enumerate(files) if i % 2 == 0]
    # held-out real images: the other half, noise included (a perfect generator reproduces the
    # whole distribution), planted duplicates left out
    heldout = [f for i, f in enumerate(files) if i % 2 == 1
               and not truth[f]["duplicate_of"] and not truth[f]["near_duplicate_of"]]
    # the planted duplicates and their originals all go to training
    for f in files:
        e = truth[f]
        for src in (e["duplicate_of"], e["near_duplicate_of"]):
            if src and f not in train_files:
                train_files.append(f)
            if src and src not in train_files:
                train_files.append(src)
    heldout = [f for f in heldout if f not in train_files]
    train_dir = root / "train"
    for f in train_files:
        (train_dir / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(demo / f, train_dir / f)
    ws = root / "ws"
    assert run_cli("ingest", train_dir, "-w", ws).code == 0
    v = Validation(root, ws, truth, sorted(train_files), heldout)
    runs = {
        "heldout": heldout,
        "collapsed": [f for f in heldout if truth[f]["mode"] in COLLAPSE_MODES],
    }
    for run, members in runs.items():
        folder = root / run
        for f in members:
            (folder / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(demo / f, folder / f)
    from modescope.core.catalog import Catalog
    from modescope.core.workspace import Workspace

    with Catalog.reading(Workspace(ws).catalog_path) as catalog:
        held = {c.path for c in catalog.held_out()}  # ingest's own split: never trained on
    rng = np.random.default_rng(5)
    clean = [f for f in v.train_files if truth[f]["mode"] and not truth[f]["duplicate_of"]
             and not truth[f]["near_duplicate_of"]
             and not any(h.endswith("/" + f) for h in held)]
    picks = [clean[int(i)] for i in rng.choice(len(clean), 120, replace=False)]
    copies = root / "copies"
    copies.mkdir()
    for n, f in enumerate(sorted(picks)):
        near_copy(demo / f, rng).save(copies / f"{n:04d}.png")
        v.copies_of[n] = f
    assert run_cli("index", "-w", ws, *VALIDATION_INDEX).code == 0
    for run in ("heldout", "collapsed", "copies"):
        assert run_cli("import-samples", root / run, "--run", run, "-w", ws).code == 0
        assert run_cli("index", "-w", ws, "--source", f"generated:{run}").code == 0
    return v
