"""/export/curated.csv and .json: the curated set, exactly as `modescope export` writes it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modescope.app.errors import AppError
from modescope.core.errors import ModescopeError
from modescope.core.export import CuratedRow, curated_rows, to_csv, to_json
from modescope.core.workspace import Workspace

router = APIRouter()


class ExportFailed(AppError):
    status = 503
    title = "Nothing to export yet"


def _rows(request: Request) -> list[CuratedRow]:
    try:
        return curated_rows(Workspace(request.app.state.settings.workspace))
    except ModescopeError as exc:
        raise ExportFailed(str(exc)) from None


@router.get("/export/curated.csv", name="export_csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "The curated set"}})
def export_csv(request: Request) -> Response:
    return Response(to_csv(_rows(request)), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="curated.csv"'})


@router.get("/export/curated.json", name="export_json")
def export_json(request: Request) -> Response:
    return Response(to_json(_rows(request)), media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="curated.json"'})
