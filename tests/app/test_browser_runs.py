"""The runs side in real headless Chromium against a real ``modescope serve`` process:
gallery -> sample with 24 + 24 neighbours, modes, the timeline slider, a retrain started from
the Jobs page watched to "finished", compare; screenshots of every page."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.browser import chromium
from tests.app.conftest import Server

pytestmark = pytest.mark.browser
SHOTS_COPY = Path("/tmp/shots")


@pytest.fixture(scope="module")
def served(runs_workspace_base: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    ws = tmp_path_factory.mktemp("browser-runs") / "ws"
    shutil.copytree(runs_workspace_base, ws, symlinks=True)
    srv = Server(ws)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with chromium() as browser:
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        # CSP violations and script errors; failed loads are recorded with their URL below
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error"
              and not m.text.startswith("Failed to load resource") else None)
        pg.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
              and not r.url.endswith("/favicon.ico") else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.console_errors = errors
        yield pg


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("MODESCOPE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    SHOTS_COPY.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / f"{name}.png", SHOTS_COPY / f"{name}.png")
    assert page.console_errors == [], page.console_errors  # CSP violations land here too


def all_loaded(page: Any, selector: str) -> list[int]:
    page.mouse.wheel(0, 20_000)
    page.wait_for_function(  # a function, not a string: the CSP forbids eval
        "sel => [...document.querySelectorAll(sel)].every(i => i.complete)", arg=selector,
        timeout=20_000)
    widths: list[int] = page.eval_on_selector_all(selector, "els => els.map(e => e.naturalWidth)")
    return widths


def test_gallery_then_a_sample_with_24_plus_24_neighbours(page: Any, served: Server,
                                                          tmp_path: Path) -> None:
    page.goto(served.url + "/runs/imported/samples")
    assert all_loaded(page, "ul.grid.samples img") == [64] * 60
    shoot(page, tmp_path, "samples")
    page.locator("ul.grid.samples a").nth(3).click()
    page.wait_for_url("**/runs/imported/samples/3")
    for layer in ("block1", "block5"):
        sel = f"section[data-layer={layer}] ol.nn img"
        assert all_loaded(page, sel) == [64] * 24, layer
    assert "24 nearest training images on block1" in page.content()
    assert page.locator(".verdict").first.inner_text() in ("copy", "novel", "close")
    shoot(page, tmp_path, "sample")
    first = page.locator("section[data-layer=block5] ol.nn a").first
    href = first.get_attribute("href")
    assert href.startswith("/dataset/images/")
    # flag that neighbour on its training-image page, come back, reload: still flagged
    first.click()
    page.wait_for_url("**" + href)
    page.locator("#flag-one button.flag").click()
    page.wait_for_load_state("load")
    assert "flagged: noisy" in page.locator(".flag-state").inner_text()
    page.goto(served.url + "/runs/imported/samples/3")
    page.reload()
    flagged = page.locator("section[data-layer=block5] ol.nn li.flagged a")
    assert href in [flagged.nth(i).get_attribute("href") for i in range(flagged.count())]
    page.goto(served.url + href)
    page.locator("#flag-one button.unflag").click()  # leave the shared workspace as it was
    page.wait_for_load_state("load")
    page.goto(served.url + "/runs/imported/samples?sort=copied")
    assert all_loaded(page, "ul.grid.samples img") == [64] * 60
    shoot(page, tmp_path, "samples-most-copied")


def test_modes_page_shows_bins_with_bars_and_examples(page: Any, served: Server,
                                                      tmp_path: Path) -> None:
    page.goto(served.url + "/runs/imported/modes")
    assert float(page.locator("#ndb-k").inner_text()) >= 0
    rows = page.locator("tr.bin")
    assert rows.count() >= 2
    width = page.eval_on_selector("svg.bar-gen .fill", "e => e.getBBox().width")
    assert width >= 0
    all_loaded(page, "ul.strip img")
    shoot(page, tmp_path, "modes")


def test_timeline_slider_swaps_the_epoch_grid(page: Any, served: Server,
                                              tmp_path: Path) -> None:
    page.goto(served.url + "/runs/tiny")
    assert page.locator("section[aria-labelledby=loss-h] svg.chart polyline").count() == 2
    # tiny was scored at its last checkpoint: NDB/K, copy rate, dropped/K and coverage
    assert page.locator("section[aria-labelledby=ndb-h] svg.chart polyline").count() == 4
    img = page.locator("#timeline-img")
    assert img.get_attribute("src").endswith("/epochs/2.png")
    page.locator("#timeline-slider").fill("0")
    page.wait_for_function(
        "() => document.getElementById('timeline-img').src.endsWith('/epochs/1.png')")
    assert page.locator("#timeline-epoch").inner_text() == "1"
    shoot(page, tmp_path, "run-timeline")
    page.goto(served.url + "/runs")
    shoot(page, tmp_path, "runs")
    page.goto(served.url + "/compare?a=imported&b=tiny")
    assert page.locator("section.side").count() == 2
    all_loaded(page, ".compare img")
    shoot(page, tmp_path, "compare")


def test_a_retrain_started_from_the_jobs_page_reaches_finished(page: Any, served: Server,
                                                               tmp_path: Path) -> None:
    page.goto(served.url + "/jobs")
    form = page.locator("#train-form")
    form.locator("input[name=run]").fill("browser-retrain")
    form.locator("select[name=size]").select_option("32")
    form.locator("input[name=epochs]").fill("1")
    form.locator("input[name=batch]").fill("16")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/jobs*")
    row = page.locator("tr.job", has_text="browser-retrain")
    assert row.get_attribute("data-status") in ("queued", "running", "finished")
    shoot(page, tmp_path, "jobs-running")
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + 180
    status: str | None = None
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    while time.monotonic() < deadline:  # the page refreshes itself while a job is active
        try:
            status = page.locator("tr.job", has_text="browser-retrain").get_attribute(
                "data-status", timeout=5_000)
        except PlaywrightError:  # caught mid-refresh
            continue
        if status in ("finished", "failed", "cancelled", "interrupted"):
            break
        time.sleep(1)
    assert status == "finished", page.locator("pre.log").first.inner_text()
    assert len(loads) >= 2 and loads[-1].endswith("/jobs")  # the page refreshed by itself
    assert page.locator("tr.job", has_text="browser-retrain").locator(
        "progress").get_attribute("value") is not None
    shoot(page, tmp_path, "jobs-finished")
    page.goto(served.url + "/runs/browser-retrain")
    assert page.locator("#timeline-img").count() == 1
    page.goto(served.url + "/")
    assert page.locator('tr[data-run="browser-retrain"]').count() == 1
    shoot(page, tmp_path, "overview-with-runs")


def test_the_server_process_never_loaded_tensorflow(served: Server) -> None:
    maps = Path(f"/proc/{served.proc.pid}/maps").read_text()
    assert "tensorflow" not in maps and "libjax" not in maps
    assert "faiss" in maps  # the check sees native libraries: FAISS is loaded
