"""Web-app settings: typed, read once in ``create_app`` (env prefix ``MODESCOPE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MIN_TOKEN_CHARS = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODESCOPE_", frozen=True)

    workspace: Path = Field(Path("modescope-workspace"), description="Workspace folder")
    page_size: int = Field(60, ge=1, le=500, description="Thumbnails per grid page")
    # security (app/security.py): off loopback a token is required; a token is always honoured
    host: str = Field("127.0.0.1", description="Address the server listens on")
    token: SecretStr | None = Field(None, description="Login token (MODESCOPE_TOKEN)")
    session_secret: SecretStr | None = Field(None, description=(
        "Signs session cookies when there is no token (else a random one per start); "
        "`modescope serve --workers N` shares one among its processes"))
    secure_cookies: bool = Field(False, description="Mark the session cookie Secure (HTTPS)")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Largest request body accepted")
    worker_threads: int = Field(8, ge=1, le=256, description=(
        "Threads for blocking page work (each page that waits for a first analysis holds one "
        "for up to analysis_wait_s)"))
    analysis_wait_s: float = Field(10.0, ge=0, le=300, description=(
        "How long a dataset page waits for a background analysis before showing 'computing'"))

    @field_validator("token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def check_exposure(self) -> None:
        """Refuse to serve a non-loopback address without a token (ValueError says why)."""
        if self.token is not None and len(self.token.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"the token is shorter than {MIN_TOKEN_CHARS} characters; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe())'`")
        if self.host not in LOOPBACK_HOSTS and self.token is None:
            raise ValueError(
                f"refusing to serve on {self.host} without a token: anyone who can reach the "
                "port could read and change the workspace; set MODESCOPE_TOKEN or pass "
                "--token-file, or serve on 127.0.0.1")
