"""Adapters of the anonymiser service (database, object store)."""
