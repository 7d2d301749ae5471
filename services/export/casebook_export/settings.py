"""Settings of the export service (environment variables `CASEBOOK_*`)."""

from pydantic import Field

from casebook_platform.settings import CommonSettings


class Settings(CommonSettings):
    """The shared slices plus what only the export service needs."""

    service_name: str = Field("export", description="Service name (logs, metrics, consumer group).")
    http_port: int = Field(8085, description="Listen port.")
