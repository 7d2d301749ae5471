"""Settings of the export service (environment variables `CASEBOOK_*`)."""

from pydantic import Field

from casebook_platform.settings import CommonSettings


class Settings(CommonSettings):
    """The shared slices plus export expiry, leases and the worker count."""

    service_name: str = Field("export", description="Service name (logs, metrics, consumer group).")
    http_port: int = Field(8085, description="Listen port.")
    export_ttl_seconds: int = Field(7 * 24 * 3600, description="How long a ready archive is kept.")
    download_url_ttl_seconds: int = Field(3600, description="Lifetime of a presigned download URL.")
    export_workers: int = Field(1, description="Archives built at once by this replica.")
    export_lease_seconds: int = Field(300, description="A running job not heard from for this long is retried.")
    export_max_attempts: int = Field(3, description="Attempts before a job fails.")
    export_poll_seconds: float = Field(0.5, description="How often idle workers look for jobs.")
    manifest_orphan_seconds: float = Field(
        2 * 24 * 3600, description="A stored export manifest with no job after this long is removed (its "
        "request was never recorded).")
