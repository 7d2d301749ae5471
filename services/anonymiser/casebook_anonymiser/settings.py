"""Settings of the anonymiser (environment variables `CASEBOOK_*`)."""

from pydantic import Field, model_validator

from casebook_platform.settings import CommonSettings


class Settings(CommonSettings):
    """The shared slices plus the pseudonymisation key and the worker pool."""

    service_name: str = Field("anonymiser", description="Service name (logs, metrics, consumer group).")
    http_port: int = Field(8081, description="Listen port.")
    deid_secret: str = Field("", description="Pseudonymisation secret (HMAC key for UIDs, dates, pseudonyms).")
    deid_key_id: str = Field("k1", description="Id of that secret, recorded in every output (key rotation).")
    deid_workers: int = Field(0, description="De-identification processes (0: one per core).")
    deid_in_flight: int = Field(
        0, description="Uploads handled at once (fetching, de-identifying, storing; 0: four per worker). More "
                       "keep the workers busy while others wait on S3 and the database; each holds its upload "
                       "on disk and its outcome in memory, within the byte budget.")
    deid_ocr: bool = Field(True, description="Check every image for burned-in text (off: every image quarantines).")
    sweep_interval_s: float = Field(60.0, description="How often leftover raw uploads are looked for.")
    deid_timeout_s: float = Field(
        600.0, description="Time limit of one de-identification task (past it: quarantined `processing_timeout`).")
    deid_crash_limit: int = Field(
        3, description="Worker deaths while handling one upload before it is quarantined `processing_error`.")
    deid_memory_budget_bytes: int = Field(
        1024**3, description="Most working memory the workers' tasks may need at once, estimated from each "
                             "upload's size (tasks wait for each other past it); keep it under the memory limit "
                             "less the service and its workers at rest (about 600 MB with two workers).")
    deid_stream_bytes: int = Field(
        64 * 1024**2, description="DICOM uploads at least this large are de-identified file to file, a frame at "
                                  "a time: their memory does not grow with their size (smaller ones in memory).")
    tmp_dir: str = Field("", description="Where raw objects and results are spooled (default: system temp), in a "
                                          "directory of each process's own; a start removes what a killed one left.")

    @model_validator(mode="after")
    def _need_secret(self) -> "Settings":
        if len(self.deid_secret) < 16:
            raise ValueError("CASEBOOK_DEID_SECRET must be set (at least 16 characters)")
        return self
