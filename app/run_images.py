"""Image responses with a strong ETag (the content's hash) and immutable caching.

A URL names content that never changes under it (a sample number within a run, an epoch's
grid), so browsers keep it for a year and revalidate only on a reload: ``If-None-Match`` -> 304.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response

CACHE_CONTROL = "public, max-age=31536000, immutable"
# what an image route documents in OpenAPI: PNG bodies and revalidation
PNG_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"image/png": {}}, "description": "The image"},
    304: {"description": "Not modified (If-None-Match)"}}


class EtagCache:
    """path -> (mtime_ns, size, etag): each file is hashed once per version."""

    def __init__(self, limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._seen: dict[Path, tuple[int, int, str]] = {}
        self.limit = limit

    def etag(self, path: Path, data: bytes, mtime_ns: int) -> str:
        with self._lock:
            hit = self._seen.get(path)
        if hit and hit[0] == mtime_ns and hit[1] == len(data):
            return hit[2]
        tag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        with self._lock:
            if len(self._seen) >= self.limit:
                self._seen.clear()
            self._seen[path] = (mtime_ns, len(data), tag)
        return tag


def image_response(request: Request, path: Path, cache: EtagCache) -> Response:
    data = path.read_bytes()
    tag = cache.etag(path, data, path.stat().st_mtime_ns)
    headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL}
    match = request.headers.get("if-none-match", "")
    if tag in {t.strip() for t in match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/png", headers=headers)
