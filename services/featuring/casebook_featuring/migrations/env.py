"""Alembic environment of the featuring service."""

from casebook_featuring.adapters.db import metadata
from casebook_platform.migrations import run_env

run_env(metadata)
