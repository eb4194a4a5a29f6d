"""The training options reach the step: bf16 mixed precision, hinge loss, no label smoothing,
instance noise, two D steps, no flips, a narrower resize-conv generator in one short run with
finite losses, whose generator then samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import run_cli


def test_a_run_with_every_option_changed(small_workspace: Path) -> None:
    res = run_cli("train", "-w", small_workspace, "--run", "options", "--epochs", "2",
                  "--batch", "16", "--mixed-precision", "--loss", "hinge",
                  "--no-label-smoothing", "--instance-noise", "0.2", "--d-steps", "2",
                  "--no-flip", "--checkpoint-every", "2", "--lr-d", "4e-5", "--lr-g", "4e-4",
                  "--filters", "16", "--upsample", "resize", "--json")
    assert res.code == 0, res.err
    run = small_workspace / "runs" / "options"
    config = json.loads((run / "config.json").read_text())
    assert (config["mixed_precision"], config["loss"], config["label_smoothing"],
            config["instance_noise"], config["d_steps"], config["flip"]) == (
        True, "hinge", False, 0.2, 2, False)
    assert (config["gen_filters"], config["disc_filters"], config["upsample"]) == (16, 16, "resize")
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert len(stats) == 2 and all(np.isfinite([s["d_loss"], s["g_loss"]]).all() for s in stats)
    assert (run / "checkpoints" / "epoch-0002" / "state.json").exists()
    # without flips the preview tiles are the training images themselves, unmirrored
    sources = [np.asarray(Image.open(p).convert("RGB"))
               for p in (small_workspace / "images" / "train").rglob("*.png")]
    grid = np.asarray(Image.open(run / "preview.png").convert("RGB"))
    tiles = [grid[r:r + 32, c:c + 32] for r in range(0, 128, 32) for c in range(0, 128, 32)]
    assert all(any(np.array_equal(t, s) for s in sources) for t in tiles)
    res = run_cli("generate", "-w", small_workspace, "--run", "options", "--n", "3")
    assert res.code == 0, res.err
    assert len(list((run / "generated").glob("*.png"))) == 3
