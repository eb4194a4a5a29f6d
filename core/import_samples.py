"""``modescope import-samples``: any GAN's images become a run's generated samples.

Every readable image under the folder is normalised exactly as training images are (size, fit,
colour) and written as ``runs/<RUN>/generated/<n>.png`` (n = 0, 1, ... in sorted path order);
``runs/<RUN>/samples.json`` records where each came from. Then ``modescope index --source
generated:RUN`` and every ``modescope inspect ... --run RUN`` work on them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modescope.core.discover import discover
from modescope.core.errors import InputError
from modescope.core.files import atomic_write_bytes
from modescope.core.normalise import NormaliseOptions, Rejected, normalise, png_bytes
from modescope.core.workspace import Workspace


def import_samples(folder: Path, ws: Workspace, run: str, *, replace: bool = False
                   ) -> dict[str, Any]:
    folder_in = Path(folder).expanduser().absolute()
    if not folder_in.is_dir():
        raise InputError(f"{folder_in} is not a folder of generated images")
    config = ws.read_config()
    out = ws.run(run)
    target = out.generated_dir
    if target.exists() and any(target.iterdir()) and not replace:
        raise InputError(f"run {run} already has samples in {target}; use another --run "
                         "name or --replace")
    opts = NormaliseOptions(config.image_size, config.fit)
    found = discover(folder_in)
    samples: list[dict[str, Any]] = []
    rejected = [{"path": p.path, "reason": p.reason} for p in found.problems]
    with out.replacing_samples() as staging:
        for cand in found.candidates:
            try:
                data = cand.path.read_bytes()
                image = normalise(data, opts).image
            except (OSError, Rejected) as exc:
                rejected.append({"path": cand.key, "reason": str(exc)})
                continue
            n = len(samples)
            atomic_write_bytes(staging / out.sample_name(n), png_bytes(image), durable=False)
            samples.append({"n": n, "path": cand.key,
                            "sha256": hashlib.sha256(data).hexdigest()})
        if not samples:
            raise InputError(f"no readable image in {folder_in}")
    out.write_samples_record({
        "run": run, "source": str(folder_in), "kind": "imported",
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "image_size": config.image_size, "samples": samples, "rejected": rejected})
    return {"run": run, "imported": len(samples), "rejected": rejected,
            "folder": str(target)}
