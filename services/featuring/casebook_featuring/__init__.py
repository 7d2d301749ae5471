"""Casebook featuring service: featured cases and the Case of the Month."""
