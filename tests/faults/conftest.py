"""Fault tests reuse the end-to-end users and the running platform."""

from e2e_fixtures import anonymous, users  # noqa: F401
