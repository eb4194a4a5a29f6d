"""Training configuration: typed, validated once, JSON round-trip. Imports no TensorFlow, so the
web app can validate a job's parameters before it starts a worker."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

SIZES = (32, 64, 128, 256)
LOSSES = ("nonsaturating", "hinge")


class ConfigError(ValueError):
    """A training option is out of range; the message names it and the allowed values."""


@dataclass(frozen=True)
class TrainConfig:
    size: int = 64
    latent_dim: int = 100
    gen_filters: int = 64  # ngf of the PyTorch DCGAN example
    disc_filters: int = 64  # ndf
    epochs: int = 25
    batch_size: int = 64
    lr_d: float = 2e-4
    lr_g: float = 2e-4
    beta1: float = 0.5
    label_smoothing: bool = True  # real labels drawn from [0.9, 1.0]
    instance_noise: float = 0.0  # initial sigma on real and fake inputs, decays to 0
    d_steps: int = 1  # discriminator updates per generator update
    loss: str = "nonsaturating"
    flip: bool = True  # random horizontal flips of real images
    progressive: tuple[int, ...] = ()  # e.g. (32, 64, 128): sizes trained in turn
    stage_epochs: tuple[int, ...] = ()  # epochs per progressive stage
    checkpoint_every: int = 5
    grid: int = 64  # fixed-noise samples in each epoch's grid
    mixed_precision: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(self.size in SIZES, f"size {self.size}: use one of {', '.join(map(str, SIZES))}")
        need(1 <= self.latent_dim <= 1024, "latent_dim must be between 1 and 1024")
        need(8 <= self.gen_filters <= 512 and 8 <= self.disc_filters <= 512,
             "gen_filters and disc_filters must be between 8 and 512")
        need(1 <= self.epochs <= 100_000, "epochs must be between 1 and 100000")
        need(1 <= self.batch_size <= 8192, "batch_size must be between 1 and 8192")
        need(0 < self.lr_d <= 1 and 0 < self.lr_g <= 1, "learning rates must be in (0, 1]")
        need(0 <= self.beta1 < 1, "beta1 must be in [0, 1)")
        need(0 <= self.instance_noise <= 1, "instance_noise must be in [0, 1]")
        need(1 <= self.d_steps <= 10, "d_steps must be between 1 and 10")
        need(self.loss in LOSSES, f"loss {self.loss!r}: use {' or '.join(LOSSES)}")
        need(1 <= self.checkpoint_every <= 10_000, "checkpoint_every must be at least 1")
        need(1 <= self.grid <= 256, "grid must be between 1 and 256")
        if self.progressive:
            stages = self.progressive
            need(all(s in SIZES for s in stages), f"progressive sizes must be among {SIZES}")
            need(list(stages) == sorted(set(stages)) and len(stages) >= 2,
                 "progressive needs at least two increasing sizes, e.g. 32,64,128")
            need(stages[-1] == self.size, f"the last progressive size ({stages[-1]}) must "
                                          f"equal size ({self.size})")
            need(len(self.stage_epochs) == len(stages),
                 f"give stage_epochs for each of the {len(stages)} progressive stages")
            need(all(e >= 1 for e in self.stage_epochs), "every stage needs at least 1 epoch")
        else:
            need(not self.stage_epochs, "stage_epochs only goes with progressive")

    @property
    def total_epochs(self) -> int:
        return sum(self.stage_epochs) if self.progressive else self.epochs

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["progressive"] = list(self.progressive)
        out["stage_epochs"] = list(self.stage_epochs)
        return out

    def dumps(self) -> str:
        return json.dumps(self.as_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(unknown)}")
        values = dict(raw)
        for key in ("progressive", "stage_epochs"):
            if key in values:
                values[key] = tuple(int(v) for v in values[key])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    @classmethod
    def loads(cls, text: str) -> TrainConfig:
        return cls.from_json(json.loads(text))
