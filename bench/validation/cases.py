"""The generated runs the harness judges: each case writes a folder of images that a generator of
a known kind would produce, and a tag per file (its group, the image it copies).

A case is one function registered with ``@case(NAME)``: ``(run, out, rng) -> tags``. The harness
imports the folder as run NAME (``modescope import-samples``) and indexes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .context import SetRun
from .imaging import copy_jitter, draw_jitter, soften

Tags = dict[str, dict[str, Any]]  # file name -> what the harness knows about it
CaseFn = Callable[[SetRun, Path, np.random.Generator], Tags]
CASES: dict[str, CaseFn] = {}
COPIES = 200  # copies of training images without a near-duplicate
DUPLICATED_COPIES = 100  # copies of training images that have one


def case(name: str) -> Callable[[CaseFn], CaseFn]:
    def register(fn: CaseFn) -> CaseFn:
        CASES[name] = fn
        return fn

    return register


def _write(img: Image.Image, out: Path, name: str) -> str:
    img.convert("RGB").save(out / name)
    return name


@case("honest")
def honest(run: SetRun, out: Path, rng: np.random.Generator) -> Tags:
    """Held-out real images, unchanged: what a perfect generator would draw."""
    tags: Tags = {}
    for i, (path, group) in enumerate(run.test_files()):
        with Image.open(path) as img:
            tags[_write(img, out, f"{i:05d}.png")] = {"group": group, "file": path.name}
    return tags


@case("held-out")
def held_out(run: SetRun, out: Path, rng: np.random.Generator) -> Tags:
    """The product's own held-out images (ingest's seeded i.i.d. share of the ingested images;
    the flagged strays left out), unchanged: a perfect generator drawn image by image. The
    test images of ``honest`` are drawn by whole families (an emoji and its skin tones), so
    NDB's bins, some of which are one family, see more than sampling noise there; here they see
    only that. Memorisation is not judged on them: they are its reference."""
    tags: Tags = {}
    for i, img in enumerate(run.held_out()):
        with Image.open(img.path) as src:
            tags[_write(src, out, f"{i:05d}.png")] = {"file": Path(img.path).name,
                                                      "id": img.id}
    return tags


def _collapsed(run: SetRun, out: Path, rng: np.random.Generator, n_groups: int) -> Tags:
    """``run.draws`` jittered draws from the test images of ``n_groups`` of the set's groups
    (which ones is drawn)."""
    groups = sorted(str(g) for g in rng.choice(run.manifest.groups, n_groups, replace=False))
    pool = run.test_files(groups)
    tags: Tags = {}
    for i in range(run.draws):
        path, group = pool[int(rng.integers(len(pool)))]
        with Image.open(path) as img:
            tags[_write(draw_jitter(img, rng), out, f"{i:05d}.png")] = {"group": group}
    return tags


@case("collapsed")
def collapsed(run: SetRun, out: Path, rng: np.random.Generator) -> Tags:
    """A collapsed generator: 2 of the 8 groups."""
    return _collapsed(run, out, rng, 2)


@case("half-collapsed")
def half_collapsed(run: SetRun, out: Path, rng: np.random.Generator) -> Tags:
    """A half-collapsed generator: 4 of the 8 groups."""
    return _collapsed(run, out, rng, 4)


@case("soft")
def soft(run: SetRun, out: Path, rng: np.random.Generator) -> Tags:
    """A soft (blurry) generator: held-out real images, blurred."""
    tags: Tags = {}
    for i, (path, group) in enumerate(run.test_files()):
        with Image.open(path) as img:
            tags[_write(soften(img), out, f"{i:05d}.png")] = {"group": group}
    return tags


def duplicated_ids(run: SetRun) -> set[int]:
    """Training images with a near-duplicate among the other training images, by the product's
    own ``inspect duplicates`` (groups with two or more training members)."""
    training = {img.id for img in run.training()}
    out: set[int] = set()
    for group in run.inspect("duplicates")["groups"]:
        members = training.intersection(group["ids"])
        if len(members) >= 2:
            out |= members
    return out


@case("copies")
def copies(run: SetRun, out: Path, rng: np.random.Generator) -> Tags:
    """A memorising generator: training images with colour x1.1 and a 2-degree rotation, both of
    images that have a near-duplicate in the training set and of images that have none.
    Off-topic strays are not copied."""
    offtopic = run.offtopic_paths()
    training = [img for img in run.training() if img.path not in offtopic]
    dup = duplicated_ids(run)
    chosen = []
    for duplicated, n in ((True, DUPLICATED_COPIES), (False, COPIES)):
        pool = [img for img in training if (img.id in dup) == duplicated]
        picks = rng.permutation(len(pool))[:n]
        chosen += [(pool[int(k)], duplicated) for k in picks]
    tags: Tags = {}
    for i, (img, duplicated) in enumerate(chosen):
        with Image.open(img.path) as src:
            name = _write(copy_jitter(src, rng), out, f"{i:05d}.png")
        tags[name] = {"source": img.id, "duplicated": duplicated}
    return tags


def build_case(run: SetRun, name: str) -> None:
    """Write case NAME's images, import them as run NAME and index them (each step once)."""
    folder = run.root / "cases" / name
    if not run.step(f"case-{name}").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        rng = np.random.default_rng(list(f"{run.name}/{name}".encode()))
        tags = CASES[name](run, folder, rng)
        (folder / "tags.json").write_text(json.dumps(tags, indent=1, sort_keys=True))
        run.cli("import-samples", folder, "--run", name, "--replace")
        run.step(f"case-{name}").touch()
    if not run.step(f"index-{name}").exists():
        run.cli("index", "--source", f"generated:{name}", *run.features.args())
        run.step(f"index-{name}").touch()
