"""Alembic environment of the moderation service."""

from casebook_moderation.adapters.db import metadata
from casebook_platform.migrations import run_env

run_env(metadata)
