"""Alembic environment of the export service."""

from casebook_export.adapters.db import metadata
from casebook_platform.migrations import run_env

run_env(metadata)
