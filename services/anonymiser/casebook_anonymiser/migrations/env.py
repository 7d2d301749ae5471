"""Alembic environment of the anonymiser service."""

from casebook_platform.migrations import run_env
from casebook_anonymiser.adapters.db import metadata

run_env(metadata)
