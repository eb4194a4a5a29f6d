"""``Training``: one process's training, as the loop drives it and the callbacks see it.

It holds the run folder this process writes (a scratch one on a non-chief worker), the models
of the stage in training (``Growth``), where training is (epochs done, steps done, batches done
of the epoch in progress) and its clock: ``wall()`` counts training seconds only, the run's
earlier processes included and the evaluation hook's time left out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from modescope.core.runfolder import RunFolder
from modescope.core.training import TrainConfig
from modescope.trainer.checkpoint import Start, checkpoint_state
from modescope.trainer.noise import instance_sigma
from modescope.trainer.stages import Growth, Models


@dataclass
class Training:
    config: TrainConfig
    run: RunFolder
    growth: Growth
    epoch: int = 0  # epochs done
    step: int = 0  # steps done
    batch_in_epoch: int = 0  # batches done of the epoch in progress
    wall0: float = 0.0  # training seconds of the run's earlier processes
    losses: tuple[Any, Any] = (None, None)  # the last step's (d_loss, g_loss), as tensors
    stop: bool = False  # set by a callback: end the run (cancelled) after this step
    not_training_s: float = 0.0  # seconds of this process spent outside training
    started: float = field(default_factory=time.perf_counter)
    _epoch_mark: tuple[float, int] = field(default=(0.0, 0), init=False, repr=False)

    @classmethod
    def starting(cls, config: TrainConfig, run: RunFolder, growth: Growth, start: Start
                 ) -> Training:
        return cls(config, run, growth, epoch=start.epoch, step=start.step,
                   batch_in_epoch=start.batch_in_epoch, wall0=start.wall_s)

    @property
    def models(self) -> Models:
        return self.growth.models

    @property
    def size(self) -> int:
        return self.growth.size

    @property
    def total_steps(self) -> int:
        return self.growth.steps_per_epoch * self.config.total_epochs

    @property
    def epoch_now(self) -> int:
        """The epoch to show (1-based): the one in progress, or at a boundary the last done."""
        return self.epoch + 1 if self.batch_in_epoch else self.epoch

    @property
    def epoch_done(self) -> bool:
        return self.batch_in_epoch >= self.growth.steps_per_epoch

    def wall(self) -> float:
        """Training seconds so far."""
        return self.wall0 + time.perf_counter() - self.started - self.not_training_s

    def state(self, wall_s: float) -> dict[str, Any]:
        """state.json of a checkpoint taken now."""
        return checkpoint_state(self.epoch, self.step, self.batch_in_epoch, self.growth.stage,
                                self.size, wall_s)

    def begin_epoch(self) -> None:
        self._epoch_mark = (time.perf_counter(), self.step)

    def train_step(self, real: Any) -> None:
        """One step on a real batch: fade-in alpha, instance noise, D and G updates."""
        self.growth.fade(self.step)
        sigma = instance_sigma(self.config, self.step, self.total_steps)
        self.losses = self.growth.step_fn(real, self.step, sigma)
        self.step += 1
        self.batch_in_epoch += 1

    def end_epoch(self) -> dict[str, Any]:
        """Count the epoch done (the models synced) and return its stats.jsonl row."""
        t0, first_step = self._epoch_mark
        elapsed = time.perf_counter() - t0
        self.growth.step_fn.sync()
        wall = self.wall()
        self.epoch += 1
        self.batch_in_epoch = 0
        d_loss, g_loss = self.losses
        return {"step": self.step, "epoch": self.epoch, "d_loss": float(d_loss),
                "g_loss": float(g_loss),
                "images_per_s": round((self.step - first_step) * self.config.batch_size
                                      / elapsed, 2),
                "wall_s": round(wall, 2), "size": self.size, "stage": self.growth.stage + 1}
