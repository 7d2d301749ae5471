"""Alembic environment of the export service."""

from casebook_platform.migrations import run_env
from casebook_export.adapters.db import metadata

run_env(metadata)
