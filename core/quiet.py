"""Quiet native start-up logs: TensorFlow's C++ layer, absl and the CUDA probe write to file
descriptor 2 before any Python logging setting applies ("Could not find cuda drivers", "failed
call to cuInit", oneDNN notes). Commands import TensorFlow inside ``quiet_native_stderr`` so that
their output starts with their own first line; ``MODESCOPE_VERBOSE=1`` (or ``modescope
--verbose``) keeps the logs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

VERBOSE_ENV = "MODESCOPE_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what native code writes to fd 2 inside the block (not in verbose mode); Python
    exceptions still propagate and are reported after it."""
    if verbose():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
