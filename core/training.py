"""What a training run is asked to do: ``TrainConfig`` (the model and optimiser options, written
to the run's config.json) and ``TrainRequest`` (one ``modescope train`` call: the run, its data
and its scoring, with the one ``to_argv``). Typed and validated once; imports no TensorFlow, so
the web app and the experiments validate a run before any worker starts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modescope.core.catalog import Catalog
from modescope.core.command import modescope_argv
from modescope.core.errors import InputError

if TYPE_CHECKING:
    from modescope.core.workspace import Workspace

SIZES = (32, 64, 128, 256)
LOSSES = ("nonsaturating", "hinge")
UPSAMPLES = ("transpose", "resize")  # how G doubles its resolution (trainer.models._up)


class ConfigError(InputError, ValueError):
    """A training option is out of range; the message names it and the allowed values."""


@dataclass(frozen=True)
class TrainConfig:
    size: int = 64
    latent_dim: int = 100
    gen_filters: int = 64  # ngf of the PyTorch DCGAN example
    disc_filters: int = 64  # ndf
    upsample: str = "transpose"
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
        need(self.upsample in UPSAMPLES,
             f"upsample {self.upsample!r}: use {' or '.join(UPSAMPLES)}")
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


# TrainRequest options stored in TrainConfig under another name (the others share theirs)
CONFIG_NAME = {"batch": "batch_size", "filters": "gen_filters"}


@dataclass(frozen=True)
class TrainRequest:
    """One ``modescope train`` call, validated when made; ``to_argv`` is the only place that
    spells its options (jobs, experiments and the CLI's own parsing all go through it).

    Options left as None take the trainer's defaults (size: the workspace's; epochs: 25).
    ``resume`` continues the run from its latest checkpoint (``epochs`` may then raise its
    total).
    """

    run: str
    resume: bool = False
    size: int | None = None
    epochs: int | None = None
    batch: int = 64
    filters: int = 64
    upsample: str = "transpose"
    lr_d: float = 2e-4
    lr_g: float = 2e-4
    loss: str = "nonsaturating"
    label_smoothing: bool = True
    instance_noise: float = 0.0
    d_steps: int = 1
    flip: bool = True
    progressive: tuple[int, ...] = ()
    stage_epochs: tuple[int, ...] = ()
    checkpoint_every: int = 5
    mixed_precision: bool = False
    seed: int = 0
    fraction: float = 1.0
    include_flagged: bool = False
    eval_every: int | None = None
    eval_samples: int = 500
    tpu: str | None = None
    tfrecords: str | None = None

    DEFAULT_EPOCHS = 25

    def __post_init__(self) -> None:
        from modescope.core.runfolder import check_run_name

        check_run_name(self.run)
        if not 0 < self.fraction <= 1:
            raise InputError(f"--fraction {self.fraction}: give a share in (0, 1], e.g. 0.33")
        if self.eval_every is not None and not 0 <= self.eval_every <= 10_000:
            raise InputError("--eval-every must be between 0 (never) and 10000")
        if not 10 <= self.eval_samples <= 20_000:
            raise InputError("--eval-samples must be between 10 and 20000")
        if not self.resume:
            self.config(SIZES[0])  # every option in range, or a ConfigError

    def config(self, workspace_size: int) -> TrainConfig:
        """The run's TrainConfig; ``workspace_size`` when no size was asked for."""
        # "is None", not "or": a size or epochs of 0 is asked for, and refused by TrainConfig
        size = self.size if self.size is not None else (
            self.progressive[-1] if self.progressive else workspace_size)
        return TrainConfig(
            size=size, epochs=self.epochs if self.epochs is not None else self.DEFAULT_EPOCHS,
            batch_size=self.batch, gen_filters=self.filters, disc_filters=self.filters,
            upsample=self.upsample, lr_d=self.lr_d, lr_g=self.lr_g, loss=self.loss,
            label_smoothing=self.label_smoothing, instance_noise=self.instance_noise,
            d_steps=self.d_steps, flip=self.flip, progressive=self.progressive,
            stage_epochs=self.stage_epochs, checkpoint_every=self.checkpoint_every,
            mixed_precision=self.mixed_precision, seed=self.seed)

    @classmethod
    def following(cls, config: TrainConfig, run: str, **changes: Any) -> TrainRequest:
        """A new run with the options of ``config`` (a parent run's) but ``changes``: a retrain
        that differs from its parent only in its data and in what the user changed, so that
        comparing the two asks what the data did. A new size drops the parent's progressive
        stages, which end at its size."""
        same = {f.name: getattr(config, CONFIG_NAME.get(f.name, f.name)) for f in fields(cls)
                if hasattr(config, CONFIG_NAME.get(f.name, f.name))}
        if changes.get("size", config.size) != config.size:
            same.update(progressive=(), stage_epochs=())
        return cls(run=run, **{**same, **changes})

    def resuming(self) -> TrainRequest:
        """The request that continues this run from its latest checkpoint."""
        return replace(self, resume=True)

    def to_argv(self, workspace: Path, *, as_json: bool = False) -> list[str]:
        """The ``modescope train`` command line (an argument list, never a shell string);
        options at their defaults are left out."""
        argv = [*modescope_argv(), "train", "--workspace", str(workspace)]
        if self.resume:
            argv += ["--resume", self.run]
            if self.epochs is not None:
                argv += ["--epochs", str(self.epochs)]
            return argv + (["--json"] if as_json else [])
        argv += ["--run", self.run]
        plain = TrainRequest(run=self.run)
        for f in fields(self):
            if f.name in ("run", "resume"):
                continue
            value = getattr(self, f.name)
            if value == getattr(plain, f.name):
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + f.name.replace("_", "-"))
            elif isinstance(value, tuple):
                argv += [flag, ",".join(map(str, value))]
            elif isinstance(value, float):
                argv += [flag, repr(value)]
            else:
                argv += [flag, str(value)]
        return argv + (["--json"] if as_json else [])

    def params(self, workspace_size: int) -> dict[str, Any]:
        """What a job shows of the request: the resolved options and the total epochs."""
        config = self.config(workspace_size)
        return {"size": config.size, "epochs": config.epochs, "batch": config.batch_size,
                "lr_d": config.lr_d, "lr_g": config.lr_g, "filters": config.gen_filters,
                "upsample": config.upsample,
                "progressive": list(config.progressive),
                "stage_epochs": list(config.stage_epochs),
                "total_epochs": config.total_epochs}


def training_files(ws: Workspace, request: TrainRequest) -> list[Path]:
    """The normalised files a new run trains on: the curated set (every ok image with
    ``include_flagged``), then a seeded share of it when ``fraction`` < 1."""
    with Catalog.reading(ws.catalog_path) as catalog:
        images = catalog.curated(include_flagged=request.include_flagged)
    return subset([ws.resolve(c.file) for c in images], request.fraction, request.seed)


def subset(files: list[Path], fraction: float, seed: int) -> list[Path]:
    """A seeded random share of the files (in their order), at least one."""
    if not 0 < fraction <= 1:
        raise InputError(f"--fraction {fraction}: give a share in (0, 1], e.g. 0.33")
    if fraction == 1 or not files:
        return files
    import numpy as np

    keep = max(1, round(len(files) * fraction))
    picked = np.sort(np.random.default_rng([seed, 1]).choice(len(files), keep, replace=False))
    return [files[i] for i in picked]


def dataset_record(files: list[Path]) -> dict[str, Any]:
    """dataset.json: the files a run trains on and their hash, the dataset version."""
    names = [str(f) for f in files]
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return {"count": len(names), "sha256": digest, "files": names}
