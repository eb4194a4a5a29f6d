"""The loop in real headless Chromium against a real ``modescope serve``: flag a training
image, "Retrain on the curated set and inspect" from the Jobs page, watch it finish, follow the
job's link to the compare page, which names the parent, the new run, the flags between them
and the sentence that says whether curation helped; screenshots of /jobs and /compare."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modescope.indexer.run_compare import MEASURES
from tests.app.conftest import Server
from tests.app.test_browser_runs import all_loaded, page, shoot  # noqa: F401  (page: fixture)

pytestmark = pytest.mark.browser
RUN = "browser-loop"


@pytest.fixture(scope="module")
def served(runs_workspace_base: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    ws = tmp_path_factory.mktemp("browser-loop") / "ws"
    shutil.copytree(runs_workspace_base, ws, symlinks=True)
    srv = Server(ws)
    yield srv
    srv.stop()


def job_status(pg: Any, run: str) -> str | None:
    from playwright.sync_api import Error as PlaywrightError

    try:
        status: str | None = pg.locator("tr.job", has_text=run).get_attribute(
            "data-status", timeout=5_000)
    except PlaywrightError:  # caught mid-refresh
        return None
    return status


def test_flag_retrain_and_inspect_then_the_compare_page_says_whether_it_helped(
        page: Any, served: Server, tmp_path: Path) -> None:  # noqa: F811
    for kind in ("modes", "memorisation"):  # the parent run has been inspected
        assert httpx.get(f"{served.url}/api/runs/tiny/analyses/{kind}",
                         timeout=120).status_code == 200
    page.goto(served.url + "/dataset/images/3")
    page.locator("#flag-one button.flag").click()
    page.wait_for_load_state("load")
    assert "flagged: noisy" in page.locator(".flag-state").inner_text()
    page.goto(served.url + "/jobs")
    form = page.locator("#retrain-form")
    assert "tiny" in form.locator("select[name=parent] option").first.inner_text()
    form.locator("input[name=run]").fill(RUN)
    form.locator("select[name=size]").select_option("32")
    form.locator("input[name=epochs]").fill("1")
    form.locator("input[name=batch]").fill("16")
    form.locator("input[name=n]").fill("60")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/jobs*")
    deadline = time.monotonic() + 480
    status = job_status(page, RUN)
    while time.monotonic() < deadline and status not in ("finished", "failed", "cancelled",
                                                          "interrupted"):
        time.sleep(1)
        status = job_status(page, RUN)
    assert status == "finished", page.locator("pre.log").first.inner_text()
    shoot(page, tmp_path, "jobs-retrain-finished")
    page.locator("tr.job", has_text=RUN).locator("a", has_text="did curation help?").click()
    page.wait_for_url("**/compare?a=tiny&b=" + RUN)
    assert page.locator("section.side").count() == 2
    names = page.locator("section.side h2 a").all_inner_texts()
    assert names == ["tiny", RUN]
    assert "retrained from tiny after 1 flag" in page.locator("p.lineage").inner_text()
    sentence = page.locator(".verdict-sentence").inner_text()
    assert RUN in sentence and "tiny" in sentence
    assert page.locator("tr.measure").count() == len(MEASURES)
    all_loaded(page, ".compare img")
    shoot(page, tmp_path, "compare-did-curation-help")
    page.goto(served.url + f"/runs/{RUN}")
    page.locator("#compare-parent").click()
    page.wait_for_url("**/compare?a=tiny&b=" + RUN)
