"""Settings of the anonymiser service (environment variables `CASEBOOK_*`)."""

from pydantic import Field

from casebook_platform.settings import CommonSettings


class Settings(CommonSettings):
    """The shared slices plus what only the anonymiser service needs."""

    service_name: str = Field("anonymiser", description="Service name (logs, metrics, consumer group).")
    http_port: int = Field(8081, description="Listen port.")
