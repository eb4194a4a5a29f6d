"""What a checkpoint holds and where training starts from one.

A checkpoint folder (``RunFolder.checkpoint_dir(name)``) holds G's and D's Keras weights, the
optimisers' arrays and state.json; ``RunFolder.writing_checkpoint`` hands out the temp folder,
writes state.json last and swaps the folder in whole. ``checkpoint_state`` and ``Start`` are the
two sides of state.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modescope.core.runfolder import RunFolder

if TYPE_CHECKING:
    from modescope.trainer.stages import Models

GENERATOR = "generator.weights.h5"
DISCRIMINATOR = "discriminator.weights.h5"
OPTIMIZERS = "optimizers.npz"


def save_checkpoint(run: RunFolder, name: str, m: Models, state: dict[str, Any]) -> None:
    """Checkpoint ``name`` (latest or epoch-NNNN) of the models ``m``, written whole."""
    with run.writing_checkpoint(name, state) as folder:
        m.g.save_weights(str(folder / GENERATOR))
        m.d.save_weights(str(folder / DISCRIMINATOR))
        arrays = {**{f"g{i}": np.asarray(v) for i, v in enumerate(m.opt_g.variables)},
                  **{f"d{i}": np.asarray(v) for i, v in enumerate(m.opt_d.variables)}}
        np.savez(folder / OPTIMIZERS, allow_pickle=False, **arrays)


def load_checkpoint(folder: Path, m: Models) -> None:
    """Read a checkpoint folder into models ``m`` built for its stage."""
    m.g.load_weights(str(folder / GENERATOR))
    m.d.load_weights(str(folder / DISCRIMINATOR))
    with np.load(folder / OPTIMIZERS) as z:
        for i, v in enumerate(m.opt_g.variables):
            v.assign(z[f"g{i}"])
        for i, v in enumerate(m.opt_d.variables):
            v.assign(z[f"d{i}"])


def checkpoint_state(epoch: int, step: int, batch_in_epoch: int, stage: int, size: int,
                     wall_s: float) -> dict[str, Any]:
    """state.json: epochs done, steps done, batches done of the next epoch, the stage (0-based)
    and its image size, and the training seconds so far."""
    return {"epoch": epoch, "step": step, "batch_in_epoch": batch_in_epoch, "stage": stage,
            "size": size, "wall_s": round(wall_s, 2)}


@dataclass(frozen=True)
class Start:
    """Where training (re)starts: from scratch, or where a checkpoint's state.json says."""

    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    stage: int = 0
    wall_s: float = 0.0

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Start:
        return cls(epoch=state["epoch"], step=state["step"],
                   batch_in_epoch=state.get("batch_in_epoch", 0), stage=state.get("stage", 0),
                   wall_s=state.get("wall_s", 0.0))
