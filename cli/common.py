"""What every command shares: the workspace and --json options, JSON output, progress, warnings."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from modescope.core.workspace import WORKSPACE_ENV

WorkspaceOpt = Annotated[
    Path,
    typer.Option(
        "--workspace", "-w", envvar=WORKSPACE_ENV, help="Workspace folder.",
        show_default=True,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")]


def emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


class progress_bar:
    """A rich progress bar on a terminal's stderr; nothing when stderr is not a terminal."""

    def __init__(self, verb: str, unit: str | None = None) -> None:
        self.verb = verb
        self.unit = unit
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns: list[Any] = [TextColumn(self.verb), BarColumn(), MofNCompleteColumn()]
        if self.unit:
            unit = self.unit
            columns.append(TextColumn(
                "{task.fields[rate]}", style="progress.data.speed"))
        columns.append(TimeRemainingColumn())
        self._bar = Progress(*columns, console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(self.verb, total=None, rate="")

        def update(done: int, total: int) -> None:
            self._bar.update(self._task, completed=done, total=total)
            speed = self._bar.tasks[0].speed
            if self.unit and speed:
                self._bar.update(self._task, rate=f"{speed:.1f} {unit}/s")

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def warn(message: str | None) -> None:
    if message:
        typer.secho(f"warning: {message}", err=True, fg=typer.colors.YELLOW)




def load_tensorflow() -> None:
    """Import Keras (and TensorFlow, when it is Keras's backend: KERAS_BACKEND=jax runs
    without it) and let TensorFlow probe for devices, with their native start-up lines silenced
    (core/quiet.py): a command's output starts with its own line."""
    import os

    from modescope.core.quiet import quiet_native_stderr

    with quiet_native_stderr():
        import keras  # noqa: F401

        if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()
