"""Settings slices shared by every service; each service combines them with its own."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "password"}


class CommonSettings(BaseSettings):
    """Everything a Casebook service needs to reach its broker, store and database."""

    model_config = SettingsConfigDict(env_prefix="CASEBOOK_", extra="ignore")

    mode: Literal["embedded", "production"] = Field("embedded", description="embedded allows generated secrets.")
    service_name: str = Field("casebook", description="Set by each service.")

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_idempotent: bool = Field(False, description="Idempotent producer (Apache Kafka yes; Tansu no).")
    kafka_session_timeout_ms: int = Field(6000, description="Group session timeout; joins wait half of it on Tansu.")
    kafka_fetch_max_wait_ms: int = Field(
        25, description="Longest a fetch waits for records: on Tansu (no long polling) every hop's idle latency; "
                        "25 ms costs the broker about 13 % of a core more than 100 ms while idle.")
    kafka_linger_ms: int = Field(
        0, description="Producer batching delay. The only producers are the outbox relays, which hand a whole "
                       "batch of rows to the producer at once, and a batch that waits for the request in flight "
                       "joins the next one: 5 ms added 7-8 ms to every event's hop on Tansu and saved no requests.")
    kafka_max_request_size: int = Field(8 * 1024 * 1024, description="Largest record batch the producer sends.")
    consumer_group: str = Field("", description="Consumer group; default `casebook-<service>`.")
    consumer_commit_every: int = Field(50, description="Commit offsets after this many messages (or 1 s).")
    consumer_poll_ms: int = Field(
        10, description="How long a service handling several messages at once waits in one poll, and pauses "
                        "after an empty one: an idle pickup waits a quarter of it on average (FastStream's "
                        "default, 200 ms, adds up to that to every idle pickup). 10 ms costs the idle anonymiser "
                        "no measurable CPU over 20 ms (5.4 against 5.2 % of a core); 5 ms costs 1-3 % more.")
    consumer_commit_interval_s: float = Field(
        1.0, description="Services handling several messages at once commit at most this often while busy, and "
                         "as soon as they run dry (each commit is a broker write; an uncommitted tail is only "
                         "fetched again after a restart, and skipped as already processed).")
    graceful_timeout_s: float = Field(25.0, description="On shutdown, how long in-flight messages may finish.")
    consumer_max_attempts: int = Field(
        4, description="Attempts before a deterministic failure (a constraint or data error) goes to the DLQ; "
                       "transient failures (a dependency down) are retried for as long as it takes.")
    consumer_retry_backoff_s: float = Field(0.25, description="First retry delay; doubles each attempt.")
    consumer_retry_max_backoff_s: float = Field(15.0, description="Longest delay between two retries.")

    s3_endpoint: str = Field("127.0.0.1:8333", description="S3 endpoint host:port.")
    s3_access_key: str = Field("", description="S3 access key.")
    s3_secret_key: str = Field("", description="S3 secret key.")
    s3_secure: bool = Field(False, description="Use HTTPS to S3.")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_bucket_incoming: str = Field("casebook-incoming", description="Raw uploads (anonymiser reads).")
    s3_bucket_images: str = Field("casebook-images", description="De-identified images.")
    s3_bucket_exports: str = Field("casebook-exports", description="Export archives.")

    database_url: str = Field("postgresql+asyncpg://postgres@127.0.0.1:55432/casebook",
                              description="This service's own database.")
    database_pool_size: int = Field(10, description="Connection pool size.")
    database_connect_timeout_s: float = Field(10.0, description="Time bound on opening a connection.")
    database_command_timeout_s: float = Field(
        60.0, description="Time bound on one statement (a stalled server fails the call, which is retried).")

    http_host: str = Field("127.0.0.1", description="Listen address.")
    http_port: int = Field(8080, description="Listen port.")

    auth_secret: str = Field("", description="HS256 secret (embedded mode).")
    auth_jwks_url: str = Field("", description="RS256 JWKS URL (production).")
    auth_audience: str = Field("", description="Expected `aud` (required in production).")
    auth_issuer: str = Field("", description="Expected `iss` (required in production).")
    auth_jwks_min_refetch_s: float = Field(
        60.0, description="Least time between two JWKS fetches (an unknown `kid` cannot force more).")

    outbox_poll_interval_s: float = Field(
        0.25, description="Outbox relay idle poll interval (a commit that writes events wakes the relay at once; "
                          "the poll catches the rest, e.g. another replica's rows). Each poll is one query.")
    outbox_gauge_interval_s: float = Field(
        5.0, description="How often the relay counts its backlog and parked rows for /metrics (two COUNT(*) "
                         "queries of the outbox table).")
    readiness_requires: str = Field(
        "database", description="Comma-separated dependencies without which /readyz answers 503 "
                                "(of database, object_store, broker); the others are reported only.")
    log_level: str = Field("INFO", description="Log level.")

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> CommonSettings:
        if self.mode == "production":
            if not self.auth_jwks_url and self.auth_secret.lower() in _PLACEHOLDERS:
                raise ValueError("production needs CASEBOOK_AUTH_JWKS_URL (or a real CASEBOOK_AUTH_SECRET)")
            if self.s3_secret_key.lower() in _PLACEHOLDERS:
                raise ValueError("production needs a real CASEBOOK_S3_SECRET_KEY")
            if self.auth_jwks_url and (not self.auth_issuer or not self.auth_audience):
                raise ValueError("production needs CASEBOOK_AUTH_ISSUER and CASEBOOK_AUTH_AUDIENCE "
                                 "(tokens of another issuer or audience must not be accepted)")
        return self
