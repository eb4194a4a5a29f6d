"""/export/curated.csv and .json: the curated set, exactly as `modescope export` writes it.

No catalog yet is core's ``WorkspaceError``: a 503 saying to run `modescope ingest`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from modescope.app.deps import WorkspaceDep
from modescope.core.export import curated_rows, to_csv, to_json

router = APIRouter(prefix="/export", tags=["export"])
routers = (router,)


@router.get("/curated.csv", name="export_csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "The curated set"}})
def export_csv(ws: WorkspaceDep) -> Response:
    return Response(to_csv(curated_rows(ws)), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="curated.csv"'})


@router.get("/curated.json", name="export_json")
def export_json(ws: WorkspaceDep) -> Response:
    return Response(to_json(curated_rows(ws)), media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="curated.json"'})
