"""The JSON twins' links (app/links.py, built without ``url_for``, which walks every route)
are exactly what ``url_for`` gives, also behind a proxy's root path."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import Request

from modescope.app.links import Links
from modescope.app.main import create_app
from modescope.app.settings import Settings


@pytest.mark.parametrize("root_path", ["", "/modescope"])
def test_links_equal_url_for(tmp_path: Path, root_path: str) -> None:
    app = create_app(Settings(workspace=tmp_path))
    request = Request({
        "type": "http", "app": app, "router": app.router, "path": "/", "root_path": root_path,
        "headers": [(b"host", b"example.org:8000")], "scheme": "http",
        "server": ("example.org", 8000), "query_string": b""})
    links = Links(request)
    for image_id in (1, 42, 9_000_000_000):
        assert links.train_image(image_id) == str(request.url_for("train_image",
                                                                  image_id=image_id))
        assert links.train_image(image_id, "ab12") == (
            f"{request.url_for('train_image', image_id=image_id)}?v=ab12")
        assert links.image_page(image_id) == str(request.url_for("dataset_image",
                                                                 image_id=image_id))
    for run in ("demo", "run-2.b_c"):
        for n in (0, 17):
            assert links.sample_image(run, n) == str(request.url_for("sample_image", run=run,
                                                                     n=n))
            assert links.epoch_image(run, n) == str(request.url_for("epoch_image", run=run,
                                                                    epoch=n))
    assert links.image_page(1).startswith(f"http://example.org:8000{root_path}/")
