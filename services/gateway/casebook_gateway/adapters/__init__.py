"""Adapters of the gateway service (database, object store)."""
