"""The wheel as a user installs it: it holds the templates and static files, installs one
top-level package (``modescope``), and ``modescope serve`` from a fresh virtual environment, with
neither the source tree nor the editable install on its path, answers every page."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import Server

pytestmark = pytest.mark.slow  # builds a wheel, makes a virtual environment, starts a server

ROOT = Path(__file__).resolve().parents[1]
CACHES = shutil.ignore_patterns("__pycache__", "*.pyc")
ROOMS = ("core", "cli", "app", "indexer", "trainer")
VIEWS = ("all", "modes", "outliers", "duplicates", "flagged", "suggest")  # the dataset page's

# the runs workspace (tests/app/runs_fixtures.py): run "imported" (real images as samples,
# indexed) and run "tiny" (a 2-epoch DCGAN with grids, a checkpoint and indexed samples)
PAGES = (
    "/", "/?page=2", "/health", "/api/overview",
    *(f"/dataset?view={view}" for view in VIEWS),
    "/runs", "/runs/imported", "/runs/tiny", "/runs/tiny?epoch=1", "/runs/imported/modes",
    "/runs/imported/samples", "/runs/imported/samples/5", "/runs/tiny/samples", "/api/runs",
    "/jobs", "/experiments", "/compare", "/compare?a=imported&b=tiny",
    "/docs", "/openapi.json", "/export/curated.csv", "/export/curated.json",
    "/images/runs/imported/7.png", "/images/runs/tiny/epochs/1.png",
)


def clean_env() -> dict[str, str]:
    """This process's environment without what would put the source tree on the path."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "MODESCOPE_WORKSPACE"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def run(*args: str | Path, cwd: Path) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          env=clean_env(), cwd=cwd, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def build_context(dest: Path) -> Path:
    """What the build reads, copied: pyproject.toml, README.md, modescope/ and the folders its
    links point to. Building in the checkout would reuse its build/ folder, whose stale files
    setuptools packs into the wheel."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "modescope", dest / "modescope", symlinks=True, ignore=CACHES)
    for link in (ROOT / "modescope").iterdir():
        if link.is_symlink():
            target = link.resolve()
            assert target.parent == ROOT, f"{link} points outside the checkout"
            shutil.copytree(target, dest / target.name, ignore=CACHES)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = build_context(tmp / "src")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--disable-pip-version-check", "-q", "-w", tmp / "dist", src, cwd=tmp)
    (whl,) = (tmp / "dist").glob("modescope-*.whl")
    return whl


@dataclass(frozen=True)
class Installed:
    bin: Path
    site_packages: Path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh virtual environment with the wheel installed offline. Its dependencies come from
    this environment: a .pth file appends this site-packages to its path, after its own (the
    .pth files in there, the editable install's among them, are not run)."""
    where = tmp_path_factory.mktemp("venv")
    env = where / "env"
    run(sys.executable, "-m", "venv", env, cwd=where)
    python = env / "bin" / "python"
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
        "-q", wheel, cwd=where)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=where).strip())
    ours = sorted({sysconfig.get_paths()[key] for key in ("purelib", "platlib")})
    (site / "zz_test_dependencies.pth").write_text("".join(f"{p}\n" for p in ours))
    return Installed(env / "bin", site)


def test_the_wheel_holds_every_module_template_and_static_file_under_modescope_only(
        wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert zf.read(top_level).decode().split() == ["modescope"]
    dist_info = top_level.split("/")[0]
    assert {n.split("/")[0] for n in names} == {"modescope", dist_info}
    wanted = {f"modescope/{p.relative_to(ROOT).as_posix()}"
              for room in ROOMS for p in (ROOT / room).rglob("*.py")}
    wanted |= {f"modescope/templates/{p.name}" for p in (ROOT / "templates").glob("*.html")}
    wanted |= {f"modescope/{p.relative_to(ROOT).as_posix()}"
               for p in (ROOT / "static").rglob("*") if p.is_file()}
    assert any(n.startswith("modescope/static/vendor/") for n in wanted)
    assert wanted - names == set()
    assert {"modescope/__init__.py", "modescope/__main__.py", "modescope/py.typed"} <= names


def test_the_fresh_environment_imports_modescope_from_its_own_site_packages(
        installed: Installed, tmp_path: Path) -> None:
    out = run(installed.bin / "python", "-c",
              "import modescope, modescope.app.main as m\n"
              "print(modescope.__file__)\n"
              "print(m.package_dir('templates'))\n"
              "print(m.package_dir('static'))", cwd=tmp_path).split("\n")
    package = installed.site_packages / "modescope"
    assert out[:3] == [str(package / "__init__.py"), str(package / "templates"),
                       str(package / "static")]
    assert not (package / "app").is_symlink()  # the files themselves, not links to a checkout


def static_urls(html: str) -> set[str]:
    return {m.split("?")[0] for m in re.findall(r'(?:src|href)="(/static/[^"]+)"', html)}


def test_modescope_serve_from_the_wheel_answers_every_page_and_stops_cleanly(
        installed: Installed, wheel: Path, runs_workspace_base: Path,
        tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(runs_workspace_base, ws, symlinks=True)
    server = Server(ws, start_s=120, command=[str(installed.bin / "modescope")],
                    env=clean_env(), cwd=tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            image_id = client.get("/api/overview").json()["images"][0]["id"]
            pages = [*PAGES, f"/dataset/images/{image_id}", f"/images/train/{image_id}.png"]
            linked: set[str] = set()
            for url in pages:
                res = client.get(url)
                assert res.status_code == 200, f"{url}: {res.status_code} {res.text[:500]}"
                if res.headers["content-type"].startswith("text/html"):
                    linked |= static_urls(res.text)
            with zipfile.ZipFile(wheel) as zf:
                shipped = {"/" + n.removeprefix("modescope/"): zf.read(n)
                           for n in zf.namelist() if n.startswith("modescope/static/")}
            assert linked and linked <= set(shipped), linked - set(shipped)
            for url, body in shipped.items():
                res = client.get(url)
                assert res.status_code == 200 and res.content == body, url
    finally:
        code = server.stop()
    # a graceful shutdown: the app's lifespan ran to its end, then uvicorn re-raised SIGTERM
    assert code == -signal.SIGTERM and "Application shutdown complete" in server.output(), (
        code, server.output())
