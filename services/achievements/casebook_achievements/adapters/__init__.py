"""Adapters of the achievements service (database, object store)."""
