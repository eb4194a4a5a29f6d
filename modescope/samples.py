"""``modescope import-samples``: any GAN's images become a run's generated samples.

Every readable image under the folder is normalised exactly as training images are (size, fit,
colour) and written as ``runs/<RUN>/generated/<n>.png`` (n = 0, 1, ... in sorted path order);
``runs/<RUN>/samples.json`` records where each came from. Then ``modescope index --source
generated:RUN`` and every ``modescope inspect ... --run RUN`` work on them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modescope.discover import discover
from modescope.errors import InputError
from modescope.normalise import NormaliseOptions, Rejected, normalise, png_bytes
from modescope.workspace import Workspace, atomic_write_bytes

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_run_name(run: str) -> str:
    """A run name is a safe folder name: 1-64 letters, digits, '.', '_' or '-'."""
    if not RUN_NAME.fullmatch(run):
        raise InputError(f"run name {run!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return run


def run_dir(ws: Workspace, run: str) -> Path:
    return ws.root / "runs" / check_run_name(run)


def import_samples(folder: Path, ws: Workspace, run: str, *, replace: bool = False
                   ) -> dict[str, Any]:
    folder = Path(folder).expanduser().absolute()
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of generated images")
    config = ws.read_config()
    target = run_dir(ws, run) / "generated"
    if target.exists() and any(target.iterdir()):
        if not replace:
            raise InputError(f"run {run} already has samples in {target}; use another --run "
                             "name or --replace")
        shutil.rmtree(target)
    opts = NormaliseOptions(config.image_size, config.fit)
    found = discover(folder)
    samples: list[dict[str, Any]] = []
    rejected = [{"path": p.path, "reason": p.reason} for p in found.problems]
    staging = target.with_name("generated.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for cand in found.candidates:
        try:
            data = cand.path.read_bytes()
            image = normalise(data, opts).image
        except (OSError, Rejected) as exc:
            rejected.append({"path": cand.key, "reason": str(exc)})
            continue
        n = len(samples)
        atomic_write_bytes(staging / f"{n:06d}.png", png_bytes(image), durable=False)
        samples.append({"n": n, "path": cand.key, "sha256": hashlib.sha256(data).hexdigest()})
    if not samples:
        shutil.rmtree(staging)
        raise InputError(f"no readable image in {folder}")
    staging.rename(target)  # all samples appear at once
    record = {"run": run, "source": str(folder), "kind": "imported",
              "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "image_size": config.image_size, "samples": samples, "rejected": rejected}
    atomic_write_bytes(target.parent / "samples.json",
                       (json.dumps(record, indent=1) + "\n").encode())
    return {"run": run, "imported": len(samples), "rejected": rejected,
            "folder": str(target)}
