"""Casebook's contributor commands: `casebook upload` and `casebook export` (see cli.py)."""
