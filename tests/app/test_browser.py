"""The overview page in real headless Chromium: thumbnails render, paging works."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.browser import chromium
from tests.app.conftest import Server

pytestmark = pytest.mark.browser


def wait_until(page: Any, expression: str, timeout_s: float = 10.0) -> None:
    """Poll a JS expression with page.evaluate: wait_for_function evals inside the page, which
    the app's CSP (no 'unsafe-eval') rightly forbids."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1280, "height": 900})


def test_overview_shows_counts_and_loaded_thumbnails(page: Any, server: Server,
                                                     tmp_path: Path) -> None:
    page.goto(server.url + "/")
    assert page.locator(".count[data-kind=ok] .n").inner_text() == "297"
    imgs = page.locator("ul.grid img")
    assert imgs.count() == 60
    # lazy images below the fold load as they scroll in: scroll, then every one is decoded
    page.mouse.wheel(0, 10_000)
    wait_until(page, "[...document.querySelectorAll('ul.grid img')].every(i => i.complete)")
    widths = page.eval_on_selector_all("ul.grid img", "els => els.map(e => e.naturalWidth)")
    assert widths == [64] * 60
    shot = Path(os.environ.get("MODESCOPE_SCREENSHOTS", tmp_path)) / "overview.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_next_link_moves_to_the_second_page(page: Any, server: Server) -> None:
    page.goto(server.url + "/")
    first = page.locator("ul.grid img").first.get_attribute("src")
    page.locator("a[rel=next]").first.click()
    page.wait_for_url("**/?page=2")
    assert "page 2 of 5" in page.locator(".pager").first.inner_text()
    assert page.locator("ul.grid img").first.get_attribute("src") != first
