"""The runs side's resources, opened in the app's lifespan and closed on shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from modescope.app.analyses import Analyses
from modescope.app.jobs import JobRunner
from modescope.app.neighbours import IndexCache
from modescope.app.run_images import EtagCache
from modescope.app.runs_view import RunsView
from modescope.app.samples_view import SamplesView
from modescope.app.settings import Settings
from modescope.core.workspace import Workspace


@dataclass
class RunsSide:
    ws: Workspace
    analyses: Analyses
    indexes: IndexCache
    runs: RunsView
    samples: SamplesView
    etags: EtagCache
    jobs: JobRunner
    analysis_wait_s: float  # how long a page waits for a first analysis (Settings)
    page_size: int

    def close(self) -> None:
        self.jobs.stop()
        self.analyses.close()


def open_runs_side(app: FastAPI, ws: Workspace, settings: Settings) -> RunsSide:
    analyses = Analyses(ws)
    indexes = IndexCache(ws)
    runs = RunsView(ws, analyses)
    side = RunsSide(ws, analyses, indexes, runs, SamplesView(runs, indexes), EtagCache(),
                    JobRunner(ws), settings.analysis_wait_s, settings.page_size)
    side.jobs.start()
    app.state.runs_side = side
    return side
