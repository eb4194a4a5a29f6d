"""SIGTERM cancels `modescope train` cleanly (checkpoint, status, exit 0) and --resume finishes;
progress.json follows the contract the web app reads; failures are recorded there."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import modescope_cmd, run_cli

CONTRACT = {"status", "step", "total_steps", "epoch", "total_epochs", "d_loss", "g_loss",
            "images_per_s", "eta_s", "size", "updated_at", "pid"}


def read_progress(run: Path) -> dict:
    try:
        return json.loads((run / "progress.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_sigterm_cancels_with_a_checkpoint_and_resume_finishes(small_workspace: Path) -> None:
    run = small_workspace / "runs" / "cancel"
    proc = subprocess.Popen([*modescope_cmd(), "train", "-w", str(small_workspace), "--run",
                             "cancel", "--epochs", "200", "--batch", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        progress = read_progress(run)
        if progress.get("step", 0) >= 1 and progress.get("d_loss") is not None:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    running = read_progress(run)
    assert set(running) >= CONTRACT and running["status"] == "running"
    assert running["pid"] == proc.pid and running["size"] == 32
    assert running["images_per_s"] > 0 and running["eta_s"] > 0
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "--resume cancel" in out
    done = read_progress(run)
    assert done["status"] == "cancelled", done
    state = json.loads((run / "checkpoints" / "latest" / "state.json").read_text())
    assert state["step"] == done["step"] >= running["step"]
    assert state["epoch"] < 200

    # resume, shortened to two more epochs (--epochs with --resume sets the run's new total)
    res = run_cli("train", "-w", small_workspace, "--resume", "cancel", "--epochs",
                  str(state["epoch"] + 2), "--json")
    assert res.code == 0, res.err
    per_epoch = json.loads((run / "dataset.json").read_text())["count"] // 8
    assert res.json()["step"] == (state["epoch"] + 2) * per_epoch  # no step lost or repeated
    final = read_progress(run)
    assert final["status"] == "finished" and final["step"] == final["total_steps"]
    assert final["epoch"] == final["total_epochs"] == state["epoch"] + 2


def test_a_failed_run_says_why_in_progress_json(small_workspace: Path) -> None:
    res = run_cli("train", "-w", small_workspace, "--run", "toobig", "--batch", "4096")
    assert res.code == 2 and "fewer than one batch" in res.err and "Traceback" not in res.err
    progress = read_progress(small_workspace / "runs" / "toobig")
    assert progress["status"] == "failed" and "lower --batch" in progress["error"]


def test_bad_options_are_refused_before_training(small_workspace: Path) -> None:
    res = run_cli("train", "-w", small_workspace, "--run", "bad", "--progressive", "32,x")
    assert res.code == 2 and "--progressive '32,x'" in res.err
    res = run_cli("train", "-w", small_workspace, "--run", "bad", "--size", "64",
                  "--progressive", "32,64")
    assert res.code == 2 and "stage_epochs" in res.err


def test_a_cancel_at_an_epochs_last_step_ends_that_epoch_and_resume_finishes(
        small_workspace: Path) -> None:
    from modescope.core.training import TrainConfig, TrainRequest, training_files
    from modescope.core.workspace import Workspace
    from modescope.trainer.loop import train

    ws = Workspace(small_workspace)
    run = ws.run("edge")
    files = training_files(ws, TrainRequest(run="edge"))
    per_epoch = len(files) // 8
    config = TrainConfig(size=32, gen_filters=8, disc_filters=8, batch_size=8, epochs=3)
    steps: list[int] = []
    result = train(config, run, files, progress_fn=lambda info: steps.append(info["step"]),
                   abort_fn=lambda: steps[-1] == per_epoch)
    assert result == {"status": "cancelled", "epoch": 1, "step": per_epoch}
    # the epoch's end came first: its stats row, grid and a checkpoint at the boundary
    assert run.checkpoint_state()["epoch"] == 1 and run.checkpoint_state()["batch_in_epoch"] == 0
    assert [s["epoch"] for s in run.stats()] == [1] and run.grid_epochs() == [1]
    assert (run.progress() or {})["status"] == "cancelled"
    result = train(config, run, files, resume=True)
    assert result == {"status": "finished", "epoch": 3, "step": 3 * per_epoch}
    assert [s["step"] for s in run.stats()] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
