"""Alembic environment of the gateway service."""

from casebook_gateway.adapters.db import metadata
from casebook_platform.migrations import run_env

run_env(metadata)
