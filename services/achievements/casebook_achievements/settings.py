"""Settings of the achievements service (environment variables `CASEBOOK_*`)."""

from pydantic import Field

from casebook_platform.settings import CommonSettings


class Settings(CommonSettings):
    """The shared slices plus what only the achievements service needs."""

    service_name: str = Field("achievements", description="Service name (logs, metrics, consumer group).")
    http_port: int = Field(8084, description="Listen port.")
