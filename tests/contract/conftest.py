"""Contract fixtures: users talking to the running platform."""

from e2e_fixtures import anonymous, users  # noqa: F401
