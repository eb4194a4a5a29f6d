"""The ``modescope`` command: text for people, ``--json`` for programs, one-line errors.

The commands live in this folder's modules, one room each; ``build()`` adds them to one Typer
command (nothing registers itself at import time).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys

import typer

from modescope.cli import data, experiment, export, index, inspect, train
from modescope.core.errors import ModescopeError
from modescope.core.quiet import VERBOSE_ENV

COMMAND_MODULES = (data, index, inspect, train, experiment, export)


def build() -> typer.Typer:
    cli = typer.Typer(
        name="modescope",
        help="Curate a GAN's training images and inspect its modes.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    cli.callback()(_options)
    for module in COMMAND_MODULES:
        module.register(cli)
    return cli


def _options(verbose: bool = typer.Option(
        False, "--verbose", help="Show TensorFlow's, absl's and CUDA's start-up logs (also: "
                                 f"{VERBOSE_ENV}=1).")) -> None:
    """Curate a GAN's training images and inspect its modes."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"  # jobs started from here inherit it
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)


def quiet_native_logs() -> None:
    """Silence TensorFlow's C++ and absl logs below errors before anything imports TensorFlow
    (core/quiet.py); ``--verbose`` or MODESCOPE_VERBOSE=1 keeps them."""
    if "--verbose" in sys.argv[1:2]:
        os.environ[VERBOSE_ENV] = "1"
    if os.environ.get(VERBOSE_ENV) != "1":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    quiet_native_logs()
    try:
        build()()
    except ModescopeError as exc:
        sys.stderr.write(f"modescope: error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("modescope: interrupted; rerun the command to continue\n")
        sys.exit(130)
    except (OSError, sqlite3.OperationalError) as exc:
        if not disk_full(exc):
            raise
        name = getattr(exc, "filename", None)
        where = f" writing {name}" if name else ""
        sys.stderr.write(f"modescope: error: the disk is full{where}; free space on the device "
                         "that holds the workspace and rerun the command: what was committed "
                         "is kept and the rerun continues from there\n")
        sys.exit(4)


def disk_full(exc: BaseException) -> bool:
    """ENOSPC / EDQUOT, or SQLite's 'database or disk is full'."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)
