"""Adapters of the moderation service (database, object store)."""
