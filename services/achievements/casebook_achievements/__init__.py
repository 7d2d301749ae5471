"""Casebook achievements service: per-user counters and awards (Collector)."""
