"""Importing Keras quietly, and describing the runtime for ``meta.json``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from importlib import metadata
from typing import Any

from modescope.core.quiet import quiet_native_stderr


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what libraries print to stdout (progress bars, log lines) to stderr, so that a
    command's stdout stays machine-readable (``--json``)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def keras_module() -> Any:
    with quiet_native_stderr():
        import keras

        keras.backend.backend()
    return keras


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("keras", "tensorflow", "jax", "faiss-cpu", "numpy", "pillow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    keras_backend = os.environ.get("KERAS_BACKEND")
    out["keras_backend"] = keras_backend or "tensorflow"
    return out
