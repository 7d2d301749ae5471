"""Hostile-input fixtures reuse the end-to-end users."""

from e2e_fixtures import anonymous, users  # noqa: F401
