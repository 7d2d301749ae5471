"""Adapters of the featuring service (database, object store)."""
