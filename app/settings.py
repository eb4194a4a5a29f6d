"""Web-app settings: typed, read once in ``create_app`` (env prefix ``MODESCOPE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODESCOPE_", frozen=True)

    workspace: Path = Field(Path("modescope-workspace"), description="Workspace folder")
    page_size: int = Field(60, ge=1, le=500, description="Thumbnails per grid page")
