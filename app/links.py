"""The absolute URLs the JSON twins put in their answers, built without ``url_for``.

Starlette's ``request.url_for`` walks every route and raises (and formats) a ``NoMatchFound``
for each one that is not the one named: 0.1–0.2 ms a call, two per tile. The image-detail JSON
(about 25 tiles) spent more on its links than its HTML twin spent on the whole page, and
saturated at two thirds of the HTML page's rate (docs/reliability.md). The templates write
root-relative paths for the same reason; the JSON twins keep absolute URLs, so ``Links`` reads
the request's base once and appends the paths. ``tests/app/test_links.py`` checks every path
here against ``url_for``.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request


class Links:
    """One request's absolute URLs for the app's images and pages."""

    def __init__(self, request: Request) -> None:
        self.base = str(request.base_url).rstrip("/")

    def train_image(self, image_id: int, version: str | None = None) -> str:
        """A training image (``train_image``); with its version, the immutable pinned URL."""
        url = f"{self.base}/images/train/{image_id}.png"
        return f"{url}?v={version}" if version is not None else url

    def image_page(self, image_id: int) -> str:
        """A training image's page (``dataset_image``)."""
        return f"{self.base}/dataset/images/{image_id}"

    def sample_image(self, run: str, n: int) -> str:
        """A generated sample of a run (``sample_image``)."""
        return f"{self.base}/images/runs/{quote(run, safe='')}/{n}.png"

    def epoch_image(self, run: str, epoch: int) -> str:
        """A run's grid of one epoch (``epoch_image``)."""
        return f"{self.base}/images/runs/{quote(run, safe='')}/epochs/{epoch}.png"
