"""Casebook export service: originals zips and offline presentations."""
