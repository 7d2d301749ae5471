"""Casebook's shared runtime: the pieces every service would otherwise write again."""
