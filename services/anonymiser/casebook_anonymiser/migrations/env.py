"""Alembic environment of the anonymiser service."""

from casebook_anonymiser.adapters.db import metadata
from casebook_platform.migrations import run_env

run_env(metadata)
