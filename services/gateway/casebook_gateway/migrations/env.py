"""Alembic environment of the gateway service."""

from casebook_platform.migrations import run_env
from casebook_gateway.adapters.db import metadata

run_env(metadata)
