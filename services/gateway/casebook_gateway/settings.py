"""Settings of the gateway service (environment variables `CASEBOOK_*`)."""

from pydantic import Field

from casebook_platform.settings import CommonSettings


class Settings(CommonSettings):
    """The shared slices plus what only the gateway service needs."""

    service_name: str = Field("gateway", description="Service name (logs, metrics, consumer group).")
    http_port: int = Field(8080, description="Listen port.")
