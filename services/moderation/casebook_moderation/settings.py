"""Settings of the moderation service (environment variables `CASEBOOK_*`)."""

from pydantic import Field

from casebook_platform.settings import CommonSettings


class Settings(CommonSettings):
    """The shared slices plus what only the moderation service needs."""

    service_name: str = Field("moderation", description="Service name (logs, metrics, consumer group).")
    http_port: int = Field(8082, description="Listen port.")
    claim_ttl_seconds: int = Field(1800, ge=1, description="How long an editor's claim on a case lasts.")
