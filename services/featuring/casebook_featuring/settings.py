"""Settings of the featuring service (environment variables `CASEBOOK_*`)."""

from pydantic import Field

from casebook_platform.settings import CommonSettings


class Settings(CommonSettings):
    """The shared slices plus what only the featuring service needs."""

    service_name: str = Field("featuring", description="Service name (logs, metrics, consumer group).")
    http_port: int = Field(8083, description="Listen port.")
    public_base_url: str = Field("http://127.0.0.1:8080",
                                 description="Base URL of the public API and console (the gateway): the feed's links.")
