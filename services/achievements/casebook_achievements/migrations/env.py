"""Alembic environment of the achievements service."""

from casebook_achievements.adapters.db import metadata
from casebook_platform.migrations import run_env

run_env(metadata)
