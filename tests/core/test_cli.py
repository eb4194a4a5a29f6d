"""The command line as users meet it: help, one-line errors, exit codes, env and --json."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli
from tests.images import picture, save


def test_help_lists_every_command() -> None:
    res = run_cli("--help")
    assert res.code == 0
    for command in ("ingest", "demo-data", "status", "serve"):
        assert command in res.out


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    res = run_cli("ingest", tmp_path / "nope", "-w", tmp_path / "ws")
    assert res.code == 2
    assert res.err == (f"modescope: error: folder {tmp_path / 'nope'} does not exist; "
                       "give the folder of your training images\n")
    res = run_cli("status", "-w", tmp_path / "nowhere")
    assert res.code == 2 and "Traceback" not in res.err
    assert "is not a modescope workspace" in res.err and "modescope ingest" in res.err


def test_workspace_comes_from_the_environment(tmp_path: Path) -> None:
    save(picture(), tmp_path / "in" / "x.png")
    env = {"MODESCOPE_WORKSPACE": str(tmp_path / "from-env")}
    assert run_cli("ingest", tmp_path / "in", env=env).code == 0
    status = run_cli("status", "--json", env=env).json()
    assert status["workspace"] == str(tmp_path / "from-env")
    assert status["counts"] == {"ok": 1, "duplicate": 0, "rejected": 0, "total": 1,
                                "held_out": 0}


def test_exit_codes_nothing_readable_and_strict(tmp_path: Path) -> None:
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.jpg").write_text("not an image")
    res = run_cli("ingest", texts, "-w", tmp_path / "ws1")
    assert res.code == 1 and "no readable image" in res.err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("ingest", empty, "-w", tmp_path / "ws2").code == 1

    mixed = tmp_path / "mixed"
    save(picture(), mixed / "ok.png")
    (mixed / "bad.jpg").write_text("not an image")
    assert run_cli("ingest", mixed, "-w", tmp_path / "ws3").code == 0
    assert run_cli("ingest", mixed, "-w", tmp_path / "ws4", "--strict").code == 1
    # strict also counts rejections recorded by an earlier ingest of the same folder
    again = run_cli("ingest", mixed, "-w", tmp_path / "ws3", "--strict")
    assert again.code == 1 and "0 rejected (2 unchanged" in again.out


def test_human_summary_and_rejections_on_stderr(tmp_path: Path) -> None:
    save(picture(), tmp_path / "in" / "ok.png")
    (tmp_path / "in" / "bad.jpg").write_bytes(b"")
    res = run_cli("ingest", tmp_path / "in", "-w", tmp_path / "ws")
    assert res.out.startswith("1 ok, 0 duplicate, 1 rejected")
    assert f"rejected: {tmp_path / 'in' / 'bad.jpg'}: empty file: 0 bytes" in res.err
    status = run_cli("status", "-w", tmp_path / "ws")
    assert "1 ok, 0 duplicate, 1 rejected" in status.out and "empty file" in status.out


def test_a_second_ingest_on_the_same_workspace_is_refused_while_one_runs(tmp_path: Path) -> None:
    import fcntl
    import os

    save(picture(), tmp_path / "in" / "x.png")
    lock = tmp_path / "ws" / "locks" / "ingest.lock"
    assert run_cli("ingest", tmp_path / "in", "-w", tmp_path / "ws").code == 0
    fd = os.open(lock, os.O_RDWR)
    os.pwrite(fd, b"4242", 0)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        res = run_cli("ingest", tmp_path / "in", "-w", tmp_path / "ws")
    finally:
        os.close(fd)
    assert res.code == 2 and "another ingest is running" in res.err and "4242" in res.err


def test_python_dash_m_has_every_subcommand() -> None:
    """`python -m modescope.cli` (used where no console script exists) registers the commands on
    the importable module, not on a second __main__ copy that has none."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "modescope.cli", "experiment", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "create" in proc.stdout and "run" in proc.stdout


def test_tensorflow_start_up_lines_stay_out_of_the_output(tmp_path: Path) -> None:
    """A TensorFlow command's stderr holds its own lines only (no CUDA probe, absl or oneDNN
    chatter); MODESCOPE_VERBOSE=1 would let them through."""
    import numpy as np
    from PIL import Image

    for i in range(6):
        pixels = np.random.default_rng(i).integers(0, 256, (48, 48, 3), dtype=np.uint8)
        (tmp_path / "in").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(tmp_path / "in" / f"{i}.png")
    assert run_cli("ingest", tmp_path / "in", "-w", tmp_path / "ws").code == 0
    res = run_cli("train", "-w", tmp_path / "ws", "--run", "r", "--epochs", "1")
    assert res.code != 0
    lines = res.err.splitlines()
    assert lines[-1] == ("modescope: error: 6 curated images are fewer than one batch (64); "
                         "lower --batch")
    assert all(line.startswith(("warning: ", "modescope: ")) for line in lines), lines
