"""Alembic environment of the featuring service."""

from casebook_platform.migrations import run_env
from casebook_featuring.adapters.db import metadata

run_env(metadata)
