"""Every workspace and run path has one owner (docs/architecture.md): no other module spells one.

Reads the package's source with ``ast``: a string literal that names a workspace or run file, or a
folder joined onto a path with ``/``, may appear only in the owners' modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import modescope

PACKAGE = Path(modescope.__file__).parent
OWNERS = {"core/workspace.py", "core/runfolder.py"}
FILES = {"workspace.json", "catalog.sqlite", "app.sqlite", "config.json", "dataset.json",
         "evaluation.json", "progress.json", "stats.jsonl", "metrics.jsonl", "log.txt",
         "preview.png", "noise.npy", "samples.json", "state.json"}
FOLDERS = {"runs", "checkpoints", "inspection", "generated", "samples", "images", "locks",
           "experiments", "index", "latest", "tensorboard"}


def _sources() -> list[tuple[str, ast.AST]]:
    out = []
    for room in ("core", "cli", "app", "indexer", "trainer"):
        for path in sorted((PACKAGE / room).rglob("*.py")):
            rel = f"{room}/{path.relative_to(PACKAGE / room).as_posix()}"
            out.append((rel, ast.parse(path.read_text(encoding="utf-8"))))
    return out


def spelled_paths(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of each workspace or run file name, and each ``x / "folder"``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in FILES:
            found.append((node.lineno, repr(node.value)))
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
                and isinstance(node.right, ast.Constant) and node.right.value in FOLDERS):
            found.append((node.lineno, f"/ {node.right.value!r}"))
    return sorted(found)


def test_only_the_owners_spell_workspace_and_run_paths() -> None:
    found = [f"{rel}:{line}: {text}" for rel, tree in _sources() if rel not in OWNERS
             for line, text in spelled_paths(tree)]
    assert not found, "paths spelled outside Workspace/RunFolder:\n" + "\n".join(found)


def test_the_guard_sees_a_spelled_path() -> None:
    tree = ast.parse('p = folder / "checkpoints" / "x"\nq = "progress.json"\nr = "runs"\n')
    assert spelled_paths(tree) == [(1, "/ 'checkpoints'"), (2, "'progress.json'")]
