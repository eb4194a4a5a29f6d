"""Curation in real headless Chromium: flag two from the grid, reload, unflag by keyboard,
flag from a training-image page. Screenshots of every dataset page (pytest tmp dir and
/tmp/shots/); no CSP violation on any page."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.browser import chromium
from tests.app.conftest import Server

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots")


@pytest.fixture
def browser_page() -> Iterator[tuple[Any, list[str]]]:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        yield page, problems


@pytest.fixture
def live(dataset_ws: Path) -> Iterator[Server]:
    srv = Server(dataset_ws)
    yield srv
    srv.stop()


def shot(page: Any, tmp_path: Path, name: str) -> None:
    """Full-page screenshot once every (lazy) image has loaded."""
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height + 900, 600):
        page.evaluate(f"window.scrollTo(0, {y})")
        time.sleep(0.02)
    deadline = time.monotonic() + 10
    while not page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth)"):
        assert time.monotonic() < deadline, f"{name}: images did not load"
        time.sleep(0.05)
    page.evaluate("window.scrollTo(0, 0)")
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def flagged_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("li.tile.flagged", "els => els.map(e => e.dataset.id)")


def test_curate_in_the_browser(browser_page: tuple[Any, list[str]], live: Server,
                               tmp_path: Path) -> None:
    page, problems = browser_page
    page.goto(live.url + "/dataset")
    assert page.locator("li.tile").count() == 60
    shot(page, tmp_path, "dataset-all")

    # select two with the mouse, flag them as noisy
    page.locator("li.tile[data-id='2'] input[type=checkbox]").check()
    page.locator("li.tile[data-id='5'] input[type=checkbox]").check()
    assert page.locator("li.tile.selected").count() == 2  # app.js marks the selection
    page.select_option("#curate select[name=reason]", "noisy")
    page.click("#curate button.flag")
    page.wait_for_url("**done=flagged+2+as+noisy")
    assert "Done: flagged 2 as noisy." in page.inner_text(".banner.ok")
    page.reload()
    assert sorted(flagged_ids(page)) == ["2", "5"]
    assert page.locator("li.tile[data-id='2'] .badge").inner_text() == "flagged: noisy"

    page.click("nav.tabs >> text=Flagged (2)")
    page.wait_for_url("**view=flagged")
    assert sorted(page.eval_on_selector_all("li.tile", "els => els.map(e => e.dataset.id)")) \
        == ["2", "5"]
    shot(page, tmp_path, "dataset-flagged")

    # keyboard: j focuses the first tile, x selects it, u unflags it
    first = page.eval_on_selector("li.tile", "e => e.dataset.id")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.locator("li.tile.selected").count() == 1
    page.keyboard.press("u")
    page.wait_for_url("**done=unflagged+1")
    remaining = page.eval_on_selector_all("li.tile", "els => els.map(e => e.dataset.id)")
    assert remaining == [i for i in ["2", "5"] if i != first]
    assert "Flagged (1)" in page.inner_text("nav.tabs")

    # a training-image page: flag it as off-topic from its own form
    page.goto(live.url + "/dataset?view=outliers")
    shot(page, tmp_path, "dataset-outliers")
    target = page.eval_on_selector("li.tile", "e => e.dataset.id")
    page.click(f"li.tile[data-id='{target}'] a.thumb")
    page.wait_for_url(f"**/dataset/images/{target}")
    shot(page, tmp_path, "image-before")
    page.select_option("#flag-one select[name=reason]", "off-topic")
    page.fill("#flag-one input[name=note]", "a stray photo")
    page.click("#flag-one button.flag")
    page.wait_for_url("**done=flagged+1+as+off-topic")
    assert page.inner_text("dd.flag-state").startswith("flagged: off-topic")
    assert "a stray photo" in page.inner_text("dd.flag-state")
    shot(page, tmp_path, "image-flagged")
    page.reload()
    assert page.locator(".detail.flagged").count() == 1

    for view in ("modes", "duplicates", "suggest"):
        page.goto(live.url + f"/dataset?view={view}")
        assert page.locator("li.tile").count() > 0, view
        shot(page, tmp_path, f"dataset-{view}")
    page.goto(live.url + "/login")
    shot(page, tmp_path, "login")

    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], \
        problems


def test_login_with_the_token_in_the_browser(browser_page: tuple[Any, list[str]],
                                             dataset_ws_base: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    page, problems = browser_page
    monkeypatch.setenv("MODESCOPE_TOKEN", "browser-test-token-0123456789")
    srv = Server(dataset_ws_base)
    try:
        page.goto(srv.url + "/dataset?view=flagged")
        page.wait_for_url("**/login?next=**")
        page.fill("#token", "wrong-token-wrong-token")
        page.click("form.login button")
        assert "not this server" in page.inner_text(".banner.error")
        shot(page, tmp_path, "login-refused")
        page.fill("#token", "browser-test-token-0123456789")
        page.click("form.login button")
        page.wait_for_url("**/dataset?view=flagged")
        cookie = next(c for c in page.context.cookies() if c["name"] == "modescope_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # invisible to scripts
        page.click("form.logout button")
        page.wait_for_url("**/login")
        page.goto(srv.url + "/dataset")
        page.wait_for_url("**/login?next=**")
    finally:
        srv.stop()
    assert not [p for p in problems if "Content Security Policy" in p], problems


def test_api_docs_render_offline_under_the_csp(browser_page: tuple[Any, list[str]],
                                               live: Server, tmp_path: Path) -> None:
    page, problems = browser_page
    page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(
        live.url) else route.continue_())  # offline: nothing but the app itself
    page.goto(live.url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.innerText)")
    assert "/api/dataset" in [p.replace("\u200b", "") for p in paths]
    shot(page, tmp_path, "docs")
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], \
        problems
