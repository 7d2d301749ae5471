"""Adapters of the export service (database, object store)."""
