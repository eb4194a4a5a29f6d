"""numba-compiled loops of the analyses (the pixel check's kernels, the conformal p-values),
kept on disk where numba can write them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def compiled(*, nogil: bool = True, fastmath: bool = False) -> Callable[[F], F]:
    """numba's ``njit`` with its compiled code kept on disk (seconds of compiling saved in each
    process) where numba finds a folder it can write: beside the module, or the user's cache
    folder. Where it finds none (an installed package in a read-only place, no writable home)
    numba raises as the function is decorated; the function is then compiled in each process
    instead. ``nogil``: threads may run it side by side."""
    def wrap(fn: F) -> F:
        try:
            return cast(F, numba.njit(cache=True, nogil=nogil, fastmath=fastmath)(fn))
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return cast(F, numba.njit(nogil=nogil, fastmath=fastmath)(fn))
    return wrap
