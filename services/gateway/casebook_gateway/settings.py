"""Settings of the gateway (environment variables `CASEBOOK_*`)."""

from typing import Literal

from pydantic import Field

from casebook_platform.settings import CommonSettings

Behind = Literal["moderation", "featuring", "achievements", "export"]
"""The services the gateway calls or forwards to."""


class Settings(CommonSettings):
    """The shared slices plus the gateway's limits and the services it routes to."""

    service_name: str = Field("gateway", description="Service name (logs, metrics, consumer group).")
    http_port: int = Field(8080, description="Listen port.")
    public_base_url: str = Field("http://127.0.0.1:8080", description="Base URL used in share links.")
    max_upload_bytes: int = Field(2 * 1024**3, description="Largest accepted upload (413 `upload_too_large`).")
    max_zip_entries: int = Field(5000, description="Most entries a zip may hold.")
    max_zip_uncompressed_bytes: int = Field(4 * 1024**3, description="Largest total uncompressed zip size.")
    max_zip_ratio: float = Field(100.0, description="Largest compression ratio of a zip entry.")
    max_image_pixels: int = Field(80_000_000, description="Largest PNG/JPEG in pixels (decompression bombs).")
    dicom_parse_timeout_s: float = Field(10.0, description="Time bound on recognising one DICOM file.")
    draft_limit: int = Field(10, description="Drafts per user at any time.")
    max_images_per_case: int = Field(2000, description="Images a case may hold (409 `image_limit_reached`): its "
                                     "submission lists them all and must fit one event.")
    max_case_text_bytes: int = Field(128 * 1024, description="UTF-8 bytes of a case's text, every field and "
                                     "study's findings, that may be submitted (413 `case_too_large`).")
    unlisted_limit: int = Field(10, description="Unlisted cases per user at any time.")
    gateway_moderation_url: str = Field("http://127.0.0.1:8082", description="Moderation service.")
    gateway_featuring_url: str = Field("http://127.0.0.1:8083", description="Featuring service.")
    gateway_achievements_url: str = Field("http://127.0.0.1:8084", description="Achievements service.")
    gateway_export_url: str = Field("http://127.0.0.1:8085", description="Export service.")
    stale_upload_s: float = Field(900.0, description="An upload still `receiving` after this long was interrupted.")
    upload_sweep_interval_s: float = Field(60.0, description="How often interrupted uploads are cleaned up.")
    tmp_dir: str = Field("", description="Where uploads are spooled while checked (default: system temp), in a "
                                          "directory of each process's own; a start removes what a killed one left.")
    upload_stream_min_bytes: int = Field(8 * 1024**2, description="A single file at least this large (DICOM, PNG "
                                         "or JPEG, its size known from Content-Length) is written to the incoming "
                                         "bucket while it arrives and kept only once checked; smaller files and "
                                         "zips are stored after their checks.")
    dicomweb_index_interval_s: float = Field(0.5, description="How often ready DICOM images are looked for whose "
                                             "header the DICOMweb index has not read yet.")
    dicomweb_spool_bytes: int = Field(32 * 1024**2, description="Objects up to this size are read into memory "
                                      "for frames and rendered images; larger ones spill to a temporary file.")

    def service_url(self, service: Behind) -> str:
        """The base URL of a service behind the gateway (`gateway_<service>_url`)."""
        urls: dict[Behind, str] = {"moderation": self.gateway_moderation_url, "featuring": self.gateway_featuring_url,
                                   "achievements": self.gateway_achievements_url, "export": self.gateway_export_url}
        return urls[service]
