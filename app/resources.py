"""The folders the web app ships inside the ``modescope`` package: templates/ and static/."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_dir(name: str) -> Path:
    """A folder shipped inside the ``modescope`` package (templates/, static/), found with
    importlib.resources, so an installed wheel and a source checkout serve the same files."""
    folder = resources.files("modescope") / name
    if not isinstance(folder, Path) or not folder.is_dir():
        raise RuntimeError(f"modescope is installed without its {name}/ folder ({folder}); "
                           "reinstall it from a wheel or a source checkout")
    return folder
